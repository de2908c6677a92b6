"""Common wrong answers of day 8 (online softmax, tiled attention and its backward), written as students write them.

Each function has the exercise's signature and differs from a correct answer in one slip, named by a
keyword flag of the small loops below; `says` completes "Your answer is exactly what you get when you ...".
"""

from __future__ import annotations

import functools
import math

import torch

from gptref.grading.explain import Mistake

# ---------------------------------------------------------------- online softmax statistics


def _stats(blocks, *, rescale="right", shift="running", start_max=float("-inf"), update_max=True, log_sum=False,
           per_row=True, return_last_block_max=False, sum_rows=True):
    """Running (m, l) over blocks, with one slip chosen by the flags."""
    first = blocks[0]
    m = torch.full(first.shape[:-1], start_max, dtype=first.dtype)  # (...) running max
    row_sum = torch.zeros(first.shape[:-1], dtype=first.dtype)  # (...) running sum
    for block in blocks:
        block_max = block.amax(dim=-1) if per_row else block.amax().expand(block.shape[:-1])
        m_new = torch.maximum(m, block_max)
        factor = {"right": torch.exp(m - m_new), "none": torch.ones_like(m), "flipped": torch.exp(m_new - m)}[rescale]
        reference_max = {"running": m_new, "block": block_max, "zero": torch.zeros_like(m_new)}[shift]
        terms = torch.exp(block - reference_max[..., None])  # (..., block)
        row_sum = row_sum * factor + (terms.sum(dim=-1) if sum_rows else terms.sum())
        if update_max:
            m = m_new
    if return_last_block_max:
        m = m_new
    return m, (torch.log(row_sum) + m if log_sum else row_sum)


# ---------------------------------------------------------------- tiled attention (forward)


def _tiled(q, k, v, block_q=64, block_k=64, causal=False, *, scale_power=0.5, rescale_acc=True, rescale_l=True,
           normalise=True, local_mask="", fill=float("-inf"), update_max=True, hide_diagonal=False,
           whole_key_blocks_only=False, tile_max=False, skip_after_first_query=False):
    """Tiled attention with one slip chosen by the flags."""
    t_q, d = q.shape[-2], q.shape[-1]
    out = torch.empty(*q.shape[:-1], v.shape[-1], dtype=q.dtype)  # (..., T_q, D)
    for i0 in range(0, t_q, block_q):
        qi = q[..., i0:i0 + block_q, :] / d ** scale_power  # (..., bq, D)
        bq = qi.shape[-2]
        m = torch.full(qi.shape[:-1], float("-inf"), dtype=q.dtype)  # (..., bq)
        row_sum = torch.zeros(qi.shape[:-1], dtype=q.dtype)  # (..., bq)
        acc = torch.zeros(*qi.shape[:-1], v.shape[-1], dtype=q.dtype)  # (..., bq, D)
        t_k = k.shape[-2] - (k.shape[-2] % block_k if whole_key_blocks_only else 0)
        for j0 in range(0, t_k, block_k):
            if causal and skip_after_first_query and j0 > i0:  # the tile's first query, not its last, decides
                break
            s = qi @ k[..., j0:j0 + block_k, :].transpose(-2, -1)  # (..., bq, bk)
            if causal:
                rows = torch.arange(bq)[:, None] + (0 if "rows" in local_mask else i0)
                cols = torch.arange(s.shape[-1])[None, :] + (0 if "cols" in local_mask else j0)
                s = s.masked_fill(cols >= rows if hide_diagonal else cols > rows, fill)
            m_new = torch.maximum(m, s.amax(dim=-1))
            alpha = torch.exp(m - m_new)  # (..., bq)
            p = torch.exp(s - (s.amax(dim=-1, keepdim=True) if tile_max else m_new[..., None]))  # (..., bq, bk)
            row_sum = (row_sum * alpha if rescale_l else row_sum) + p.sum(dim=-1)
            acc = (acc * alpha[..., None] if rescale_acc else acc) + p @ v[..., j0:j0 + block_k, :]
            if update_max:
                m = m_new
        out[..., i0:i0 + bq, :] = acc / row_sum[..., None] if normalise else acc
    return out


# ---------------------------------------------------------------- tiled attention (backward)


def _backward(q, k, v, out, lse, dout, block_q=64, block_k=64, causal=False, *, scale_dq=True, scale_dk=True,
              probabilities="softmax", delta="dO.O", transpose_dv=True, mask=True, dp_from="values",
              accumulate_dv=True):
    """The recomputing tile loop for (dQ, dK, dV) with one slip chosen by the flags."""
    t_q, t_k, d = q.shape[-2], k.shape[-2], q.shape[-1]
    scale = 1.0 / math.sqrt(d)
    dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
    row_delta = (dout * out).sum(dim=-1) if delta == "dO.O" else dout.sum(dim=-1)  # (..., T_q)
    for j0 in range(0, t_k, block_k):
        kj, vj = k[..., j0:j0 + block_k, :], v[..., j0:j0 + block_k, :]  # (..., bk, D)
        for i0 in range(0, t_q, block_q):
            qi, doi = q[..., i0:i0 + block_q, :], dout[..., i0:i0 + block_q, :]  # (..., bq, D)
            s = qi @ kj.transpose(-2, -1) * scale  # (..., bq, bk)
            if causal and mask:
                rows = torch.arange(i0, i0 + s.shape[-2])[:, None]
                cols = torch.arange(j0, j0 + s.shape[-1])[None, :]
                s = s.masked_fill(cols > rows, float("-inf"))
            p = {"softmax": lambda: torch.exp(s - lse[..., i0:i0 + block_q, None]), "exp": lambda: torch.exp(s),
                 "scores": lambda: s}[probabilities]()  # (..., bq, bk)
            tile_dv = (p.transpose(-2, -1) if transpose_dv else p) @ doi  # (..., bk, D)
            if accumulate_dv:
                dv[..., j0:j0 + block_k, :] += tile_dv
            else:
                dv[..., j0:j0 + block_k, :] = tile_dv
            dp = doi @ (vj if dp_from == "values" else kj).transpose(-2, -1)  # (..., bq, bk)
            tile_delta = {"tile dP": dp.sum(dim=-1), "tile P.dP": (p * dp).sum(dim=-1),
                          "none": torch.zeros_like(dp[..., 0])}.get(
                delta, row_delta[..., i0:i0 + block_q] if delta in ("dO.O", "dO") else None)
            ds = p * (dp - tile_delta[..., None])  # (..., bq, bk)
            dq[..., i0:i0 + block_q, :] += ds @ kj * (scale if scale_dq else 1.0)
            dk[..., j0:j0 + block_k, :] += ds.transpose(-2, -1) @ qi * (scale if scale_dk else 1.0)
    return dq, dk, dv


def _named(fn, **slip):
    """fn with one slip switched on, keeping the exercise's signature for keyword calls."""
    return functools.partial(fn, **slip)


MISTAKES = {
    "online_softmax_stats": (
        Mistake("add each block's sum to l as it is: your running sum was not rescaled when the max changed "
                "(multiply it by exp(m_old - m_new), with m_old the max BEFORE this block: a factor computed after "
                "m was already updated is exp(0) = 1)",
                _named(_stats, rescale="none")),
        Mistake("rescale the running sum by exp(m_new - m_old), the inverse of exp(m_old - m_new)",
                _named(_stats, rescale="flipped")),
        Mistake("compute each block's exponentials relative to that block's own max instead of the new running max",
                _named(_stats, shift="block")),
        Mistake("take exp(block) as it is: subtract the running max inside exp, exp(block - m_new)",
                _named(_stats, shift="zero")),
        Mistake("sum exp(x) as it is: subtract the running max inside exp, exp(block - m_new)",
                _named(_stats, shift="zero", rescale="none")),
        Mistake("start the running max at 0 instead of -inf (wrong for rows whose scores are all negative)",
                _named(_stats, start_max=0.0)),
        Mistake("never store the new max (m = m_new is missing), so only the last block counts",
                _named(_stats, update_max=False)),
        Mistake("carry no running max from one block to the next (m stays -inf inside the loop: m = m_new is "
                "missing, and m_new is what you return), so exp(m - m_new) = 0 wipes l at every block and only the "
                "last block's sum is left; store m = m_new at the end of each iteration",
                _named(_stats, update_max=False, return_last_block_max=True)),
        Mistake("return the log-sum-exp m + log(l) instead of the sum l", _named(_stats, log_sum=True)),
        Mistake("take one max over the whole block (amax() with no dim), shared by every row: each row keeps its "
                "own running max, block.amax(dim=-1)",
                _named(_stats, per_row=False)),
        Mistake("sum the exponentials with no dim (.sum()), which adds up every row's terms into one number: each "
                "row keeps its own sum, .sum(dim=-1)",
                _named(_stats, sum_rows=False)),
    ),
    "tiled_attention": (
        Mistake("leave out the factor 1/sqrt(D): scale the scores by 1/sqrt(D)", _named(_tiled, scale_power=0.0)),
        Mistake("divide the scores by D instead of sqrt(D)", _named(_tiled, scale_power=1.0)),
        Mistake("rescale the running sum l but not the running output acc: rescale acc and l by exp(m_old - m_new) "
                "whenever the max grows",
                _named(_tiled, rescale_acc=False)),
        Mistake("rescale the running output acc but not the running sum l (l needs the same factor as acc)",
                _named(_tiled, rescale_l=False)),
        Mistake("forget to divide the running output by the running sum l at the end", _named(_tiled, normalise=False)),
        Mistake("take each tile's probabilities against the tile's own max, exp(s - s.amax(-1)): l and acc are kept "
                "relative to the running max m_new, so P must be too, exp(s - m_new[..., None])",
                _named(_tiled, tile_max=True)),
        Mistake("build the causal mask from positions inside the tile (0..b-1) instead of absolute positions "
                "(i0 + row, j0 + col): build it using absolute positions", _named(_tiled, local_mask="rows cols")),
        Mistake("count the key positions inside the tile (0..b-1) instead of from the start of the sequence "
                "(j0 + col): build the mask using absolute positions", _named(_tiled, local_mask="cols")),
        Mistake("fill the hidden scores with 0 instead of -inf, so hidden keys still get weight exp(0 - m)",
                _named(_tiled, fill=0.0)),
        Mistake("hide key j >= i instead of j > i, so a query cannot see its own key",
                _named(_tiled, hide_diagonal=True)),
        Mistake("never store the new max (m = m_new is missing), so only the last key block counts",
                _named(_tiled, update_max=False)),
        Mistake("skip the key tiles that start after the query tile's FIRST query (j0 > i0): the tile's later "
                "queries still see some of those keys when block_k < block_q; a key tile lies wholly above the "
                "diagonal only when it starts after the tile's LAST query, j0 > i0 + bq - 1",
                _named(_tiled, skip_after_first_query=True)),
        Mistake("stop the key loop before the last, shorter tile (range(0, T - T % block, block)): when T is not a "
                "multiple of the block the last keys are never seen; loop over range(0, T, block)",
                _named(_tiled, whole_key_blocks_only=True)),
    ),
    "tiled_attention_backward": (
        Mistake("forget the 1/sqrt(D) in dQ (dQ += dS K_j / sqrt(D))", _named(_backward, scale_dq=False)),
        Mistake("forget the 1/sqrt(D) in dK (dK += dS^T Q_i / sqrt(D))", _named(_backward, scale_dk=False)),
        Mistake("use the pre-softmax scores S where the probabilities P = exp(S - lse) belong",
                _named(_backward, probabilities="scores")),
        Mistake("take D = rowsum(dP) of each tile instead of D = rowsum(dO * O) over the whole row",
                _named(_backward, delta="tile dP")),
        Mistake("take D = rowsum(dO) instead of D = rowsum(dO * O)", _named(_backward, delta="dO")),
        Mistake("take D = rowsum(P * dP) over each tile's keys only: D sums over ALL the keys of the row, so compute "
                "it once, before the loop, as rowsum(dO * O)",
                _named(_backward, delta="tile P.dP")),
        Mistake("accumulate dV with P dO instead of P^T dO", _named(_backward, transpose_dv=False)),
        Mistake("leave D out of dS (dS = P * dP): dS = P * (dP - D), with D_i = rowsum(dO_i * O_i), the softmax's own "
                "correction", _named(_backward, delta="none")),
        Mistake("recompute P as exp(S) without subtracting the saved log-sum-exp: P = exp(S - lse), the softmax the "
                "forward computed", _named(_backward, probabilities="exp")),
        Mistake("assign dV_j = P^T dO_i instead of adding to it: dV_j sums over every query tile i, dV_j += P^T dO_i",
                _named(_backward, accumulate_dv=False)),
        Mistake("leave out the causal mask when the backward recomputes the scores", _named(_backward, mask=False)),
        Mistake("compute dP from the keys, dO_i K_j^T: dP = dO_i V_j^T, since O = P V makes dP the gradient through "
                "the values", _named(_backward, dp_from="keys")),
    ),
}
