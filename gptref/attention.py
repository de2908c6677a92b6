"""Scaled dot-product attention, its masks, and the one multi-head attention module every model uses.

Conventions (see docs/api.md): attention tensors are (B, H, T, D); a boolean mask is True where a
query MAY attend to a key and broadcasts to (..., T_q, T_k); an additive float `bias` (ALiBi) broadcasts
to (B or 1, H, T_q, T_k). `attend` runs one of four kernels on the same inputs: "math" (the course's
scaled_dot_product_attention), "sdpa" (torch's fused one), "flash" (gptref.flash, tiled) and "triton"
(gptref.flash's Triton kernel, CUDA only). MultiHeadAttention (self or cross, grouped k/v heads, RoPE,
KVCache) is the attention of gptref.gpt.GPT and gptref.bert.Bert.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from gptref.positions import rope

__all__ = [
    "scaled_dot_product_attention",
    "causal_mask",
    "padding_mask",
    "split_heads",
    "merge_heads",
    "repeat_kv",
    "attend",
    "KERNELS",
    "KVCache",
    "LayerCaches",
    "MultiHeadAttention",
]

KERNELS = ("math", "sdpa", "flash", "triton")


def broadcast_shape(*shapes) -> torch.Size:
    """torch.broadcast_shapes without its first call's cost: that imports sympy, 0.8 CPU s in every process
    (a grading sandbox, a kernel) whose attention would otherwise be its only user. RuntimeError if they clash."""
    ndim = max((len(shape) for shape in shapes), default=0)
    out = [1] * ndim
    for shape in shapes:
        for axis, size in enumerate(shape, start=ndim - len(shape)):
            if size == 1 or size == out[axis]:
                continue
            if out[axis] != 1:
                raise RuntimeError(f"shapes {[tuple(s) for s in shapes]} do not broadcast (axis {axis - ndim})")
            out[axis] = size
    return torch.Size(out)


def _check_scores_operand(name: str, t: Tensor, scores_shape: torch.Size) -> None:
    """mask (bool, True = may attend) or bias (float, added): the right dtype, broadcasting to the scores."""
    is_mask = name == "mask"
    ok = isinstance(t, Tensor) and (t.dtype == torch.bool if is_mask else t.dtype.is_floating_point)
    if not ok:
        kind = t.dtype if isinstance(t, Tensor) else type(t).__name__
        want = "a bool tensor (True = may attend)" if is_mask else "a float tensor added to the scores"
        raise ValueError(f"{name} must be {want}, got {kind}")
    try:
        broadcast_shape(t.shape, scores_shape)
    except RuntimeError:
        raise ValueError(
            f"{name} of shape {tuple(t.shape)} does not broadcast to the scores' shape "
            f"{tuple(scores_shape)} (..., T_q, T_k)"
        ) from None


def scaled_dot_product_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *, dropout_p: float = 0.0,
    bias: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """softmax(q k^T / sqrt(D) + bias) v over the last two dims; returns (output, weights).

    q (..., T_q, D), k (..., T_k, D), v (..., T_k, D_v) with 3 or 4 dims. A query whose keys are
    all masked gets zero weights and a zero output (not the NaN a bare softmax of -inf gives).
    `dropout_p` drops weights when computing the output; the returned weights are undropped.
    `bias` (float, broadcasting to the scores) is added before masking, e.g. ALiBi's distance penalty.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor) or t.dim() not in (3, 4):
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a 3-D (B, T, D) or 4-D (B, H, T, D) tensor, got {shape}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k need the same last dim, got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v need the same length T_k, got k {tuple(k.shape)} and v {tuple(v.shape)}")

    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., T_q, T_k)
    if bias is not None:
        _check_scores_operand("bias", bias, scores.shape)
        scores = scores + bias
    if mask is None:
        weights = scores.softmax(dim=-1)
    else:
        _check_scores_operand("mask", mask, scores.shape)
        row_has_key = mask.any(dim=-1, keepdim=True)  # (..., T_q, 1)
        scores = scores.masked_fill(~mask, float("-inf"))
        # A fully masked row would be softmax([-inf, ...]) = NaN: give it finite scores, then zero it.
        scores = scores.masked_fill(~row_has_key, 0.0)
        weights = scores.softmax(dim=-1).masked_fill(~row_has_key, 0.0)
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0.0 else weights
    return dropped @ v, weights  # (..., T_q, D_v), (..., T_q, T_k)


def causal_mask(t_q: int, t_k: int | None = None, device=None) -> Tensor:
    """(t_q, t_k) bool mask, True on and below the diagonal aligned at the bottom-right.

    With t_k > t_q the queries are the LAST t_q of the t_k positions (decoding with a KV cache):
    query i sits at position t_k - t_q + i and may see keys 0..t_k - t_q + i.
    """
    t_k = t_q if t_k is None else t_k
    for name, n in (("t_q", t_q), ("t_k", t_k)):
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"{name} must be a non-negative int, got {n!r}")
    return torch.ones(t_q, t_k, dtype=torch.bool, device=device).tril(diagonal=t_k - t_q)


def padding_mask(key_is_token: Tensor) -> Tensor:
    """(B, T_k) bool, True = real token -> (B, 1, 1, T_k) mask that broadcasts over heads and queries."""
    if not isinstance(key_is_token, Tensor) or key_is_token.dim() != 2 or key_is_token.dtype != torch.bool:
        if isinstance(key_is_token, Tensor):
            desc = (tuple(key_is_token.shape), key_is_token.dtype)
        else:
            desc = type(key_is_token).__name__
        raise ValueError(f"key_is_token must be a 2-D (B, T_k) bool tensor, got {desc}")
    return key_is_token[:, None, None, :]  # (B, 1, 1, T_k)


def split_heads(x: Tensor, n_heads: int) -> Tensor:
    """(B, T, H*D) -> (B, H, T, D): each head gets its own contiguous slice of channels."""
    if x.dim() != 3 or x.shape[-1] % n_heads != 0:
        raise ValueError(f"x must be (B, T, C) with C divisible by n_heads={n_heads}, got {tuple(x.shape)}")
    B, T, C = x.shape
    return x.reshape(B, T, n_heads, C // n_heads).transpose(1, 2)  # (B, T, H, D) -> (B, H, T, D)


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, D) -> (B, T, H*D), the inverse of split_heads."""
    if x.dim() != 4:
        raise ValueError(f"x must be (B, H, T, D), got {tuple(x.shape)}")
    B, H, T, D = x.shape
    return x.transpose(1, 2).reshape(B, T, H * D)  # (B, T, H, D) -> (B, T, H*D)


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """(B, H_kv, T, D) -> (B, H_kv*n_rep, T, D): query head h reads key/value head h // n_rep."""
    return x if n_rep == 1 else x.repeat_interleave(n_rep, dim=1)


def _sdpa_mask(mask: Tensor | None, bias: Tensor | None, causal: bool, t_q: int, t_k: int,
               device) -> tuple[Tensor | None, bool]:
    """torch's attn_mask and is_causal for our (mask, bias, causal): is_causal only when it means causal_mask."""
    if causal and mask is None and bias is None and t_q in (t_k, 1):
        return None, t_q == t_k  # a single last query sees every key: no mask at all
    if causal:
        cm = causal_mask(t_q, t_k, device=device)  # (T_q, T_k)
        mask = cm if mask is None else mask & cm
    if bias is None:
        return mask, False
    return (bias if mask is None else bias.masked_fill(~mask, float("-inf"))), False


def attend(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, bias: Tensor | None = None, *,
    causal: bool = False, kernel: str = "math", dropout_p: float = 0.0,
) -> Tensor:
    """Attention output (B, H, T_q, D) of q (B, H, T_q, D), k, v (B, H, T_k, D) with the chosen kernel.

    causal=True means causal_mask(T_q, T_k) (queries are the LAST T_q positions, as with a KV cache);
    `mask` (bool, True = may attend) and `bias` (float, added to the scores) broadcast to (B, H, T_q, T_k).
    "flash" and "triton" compute only plain or causal attention: masks, biases and dropout need "math"/"sdpa".
    """
    if kernel == "sdpa":
        attn_mask, is_causal = _sdpa_mask(mask, bias, causal, q.shape[-2], k.shape[-2], q.device)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal)
    if kernel == "math":
        if causal:
            cm = causal_mask(q.shape[-2], k.shape[-2], device=q.device)  # (T_q, T_k)
            mask = cm if mask is None else mask & cm
        return scaled_dot_product_attention(q, k, v, mask, dropout_p=dropout_p, bias=bias)[0]
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    if mask is not None or bias is not None or dropout_p > 0.0:
        raise ValueError(f"kernel={kernel!r} computes plain or causal attention only: no mask, bias or "
                         "attention dropout (use kernel='math' or 'sdpa')")
    from gptref.flash import flash_attention, flash_attention_triton

    if kernel == "flash":
        return flash_attention(q, k, v, causal=causal)
    return flash_attention_triton(q, k, v, causal=causal)


@dataclass
class KVCache:
    """The keys and values one attention layer has seen so far, (B, H_kv, T_seen, D) each.

    Make one empty `KVCache()` per layer and pass it to every forward call of a generation.
    Self-attention appends the new tokens' k, v; cross-attention fills it once from `context`
    and reuses it. `length` is the number of positions cached (the next token's position);
    `max_len` (None = unbounded) is the capacity, checked on every append.
    """

    k: Tensor | None = None
    v: Tensor | None = None
    max_len: int | None = None

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.shape[-2]

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Concatenate the new (B, H_kv, T_new, D) keys/values; return everything cached."""
        if self.max_len is not None and self.length + k.shape[-2] > self.max_len:
            raise ValueError(f"KVCache holds at most max_len={self.max_len} positions: {self.length} cached "
                             f"+ {k.shape[-2]} new is too many")
        self.k = k if self.k is None else torch.cat([self.k, k], dim=-2)  # (B, H_kv, T_seen + T_new, D)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=-2)
        return self.k, self.v

    def reorder(self, index: Tensor) -> None:
        """Keep batch rows `index` (1-D LongTensor; repeats duplicate rows), e.g. the surviving beams."""
        if self.k is not None:
            self.k = self.k.index_select(0, index.to(self.k.device))
            self.v = self.v.index_select(0, index.to(self.v.device))


class LayerCaches(list):
    """One KVCache per layer of a decoder, seen as one cache by gptref.decoding: length, max_len, reorder."""

    def __init__(self, n_layers: int, max_len: int | None = None):
        super().__init__(KVCache(max_len=max_len) for _ in range(n_layers))
        self.max_len = max_len

    @property
    def length(self) -> int:
        return self[0].length

    def reorder(self, index: Tensor) -> None:
        for cache in self:
            cache.reorder(index)


class MultiHeadAttention(nn.Module):
    """Multi-head attention: self (context=None) or cross, with grouped-query heads and a KV cache.

    n_kv_heads (default n_heads) key/value heads are shared by groups of n_heads // n_kv_heads
    query heads: n_kv_heads=1 is multi-query attention. `dropout` acts on the attention weights.
    kernel: one of KERNELS (see `attend`). rope=True rotates q and k by their absolute positions
    (gptref.positions.rope, base rope_base). fused_qkv=True keeps GPT-2's layout and names, so its
    checkpoints map 1:1: one projection c_attn = [q; k; v] and the output projection c_proj
    (self-attention only); otherwise q_proj, k_proj, v_proj and out_proj. qk_norm=True gives every head's
    q and k unit RMS over the head dimension (QK-norm, parameter-free), so no score can grow without bound.
    """

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int | None = None, bias: bool = True,
                 dropout: float = 0.0, *, kernel: str = "math", fused_qkv: bool = False, rope: bool = False,
                 rope_base: float = 10000.0, qk_norm: bool = False):
        super().__init__()
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        if n_heads <= 0 or d_model % n_heads != 0:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        if n_kv_heads <= 0 or n_heads % n_kv_heads != 0:
            raise ValueError(f"n_heads={n_heads} must be divisible by n_kv_heads={n_kv_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        if rope and (d_model // n_heads) % 2:
            raise ValueError(f"rope=True needs an even head size, got d_model/n_heads={d_model // n_heads}")
        self.d_model, self.n_heads, self.n_kv_heads = d_model, n_heads, n_kv_heads
        self.head_dim = d_model // n_heads
        self.dropout, self.kernel, self.fused_qkv = dropout, kernel, fused_qkv
        self.rope, self.rope_base = rope, rope_base
        self.qk_norm = qk_norm  # RMS-normalise each head's q and k (no gain) before scoring: bounded logits
        kv_dim = n_kv_heads * self.head_dim
        if fused_qkv:
            self.c_attn = nn.Linear(d_model, d_model + 2 * kv_dim, bias=bias)
            self.c_proj = nn.Linear(d_model, d_model, bias=bias)
        else:
            self.q_proj = nn.Linear(d_model, d_model, bias=bias)
            self.k_proj = nn.Linear(d_model, kv_dim, bias=bias)
            self.v_proj = nn.Linear(d_model, kv_dim, bias=bias)
            self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def _check(self, x: Tensor, context: Tensor | None, causal: bool) -> None:
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must be (B, T, {self.d_model}), got {tuple(x.shape)}")
        if context is None:
            return
        if context.dim() != 3 or context.shape[-1] != self.d_model or context.shape[0] != x.shape[0]:
            raise ValueError(f"context must be (B={x.shape[0]}, T_k, {self.d_model}), got {tuple(context.shape)}")
        if causal:
            raise ValueError("causal=True is for self-attention; got a context (cross-attention)")
        if self.fused_qkv or self.rope:
            raise ValueError("cross-attention (a context) needs fused_qkv=False and rope=False")

    def _project(self, x: Tensor, context: Tensor | None, cache: KVCache | None) -> tuple[Tensor, Tensor, Tensor]:
        """q (B, H, T, D) and k, v (B, H_kv, S, D) of the new tokens; k, v are None when cached cross-attention."""
        B, T, _ = x.shape
        if self.fused_qkv:
            kv_dim = self.n_kv_heads * self.head_dim
            q, k, v = self.c_attn(x).split([self.d_model, kv_dim, kv_dim], dim=2)  # (B, T, C), (B, T, kv_dim) x2
            src_len = T
        else:
            q = self.q_proj(x)  # (B, T, C)
            if context is not None and cache is not None and cache.k is not None:
                return self._norm_head(q.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)), None, None
            src = x if context is None else context
            k, v, src_len = self.k_proj(src), self.v_proj(src), src.shape[1]  # (B, S, kv_dim) each
        q = q.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, src_len, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, H_kv, S, D)
        v = v.view(B, src_len, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, H_kv, S, D)
        return self._norm_head(q), self._norm_head(k), v

    def _norm_head(self, t: Tensor) -> Tensor:
        """QK-norm: t (B, H, T, D) scaled to unit RMS over D when qk_norm is on; t itself otherwise."""
        return F.rms_norm(t, (self.head_dim,)) if self.qk_norm else t

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        mask: Tensor | None = None,
        cache: KVCache | None = None,
        *,
        causal: bool = False,
        need_weights: bool = False,
        bias: Tensor | None = None,
        positions: Tensor | None = None,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """x (B, T, d_model) -> (B, T, d_model); with need_weights also the (B, H, T, T_k) weights.

        `mask` (bool) and `bias` (additive float, e.g. ALiBi) broadcast to (B, H, T, T_k) where T_k
        counts cached keys too. `causal=True` adds causal_mask(T, T_k) (self-attention only), so a
        cached decoder needs no hand-made mask. With rope, `positions` (T,) are x's absolute positions
        (default: cache.length + 0..T-1). need_weights computes with the "math" kernel.
        """
        self._check(x, context, causal)
        q, k, v = self._project(x, context, cache)
        if self.rope:
            if positions is None:
                start = cache.length if cache is not None else 0
                positions = torch.arange(start, start + x.shape[1], device=x.device)  # (T,)
            q = rope(q, positions, self.rope_base)  # (B, H, T, D)
            k = rope(k, positions, self.rope_base)  # (B, H_kv, T, D)
        if k is None:  # cross-attention: the context was projected on the first call
            k, v = cache.k, cache.v
        elif cache is not None:
            k, v = cache.append(k, v)  # (B, H_kv, T_k, D)

        n_rep = self.n_heads // self.n_kv_heads
        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)  # (B, H, T_k, D)
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            if causal:
                cm = causal_mask(x.shape[1], k.shape[-2], device=x.device)  # (T, T_k)
                mask = cm if mask is None else mask & cm
            out, weights = scaled_dot_product_attention(q, k, v, mask, dropout_p=p, bias=bias)  # (B, H, T, D)
        else:
            out = attend(q, k, v, mask, bias, causal=causal, kernel=self.kernel, dropout_p=p)  # (B, H, T, D)
        out = merge_heads(out)  # (B, T, d_model)
        out = self.c_proj(out) if self.fused_qkv else self.out_proj(out)
        return (out, weights) if need_weights else out
