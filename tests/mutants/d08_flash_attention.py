"""Planted mistakes for 08_flash_attention."""

from tests.mutants import Mutant

MUTANTS = [
    Mutant(cell="online_softmax_stats",
           old="l = l * torch.exp(m - m_new) + torch.exp(block - m_new[..., None]).sum(dim=-1)",
           new="l = l + torch.exp(block - m_new[..., None]).sum(dim=-1)",
           fails={"test_online_softmax_stats"}, why="running sum not rescaled when the max changes",
           hint="your running sum was not rescaled when the max changed"),
    Mutant(cell="online_softmax_stats",
           old="torch.exp(block - m_new[..., None])", new="torch.exp(block)",
           fails={"test_online_softmax_stats"}, why="exp without subtracting the running max (overflows)",
           hint="subtract the running max inside exp"),
    Mutant(cell="tiled_attention", old="acc = acc * alpha[..., None] + p @ v[..., j0:j0 + block_k, :]",
           new="acc = acc + p @ v[..., j0:j0 + block_k, :]",
           fails={"test_tiled_attention"}, why="the running output is not rescaled when the max grows",
           hint="rescale acc and l by exp(m_old - m_new)"),
    Mutant(cell="tiled_attention", old="qi = q[..., i0:i0 + block_q, :] * scale",
           new="qi = q[..., i0:i0 + block_q, :]",
           fails={"test_tiled_attention"}, why="forgot the 1/sqrt(D) scale", hint="scale the scores by 1/sqrt(D)"),
    Mutant(cell="tiled_attention", old="cols = torch.arange(j0, j0 + s.shape[-1])[None, :]",
           new="cols = torch.arange(0, s.shape[-1])[None, :]",
           fails={"test_tiled_attention"}, why="causal mask built from tile-local instead of absolute positions",
           hint="using absolute positions"),
]

# Common mistakes of gptref/grading/mistakes/d08_flash_attention.py, planted in the solution (issue 23).
MUTANTS += [
    Mutant(cell="online_softmax_stats", old="        m = m_new\n    return m, l",
           new="        pass\n    return m_new, l", fails={"test_online_softmax_stats"},
           why="the running max is not carried between blocks (fresh set 8, B-08-4)",
           hint="exp(m - m_new) = 0 wipes l at every block"),
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
    # issue 23: a new student's wrong answers, written from the notebook alone
    Mutant(cell="online_softmax_stats", old="m_new = torch.maximum(m, block.amax(dim=-1))",
           new="m_new = torch.maximum(m, block.max(dim=-1))", fails={"test_online_softmax_stats"},
           why="block.max(dim=-1) used as a tensor", hint="returns a pair (values, indices)"),
    Mutant(cell="online_softmax_stats", old="m_new = torch.maximum(m, block.amax(dim=-1))",
           new="m_new = torch.maximum(m, block.amax())", fails={"test_online_softmax_stats"},
           why="one max over the whole block, shared by all rows", hint="one max over the whole block"),
    Mutant(cell="tiled_attention", old="s = qi @ k[..., j0:j0 + block_k, :].transpose(-2, -1)",
           new="s = qi @ k[..., j0:j0 + block_k, :].T", fails={"test_tiled_attention"},
           why=".T on a batched tensor", hint="to swap the last two dimensions use `.transpose(-2, -1)`"),
    Mutant(cell="tiled_attention", old="for j0 in range(0, T_k, block_k):",
           new="for j0 in range(0, T_k - T_k % block_k, block_k):", fails={"test_tiled_attention"},
           why="skips the last, partial key block", hint="stop the key loop before the last, shorter tile"),
    Mutant(cell="tiled_attention", old="out[..., i0:i0 + bq, :] = acc / l[..., None]",
           new="out[..., i0:i0 + bq, :] = acc / l", fails={"test_tiled_attention"},
           why="divides by l without a trailing dimension", hint="give it a trailing dimension"),
    Mutant(cell="tiled_attention_backward", old="ds = p * (dp - delta[..., i0:i0 + block_q, None])",
           new="ds = p * (dp - (p * dp).sum(dim=-1, keepdim=True))", fails={"test_tiled_attention_backward"},
           why="D from the tile's own P and dP", hint="over each tile's keys only"),
    Mutant(cell="tiled_attention_backward", old="p = torch.exp(s - lse[..., i0:i0 + block_q, None])",
           new="p = torch.exp(s - lse[..., i0:i0 + block_q])", fails={"test_tiled_attention_backward"},
           why="lse without a trailing dimension", hint="give it a trailing dimension"),
    # issue 23: the causal mask's rows sized by block_q (too many for the last, shorter query block)
    Mutant(cell="tiled_attention", old="rows = torch.arange(i0, i0 + bq)[:, None]",
           new="rows = torch.arange(i0, i0 + block_q)[:, None]", fails={"test_tiled_attention"},
           why="mask rows sized by block_q", hint="size the mask's rows and columns from the tile itself"),
    Mutant(cell="tiled_attention_backward", old="rows = torch.arange(i0, i0 + s.shape[-2])[:, None]",
           new="rows = torch.arange(i0, i0 + block_q)[:, None]", fails={"test_tiled_attention_backward"},
           why="mask rows sized by block_q in the backward pass",
           hint="size the mask's rows and columns from the tile itself"),
]

# Fresh wrong answers of issue 23 (n58), named by the general machinery (explain.tile_slice_cause, the backward's
# sum(dQ * Q) = sum(dK * K) rung).
MUTANTS += [
    Mutant("tiled_attention", old="acc = acc * alpha[..., None] + p @ v[..., j0:j0 + block_k, :]",
           new="acc = acc * alpha[..., None] + p @ v[..., j0:j0 + block_q, :]",
           fails={"test_tiled_attention"}, why="the value tile sliced with the query block size",
           hint="starts at a key position but is as long as a query block"),
    Mutant("tiled_attention_backward", old="dq[..., i0:i0 + block_q, :] += ds @ kj * scale",
           new="dq[..., i0:i0 + block_q, :] = ds @ kj * scale",
           fails={"test_tiled_attention_backward"}, why="dQ assigned instead of accumulated over the key blocks",
           hint="both with +="),
    Mutant("tiled_attention_backward", old="p = torch.exp(s - lse[..., i0:i0 + block_q, None])",
           new="p = torch.exp(s - lse[..., j0:j0 + block_k, None])",
           fails={"test_tiled_attention_backward"}, why="lse sliced with the key block",
           hint="a quantity kept per QUERY (q, the output, lse, m, l, D) is sliced with i0"),
]

# Issue 23, fresh set 3 (f611): an IndexError that was blamed on loop bounds.
MUTANTS += [
    Mutant(cell="tiled_attention_backward", old="delta = (dout * out).sum(dim=-1)", new="delta = (dout * out).sum()",
           fails={"test_tiled_attention_backward"}, why="D summed over everything (no dim=)",
           hint="more indices than it has dimensions"),
]

# Issue 23, fresh set 6: D summed over the wrong axis (the error shows where D is sliced), lse cut with the key offset.
MUTANTS += [
    Mutant("tiled_attention_backward", old="delta = (dout * out).sum(dim=-1)", new="delta = (dout * out).sum(dim=-2)",
           fails={"test_tiled_attention_backward"}, why="D summed over the queries instead of the channels",
           hint="delta itself was built with another shape"),
    Mutant("tiled_attention_backward", old="lse[..., i0:i0 + block_q, None]", new="lse[..., j0:j0 + block_q, None]",
           fails={"test_tiled_attention_backward"}, why="lse sliced with the key block's offset",
           hint="lse holds one entry per QUERY, so its slice is i0:i0 + block_q; this one starts at j0"),
]

# Issue 23, fresh set 9: a tile's probabilities taken against the tile's own max.
MUTANTS += [
    Mutant(cell="tiled_attention", old="p = torch.exp(s - m_new[..., None])",
           new="p = torch.exp(s - s.amax(dim=-1, keepdim=True))", fails={"test_tiled_attention"},
           why="P against the tile's own max (B-08-9)", hint="against the tile's own max, exp(s - s.amax(-1))"),
]

# Issue 23, fresh set 10: the causal skip of key tiles decided by the query tile's first query.
MUTANTS += [
    Mutant(cell="tiled_attention", old="s = qi @ k[..., j0:j0 + block_k, :].transpose(-2, -1)",
           new=("if causal and j0 > i0:\n                break\n"
                "            s = qi @ k[..., j0:j0 + block_k, :].transpose(-2, -1)"),
           fails={"test_tiled_attention"}, why="key tiles skipped from the tile's first query (A-08-12)",
           hint="skip the key tiles that start after the query tile's FIRST query"),
]

# Issue 23, fresh set 12: one sum over every row, and dP computed from the keys.
MUTANTS += [
    Mutant(cell="online_softmax_stats", old="[..., None]).sum(dim=-1)", new="[..., None]).sum()",
           fails={"test_online_softmax_stats"}, why="the exponentials of every row summed together (B-08-5)",
           hint="sum the exponentials with no dim"),
    Mutant(cell="tiled_attention_backward", old="dp = doi @ vj.transpose(-2, -1)",
           new="dp = doi @ kj.transpose(-2, -1)",
           fails={"test_tiled_attention_backward"}, why="dP from the keys instead of the values (B-08-16)",
           hint="compute dP from the keys"),
]

# Issue 23, fresh set 13: D left out of dS, P without the lse, dV assigned instead of accumulated.
MUTANTS += [
    Mutant(cell="tiled_attention_backward", old="ds = p * (dp - delta[..., i0:i0 + block_q, None])", new="ds = p * dp",
           fails={"test_tiled_attention_backward"}, why="dS without D (A-08-13)", hint="leave D out of dS"),
    Mutant(cell="tiled_attention_backward", old="p = torch.exp(s - lse[..., i0:i0 + block_q, None])",
           new="p = torch.exp(s)", fails={"test_tiled_attention_backward"}, why="P = exp(S) (A-08-14)",
           hint="recompute P as exp(S) without subtracting"),
    Mutant(cell="tiled_attention_backward", old="dv[..., j0:j0 + block_k, :] += p.transpose(-2, -1) @ doi",
           new="dv[..., j0:j0 + block_k, :] = p.transpose(-2, -1) @ doi", fails={"test_tiled_attention_backward"},
           why="dV assigned per query tile (A-08-17)", hint="assign dV_j = P^T dO_i instead of adding"),
]
