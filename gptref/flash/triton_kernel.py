"""Flash attention as Triton kernels (forward and backward), for (B, H, T, D) fp16/bf16 CUDA tensors.

Read it next to notebook 08 and gptref/flash/tiled.py, which does the same thing in plain torch:

* one program instance owns one tile of BLOCK_M queries of one (batch, head) and keeps that tile
  in registers/SRAM while it streams over the keys BLOCK_N at a time ("tiling");
* per query it keeps the running max m_i, the running sum l_i of exp(s - m_i) and the running,
  unnormalized output acc ("online softmax"); when a new key block raises the max, the old l_i
  and acc are rescaled by alpha = exp(m_old - m_new), exactly as in the notebook's derivation;
* only the output O and the per-query log-sum-exp L = m + log(l) go back to HBM, so memory is
  O(T * D), never O(T^2);
* the backward recomputes each score tile from Q, K and L instead of storing P (FlashAttention-2):
  one kernel walks the queries for a block of keys (dK, dV), another walks the keys for a block of
  queries (dQ), so no two programs write the same output and no atomics are needed.

Scores are kept in base-2 units (s * log2(e)) so that exp becomes the cheaper exp2; L is stored in
the same units. causal=True aligns like gptref.attention.causal_mask: with T_k != T_q the queries
are the LAST T_q positions, i.e. query i may see key j iff j <= i + (T_k - T_q).

This module imports triton at import time; gptref.flash imports it only when the kernel is called.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

LOG2E = 1.4426950408889634  # log2(e): exp(x) = exp2(x * log2(e))


@triton.jit
def _attn_fwd(
    Q, K, V, Out, L,  # pointers: q (B,H,T_q,D), k, v (B,H,T_k,D), o like q, L (B*H, T_q) float32
    stride_qb, stride_qh, stride_qt,
    stride_kb, stride_kh, stride_kt,
    stride_vb, stride_vh, stride_vt,
    stride_ob, stride_oh, stride_ot,
    H, T_q, T_k, offset, qk_scale,  # offset = T_k - T_q; qk_scale = log2(e) / sqrt(D)
    CAUSAL: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    start_m = tl.program_id(0)  # which tile of queries
    bh = tl.program_id(1)  # which (batch, head)
    b, h = bh // H, bh % H
    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)  # query rows of this tile
    offs_n = tl.arange(0, BLOCK_N)  # key columns within one key tile
    offs_d = tl.arange(0, HEAD_DIM)
    row_ok = offs_m < T_q  # the last tile may run past T_q: those rows are masked off

    # Load the query tile once; it stays on chip for the whole loop over keys.
    q_ptrs = Q + b * stride_qb + h * stride_qh + offs_m[:, None] * stride_qt + offs_d[None, :]
    q = tl.load(q_ptrs, mask=row_ok[:, None], other=0.0)  # (BLOCK_M, D)

    # Online-softmax state, in float32: running max, running sum, running numerator.
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)

    # Causal: keys after the last query of this tile are never visible, so stop the loop there.
    hi = T_k
    if CAUSAL:
        hi = tl.minimum(T_k, (start_m + 1) * BLOCK_M + offset)
    k_base = K + b * stride_kb + h * stride_kh
    v_base = V + b * stride_vb + h * stride_vh
    for start_n in range(0, hi, BLOCK_N):
        cols = start_n + offs_n
        col_ok = cols < T_k
        k_ptrs = k_base + cols[:, None] * stride_kt + offs_d[None, :]
        k = tl.load(k_ptrs, mask=col_ok[:, None], other=0.0)  # (BLOCK_N, D)
        # One tile of scores, S = Q K^T / sqrt(D), in base-2 units.
        s = tl.dot(q, tl.trans(k)) * qk_scale  # (BLOCK_M, BLOCK_N) float32
        visible = col_ok[None, :]
        if CAUSAL:
            visible = visible & (cols[None, :] <= offs_m[:, None] + offset)
        s = tl.where(visible, s, float("-inf"))

        # Online softmax: new max, rescale what was accumulated under the old max, add this tile.
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # a row that has seen no key yet
        p = tl.math.exp2(s - m_safe[:, None])  # (BLOCK_M, BLOCK_N) unnormalized weights
        alpha = tl.math.exp2(m_i - m_safe)  # exp(m_old - m_new): 0 on the first visible tile
        l_i = l_i * alpha + tl.sum(p, 1)
        v_ptrs = v_base + cols[:, None] * stride_vt + offs_d[None, :]
        v = tl.load(v_ptrs, mask=col_ok[:, None], other=0.0)  # (BLOCK_N, D)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new

    # Normalize once at the end; a query that saw no key at all outputs zeros.
    empty = l_i == 0.0
    acc = acc / tl.where(empty, 1.0, l_i)[:, None]
    o_ptrs = Out + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_ot + offs_d[None, :]
    tl.store(o_ptrs, acc.to(Out.dtype.element_ty), mask=row_ok[:, None])
    # Log-sum-exp per query (base 2), all the backward needs to rebuild P; +inf makes P = 0.
    lse = tl.where(empty, float("inf"), m_i + tl.math.log2(tl.where(empty, 1.0, l_i)))
    tl.store(L + bh * T_q + offs_m, lse, mask=row_ok)


@triton.jit
def _attn_bwd_delta(
    Out, DO, Delta, stride_ob, stride_oh, stride_ot, H, T_q,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr,
):
    """Delta_i = sum_d O_id dO_id = sum_j P_ij dP_ij, the softmax backward's row term."""
    start_m, bh = tl.program_id(0), tl.program_id(1)
    b, h = bh // H, bh % H
    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    row_ok = offs_m < T_q
    ptrs = b * stride_ob + h * stride_oh + offs_m[:, None] * stride_ot + offs_d[None, :]
    o = tl.load(Out + ptrs, mask=row_ok[:, None], other=0.0).to(tl.float32)
    do = tl.load(DO + ptrs, mask=row_ok[:, None], other=0.0).to(tl.float32)
    tl.store(Delta + bh * T_q + offs_m, tl.sum(o * do, 1), mask=row_ok)


@triton.jit
def _attn_bwd_dkdv(
    Q, K, V, DO, L, Delta, DK, DV,  # q, do (B,H,T_q,D); k, v, dk, dv (B,H,T_k,D); L, Delta (B*H, T_q)
    stride_qb, stride_qh, stride_qt,  # shared by q and do
    stride_kb, stride_kh, stride_kt,  # shared by k, v, dk, dv
    H, T_q, T_k, offset, qk_scale, sm_scale,
    CAUSAL: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """One program per tile of BLOCK_N keys: walk the query tiles that can see them, accumulating
    dV += P^T dO and dK += dS^T Q / sqrt(D), with P rebuilt from the saved log-sum-exp."""
    start_n, bh = tl.program_id(0), tl.program_id(1)
    b, h = bh // H, bh % H
    offs_n = start_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    col_ok = offs_n < T_k
    kv_off = b * stride_kb + h * stride_kh + offs_n[:, None] * stride_kt + offs_d[None, :]
    k = tl.load(K + kv_off, mask=col_ok[:, None], other=0.0)  # (BLOCK_N, D)
    v = tl.load(V + kv_off, mask=col_ok[:, None], other=0.0)
    dk = tl.zeros([BLOCK_N, HEAD_DIM], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, HEAD_DIM], dtype=tl.float32)

    lo = 0
    if CAUSAL:  # queries i < start_n*BLOCK_N - offset cannot see any key of this tile
        lo = (tl.maximum(start_n * BLOCK_N - offset, 0) // BLOCK_M) * BLOCK_M
    q_base = b * stride_qb + h * stride_qh
    for start_m in range(lo, T_q, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        row_ok = offs_m < T_q
        q_off = q_base + offs_m[:, None] * stride_qt + offs_d[None, :]
        q = tl.load(Q + q_off, mask=row_ok[:, None], other=0.0)  # (BLOCK_M, D)
        do = tl.load(DO + q_off, mask=row_ok[:, None], other=0.0)
        lse = tl.load(L + bh * T_q + offs_m, mask=row_ok, other=float("inf"))
        delta = tl.load(Delta + bh * T_q + offs_m, mask=row_ok, other=0.0)
        # Recompute this tile of P = exp(S - L) instead of having stored it.
        s = tl.dot(q, tl.trans(k)) * qk_scale  # (BLOCK_M, BLOCK_N)
        visible = row_ok[:, None] & col_ok[None, :]
        if CAUSAL:
            visible = visible & (offs_n[None, :] <= offs_m[:, None] + offset)
        p = tl.where(visible, tl.math.exp2(s - lse[:, None]), 0.0)
        dv += tl.dot(tl.trans(p.to(do.dtype)), do)  # dV_j += P^T dO
        dp = tl.dot(do, tl.trans(v))  # dP = dO V^T, (BLOCK_M, BLOCK_N)
        ds = p * (dp - delta[:, None])  # softmax backward: dS = P * (dP - rowsum(P * dP))
        dk += tl.dot(tl.trans(ds.to(q.dtype)), q)  # dK_j += dS^T Q (times 1/sqrt(D) below)

    tl.store(DK + kv_off, (dk * sm_scale).to(DK.dtype.element_ty), mask=col_ok[:, None])
    tl.store(DV + kv_off, dv.to(DV.dtype.element_ty), mask=col_ok[:, None])


@triton.jit
def _attn_bwd_dq(
    Q, K, V, DO, L, Delta, DQ,
    stride_qb, stride_qh, stride_qt,  # shared by q, do, dq
    stride_kb, stride_kh, stride_kt,  # shared by k, v
    H, T_q, T_k, offset, qk_scale, sm_scale,
    CAUSAL: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """One program per tile of BLOCK_M queries: walk the visible key tiles, dQ += dS K / sqrt(D)."""
    start_m, bh = tl.program_id(0), tl.program_id(1)
    b, h = bh // H, bh % H
    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    row_ok = offs_m < T_q
    q_off = b * stride_qb + h * stride_qh + offs_m[:, None] * stride_qt + offs_d[None, :]
    q = tl.load(Q + q_off, mask=row_ok[:, None], other=0.0)
    do = tl.load(DO + q_off, mask=row_ok[:, None], other=0.0)
    lse = tl.load(L + bh * T_q + offs_m, mask=row_ok, other=float("inf"))
    delta = tl.load(Delta + bh * T_q + offs_m, mask=row_ok, other=0.0)
    dq = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)

    hi = T_k
    if CAUSAL:
        hi = tl.minimum(T_k, (start_m + 1) * BLOCK_M + offset)
    kv_base = b * stride_kb + h * stride_kh
    for start_n in range(0, hi, BLOCK_N):
        cols = start_n + offs_n
        col_ok = cols < T_k
        kv_off = kv_base + cols[:, None] * stride_kt + offs_d[None, :]
        k = tl.load(K + kv_off, mask=col_ok[:, None], other=0.0)
        v = tl.load(V + kv_off, mask=col_ok[:, None], other=0.0)
        s = tl.dot(q, tl.trans(k)) * qk_scale
        visible = row_ok[:, None] & col_ok[None, :]
        if CAUSAL:
            visible = visible & (cols[None, :] <= offs_m[:, None] + offset)
        p = tl.where(visible, tl.math.exp2(s - lse[:, None]), 0.0)
        dp = tl.dot(do, tl.trans(v))
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(k.dtype), k)

    tl.store(DQ + q_off, (dq * sm_scale).to(DQ.dtype.element_ty), mask=row_ok[:, None])


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not t.is_cuda or t.dim() != 4 or t.dtype not in (torch.float16, torch.bfloat16):
            raise ValueError(f"{name} must be a 4-D (B, H, T, D) float16/bfloat16 CUDA tensor, "
                             f"got {tuple(t.shape)} {t.dtype} on {t.device}")
    if q.dtype != k.dtype or k.dtype != v.dtype:
        raise ValueError(f"q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if q.shape[:2] != k.shape[:2] or k.shape != v.shape or q.shape[-1] != k.shape[-1]:
        raise ValueError("need q (B, H, T_q, D) and k, v (B, H, T_k, D), "
                         f"got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape[-1] not in (16, 32, 64, 128):
        raise ValueError(f"head dim D must be 16, 32, 64 or 128, got {q.shape[-1]}")


def _fwd_config(D: int) -> tuple[int, int, int, int]:
    """(BLOCK_M, BLOCK_N, num_warps, num_stages): tiles that fit in SRAM for this head dim."""
    return (128, 64, 4, 3) if D <= 64 else (128, 32, 8, 2)


class _TritonFlashAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, causal: bool):
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        B, H, T_q, D = q.shape
        T_k = k.shape[2]
        o = torch.empty_like(q)
        lse = torch.empty(B * H, T_q, device=q.device, dtype=torch.float32)
        sm_scale = 1.0 / math.sqrt(D)
        BLOCK_M, BLOCK_N, warps, stages = _fwd_config(D)
        grid = (triton.cdiv(T_q, BLOCK_M), B * H)
        _attn_fwd[grid](
            q, k, v, o, lse,
            q.stride(0), q.stride(1), q.stride(2),
            k.stride(0), k.stride(1), k.stride(2),
            v.stride(0), v.stride(1), v.stride(2),
            o.stride(0), o.stride(1), o.stride(2),
            H, T_q, T_k, T_k - T_q, sm_scale * LOG2E,
            CAUSAL=causal, HEAD_DIM=D, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N,
            num_warps=warps, num_stages=stages,
        )
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.causal, ctx.sm_scale = causal, sm_scale
        return o

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, do):
        q, k, v, o, lse = ctx.saved_tensors
        do = do.contiguous()
        B, H, T_q, D = q.shape
        T_k = k.shape[2]
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        delta = torch.empty_like(lse)
        BLOCK = 64
        warps = 4 if D <= 64 else 8
        _attn_bwd_delta[(triton.cdiv(T_q, BLOCK), B * H)](
            o, do, delta, o.stride(0), o.stride(1), o.stride(2), H, T_q, HEAD_DIM=D, BLOCK_M=BLOCK,
        )
        common = dict(CAUSAL=ctx.causal, HEAD_DIM=D, BLOCK_M=BLOCK, BLOCK_N=BLOCK, num_warps=warps, num_stages=2)
        scales = (H, T_q, T_k, T_k - T_q, ctx.sm_scale * LOG2E, ctx.sm_scale)
        _attn_bwd_dkdv[(triton.cdiv(T_k, BLOCK), B * H)](
            q, k, v, do, lse, delta, dk, dv,
            q.stride(0), q.stride(1), q.stride(2),
            k.stride(0), k.stride(1), k.stride(2),
            *scales, **common,
        )
        _attn_bwd_dq[(triton.cdiv(T_q, BLOCK), B * H)](
            q, k, v, do, lse, delta, dq,
            q.stride(0), q.stride(1), q.stride(2),
            k.stride(0), k.stride(1), k.stride(2),
            *scales, **common,
        )
        return dq, dk, dv, None


def triton_flash_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False) -> torch.Tensor:
    """softmax(q k^T / sqrt(D)) v with the kernels above; differentiable."""
    _check(q, k, v)
    return _TritonFlashAttention.apply(q, k, v, bool(causal))
