"""Planted mistakes for 08_flash_attention."""

from tests.mutants import Mutant

MUTANTS = [
    Mutant(cell="online_softmax_stats",
           old="l = l * torch.exp(m - m_new) + torch.exp(block - m_new[..., None]).sum(dim=-1)",
           new="l = l + torch.exp(block - m_new[..., None]).sum(dim=-1)",
           fails={"test_online_softmax_stats"}, why="running sum not rescaled when the max changes", hint="your running sum was not rescaled when the max changed"),
    Mutant(cell="online_softmax_stats",
           old="torch.exp(block - m_new[..., None])", new="torch.exp(block)",
           fails={"test_online_softmax_stats"}, why="exp without subtracting the running max (overflows)", hint="subtract the running max inside exp"),
    Mutant(cell="tiled_attention", old="acc = acc * alpha[..., None] + p @ v[..., j0:j0 + block_k, :]",
           new="acc = acc + p @ v[..., j0:j0 + block_k, :]",
           fails={"test_tiled_attention"}, why="the running output is not rescaled when the max grows", hint="rescale acc and l by exp(m_old - m_new)"),
    Mutant(cell="tiled_attention", old="qi = q[..., i0:i0 + block_q, :] * scale",
           new="qi = q[..., i0:i0 + block_q, :]",
           fails={"test_tiled_attention"}, why="forgot the 1/sqrt(D) scale", hint="scale the scores by 1/sqrt(D)"),
    Mutant(cell="tiled_attention", old="cols = torch.arange(j0, j0 + s.shape[-1])[None, :]",
           new="cols = torch.arange(0, s.shape[-1])[None, :]",
           fails={"test_tiled_attention"}, why="causal mask built from tile-local instead of absolute positions", hint="using absolute positions"),
]
