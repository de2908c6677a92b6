"""Flash attention in plain torch: tiles over queries and keys with an online softmax.

The forward never builds the (T_q, T_k) score matrix: for each block of queries it walks the
blocks of keys, keeping per query a running max m, a running sum l (row_sum) of exp(s - m) and a
running output acc, rescaled by exp(m_old - m_new) whenever the max grows (Milakov & Gimelshein 2018;
Dao et al. 2022). The backward is a torch.autograd.Function that recomputes each score tile
from q, k and the saved log-sum-exp, so training memory stays linear in T as well.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["online_softmax", "online_softmax_stats", "flash_attention"]

NEG_INF = float("-inf")


def online_softmax_stats(x: Tensor, block_size: int = 64) -> tuple[Tensor, Tensor]:
    """One streaming pass over the last dim in blocks: (running max m, sum of exp(x - m)) per row."""
    m = torch.full(x.shape[:-1], NEG_INF, dtype=x.dtype, device=x.device)
    row_sum = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
    for j in range(0, x.shape[-1], block_size):
        blk = x[..., j : j + block_size]
        m_new = torch.maximum(m, blk.amax(dim=-1))
        m_safe = torch.where(m_new == NEG_INF, 0.0, m_new)  # a row of only -inf so far: avoid inf - inf
        # the old sum was relative to m; re-express it relative to m_new, then add the new block
        row_sum = row_sum * torch.exp(m - m_safe) + torch.exp(blk - m_safe[..., None]).sum(dim=-1)
        m = m_new
    return m, row_sum


def online_softmax(x: Tensor, block_size: int = 64) -> Tensor:
    """softmax(x, dim=-1) computed from the streaming statistics of online_softmax_stats."""
    if block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size}")
    m, row_sum = online_softmax_stats(x, block_size)
    m = torch.where(m == NEG_INF, 0.0, m)
    return torch.exp(x - m[..., None]) / row_sum[..., None]


def _causal_tile_mask(i0: int, i1: int, j0: int, j1: int, offset: int, device) -> Tensor:
    """(i1-i0, j1-j0) bool, True where key j comes AFTER query i (must be hidden): j > i + offset."""
    qi = torch.arange(i0, i1, device=device)[:, None]
    kj = torch.arange(j0, j1, device=device)[None, :]
    return kj > qi + offset


def _forward(q: Tensor, k: Tensor, v: Tensor, causal: bool, bq: int, bk: int) -> tuple[Tensor, Tensor]:
    """q (N, T_q, D), k (N, T_k, D), v (N, T_k, Dv) -> out (N, T_q, Dv), lse (N, T_q)."""
    N, T_q, D = q.shape
    T_k, Dv = k.shape[1], v.shape[2]
    scale = 1.0 / math.sqrt(D)
    offset = T_k - T_q  # causal: query i sits at absolute position i + offset (queries are the last ones)
    out = torch.zeros(N, T_q, Dv, dtype=q.dtype, device=q.device)
    lse_dtype = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
    lse = torch.full((N, T_q), NEG_INF, dtype=lse_dtype, device=q.device)
    for i0 in range(0, T_q, bq):
        i1 = min(i0 + bq, T_q)
        qi = q[:, i0:i1] * scale  # (N, bq, D)
        m = torch.full((N, i1 - i0), NEG_INF, dtype=q.dtype, device=q.device)  # running max
        row_sum = torch.zeros(N, i1 - i0, dtype=q.dtype, device=q.device)  # running sum of exp(s - m)
        acc = out[:, i0:i1]  # (N, bq, Dv) running numerator, a view into out
        k_end = min(T_k, i1 + offset) if causal else T_k  # keys past the last query's position are never seen
        for j0 in range(0, max(k_end, 0), bk):
            j1 = min(j0 + bk, k_end)
            s = torch.bmm(qi, k[:, j0:j1].transpose(1, 2))  # (N, bq, bk) one tile of scores
            if causal and j1 - 1 > i0 + offset:  # the tile crosses the diagonal
                s.masked_fill_(_causal_tile_mask(i0, i1, j0, j1, offset, q.device), NEG_INF)
            m_new = torch.maximum(m, s.amax(dim=-1))  # (N, bq)
            m_safe = m_new.masked_fill(m_new == NEG_INF, 0.0)  # rows with no visible key yet
            alpha = torch.exp(m - m_safe)  # (N, bq) rescales what was accumulated under the old max
            p = torch.exp_(s.sub_(m_safe[..., None]))  # (N, bq, bk) in place: s is not needed again
            row_sum.mul_(alpha).add_(p.sum(dim=-1))
            acc.mul_(alpha[..., None]).baddbmm_(p, v[:, j0:j1])  # acc = alpha * acc + p @ v_j
            m = m_new
        empty = row_sum == 0  # a query that may see no key at all: output 0 (as gptref.attention does)
        acc.div_(row_sum.masked_fill(empty, 1.0)[..., None])
        lse[:, i0:i1] = (m + torch.log(row_sum)).masked_fill(empty, NEG_INF)
    return out, lse


def _backward(dout, q, k, v, out, lse, causal: bool, bq: int, bk: int):
    """Tiled recomputing backward: dS = P * (dP - rowsum(dO * O)), P = exp(S - lse) per tile."""
    N, T_q, D = q.shape
    T_k = k.shape[1]
    scale = 1.0 / math.sqrt(D)
    offset = T_k - T_q
    delta = (dout * out).sum(dim=-1)  # (N, T_q): rowsum(dO * O) = rowsum(P * dP)
    lse = lse.masked_fill(lse == NEG_INF, float("inf")).to(q.dtype)  # rows that saw no key: P = 0
    dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
    for j0 in range(0, T_k, bk):
        j1 = min(j0 + bk, T_k)
        kj, vj = k[:, j0:j1], v[:, j0:j1]  # (N, bk, D), (N, bk, Dv)
        # causal: only queries at positions >= j0 see this key block; queries i >= j0 - offset
        i_start = max(0, (j0 - offset) // bq * bq) if causal else 0
        for i0 in range(i_start, T_q, bq):
            i1 = min(i0 + bq, T_q)
            qi, doi = q[:, i0:i1], dout[:, i0:i1]
            s = torch.bmm(qi, kj.transpose(1, 2)).mul_(scale)  # (N, bq, bk) recomputed scores
            if causal and j1 - 1 > i0 + offset:
                s.masked_fill_(_causal_tile_mask(i0, i1, j0, j1, offset, q.device), NEG_INF)
            p = torch.exp_(s.sub_(lse[:, i0:i1, None]))  # (N, bq, bk) the softmax weights
            dv[:, j0:j1].baddbmm_(p.transpose(1, 2), doi)  # dV_j += P^T dO_i
            dp = torch.bmm(doi, vj.transpose(1, 2))  # (N, bq, bk) dL/dP
            ds = p.mul_(dp.sub_(delta[:, i0:i1, None]))  # (N, bq, bk) dL/dS, in place over p
            dq[:, i0:i1].baddbmm_(ds, kj, alpha=scale)  # dQ_i += dS K_j / sqrt(D)
            dk[:, j0:j1].baddbmm_(ds.transpose(1, 2), qi, alpha=scale)  # dK_j += dS^T Q_i / sqrt(D)
    return dq, dk, dv


class _FlashAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, causal, bq, bk):
        out, lse = _forward(q, k, v, causal, bq, bk)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.causal, ctx.bq, ctx.bk = causal, bq, bk
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dout):
        q, k, v, out, lse = ctx.saved_tensors
        dq, dk, dv = _backward(dout.contiguous(), q, k, v, out, lse, ctx.causal, ctx.bq, ctx.bk)
        return dq, dk, dv, None, None, None


def flash_attention(q: Tensor, k: Tensor, v: Tensor, causal: bool = False, block_q: int = 64,
                    block_k: int = 64) -> Tensor:
    """softmax(q k^T / sqrt(D)) v for (..., T, D) inputs without ever holding a (T_q, T_k) matrix.

    causal=True aligns like gptref.attention.causal_mask: the queries are the LAST T_q of the T_k
    positions. A query that sees no key (causal with T_k < T_q) gets zeros. Peak extra memory is
    O(T * D + block_q * block_k) per head, in the forward and in the backward. The default
    64 x 64 tiles are the contract's (and a GPU kernel's); on a CPU, where each tile costs a few
    Python-dispatched ops, 256 x 256 tiles are faster (`python -m gptref bench flash` compares).
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor) or t.dim() < 2 or not t.is_floating_point():
            raise ValueError(f"{name} must be a float tensor (..., T, D), got {getattr(t, 'shape', type(t).__name__)}")
    if q.shape[:-2] != k.shape[:-2] or k.shape[:-2] != v.shape[:-2]:
        raise ValueError(f"q, k, v need the same leading dims, got {tuple(q.shape)}, {tuple(k.shape)}, "
                         f"{tuple(v.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k need the same head dim, got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v need the same length T_k, got k {tuple(k.shape)} and v {tuple(v.shape)}")
    for name, b in (("block_q", block_q), ("block_k", block_k)):
        if not isinstance(b, int) or b < 1:
            raise ValueError(f"{name} must be a positive int, got {b!r}")
    lead = q.shape[:-2]
    # (..., T, D) -> (N, T, D): one batch dim so each tile is a single bmm
    q3, k3, v3 = (t.reshape(-1, *t.shape[-2:]).contiguous() for t in (q, k, v))
    out = _FlashAttention.apply(q3, k3, v3, bool(causal), block_q, block_k)
    return out.reshape(*lead, *out.shape[-2:])  # (N, T_q, Dv) -> (..., T_q, Dv)
