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

# Common mistakes of gptref/grading/mistakes/d08_flash_attention.py, planted in the solution (issue 23).
MUTANTS += [
    Mutant(cell="online_softmax_stats", old="l = l * torch.exp(m - m_new)", new="l = l * torch.exp(m_new - m)",
           fails={"test_online_softmax_stats"}, why="rescale factor inverted",
           hint="the inverse of exp(m_old - m_new)"),
    Mutant(cell="online_softmax_stats", old="torch.exp(block - m_new[..., None])",
           new="torch.exp(block - block.amax(dim=-1, keepdim=True))",
           fails={"test_online_softmax_stats"}, why="each block relative to its own max",
           hint="relative to that block's own max"),
    Mutant(cell="online_softmax_stats", old='m = torch.full(first.shape[:-1], float("-inf"), dtype=first.dtype)',
           new="m = torch.zeros(first.shape[:-1], dtype=first.dtype)",
           fails={"test_online_softmax_stats"}, why="running max starts at 0", hint="start the running max at 0"),
    Mutant(cell="tiled_attention", old="out[..., i0:i0 + bq, :] = acc / l[..., None]",
           new="out[..., i0:i0 + bq, :] = acc",
           fails={"test_tiled_attention"}, why="running output never divided by l",
           hint="forget to divide the running output by the running sum l"),
    Mutant(cell="tiled_attention", old='s = s.masked_fill(cols > rows, float("-inf"))',
           new="s = s.masked_fill(cols > rows, 0.0)",
           fails={"test_tiled_attention"}, why="hidden scores set to 0",
           hint="fill the hidden scores with 0 instead of -inf"),
    Mutant(cell="tiled_attention", old='s = s.masked_fill(cols > rows, float("-inf"))',
           new='s = s.masked_fill(cols >= rows, float("-inf"))',
           fails={"test_tiled_attention"}, why="the diagonal hidden too", hint="hide key j >= i instead of j > i"),
    Mutant(cell="tiled_attention", old="l = l * alpha + p.sum(dim=-1)", new="l = l + p.sum(dim=-1)",
           fails={"test_tiled_attention"}, why="running sum not rescaled (the output is)",
           hint="rescale the running output acc but not the running sum l"),
]

# Issue 19.3: the recomputing backward.
MUTANTS += [
    Mutant(cell="tiled_attention_backward", old="dq[..., i0:i0 + block_q, :] += ds @ kj * scale",
           new="dq[..., i0:i0 + block_q, :] += ds @ kj",
           fails={"test_tiled_attention_backward"}, why="1/sqrt(D) missing in dQ", hint="forget the 1/sqrt(D) in dQ"),
    Mutant(cell="tiled_attention_backward", old="dk[..., j0:j0 + block_k, :] += ds.transpose(-2, -1) @ qi * scale",
           new="dk[..., j0:j0 + block_k, :] += ds.transpose(-2, -1) @ qi",
           fails={"test_tiled_attention_backward"}, why="1/sqrt(D) missing in dK", hint="forget the 1/sqrt(D) in dK"),
    Mutant(cell="tiled_attention_backward", old="p = torch.exp(s - lse[..., i0:i0 + block_q, None])", new="p = s",
           fails={"test_tiled_attention_backward"}, why="pre-softmax scores used as P",
           hint="use the pre-softmax scores S"),
    Mutant(cell="tiled_attention_backward", old="delta = (dout * out).sum(dim=-1)", new="delta = dout.sum(dim=-1)",
           fails={"test_tiled_attention_backward"}, why="D from dO alone", hint="take D = rowsum(dO) instead of"),
    Mutant(cell="tiled_attention_backward", old="            if causal:\n", new="            if False:\n",
           fails={"test_tiled_attention_backward"}, why="no causal mask in the backward",
           hint="leave out the causal mask"),
]
