"""Scaled dot-product attention, its masks, and multi-head attention (with GQA and a KV cache).

Conventions (see shared/gptref-api.md): attention tensors are (B, H, T, D); a boolean mask is
True where a query MAY attend to a key and broadcasts to (..., T_q, T_k).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "scaled_dot_product_attention",
    "causal_mask",
    "padding_mask",
    "split_heads",
    "merge_heads",
    "repeat_kv",
    "KVCache",
    "MultiHeadAttention",
]


def _check_mask(mask: Tensor, scores_shape: torch.Size) -> None:
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        kind = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise ValueError(f"mask must be a bool tensor (True = may attend), got {kind}")
    try:
        torch.broadcast_shapes(mask.shape, scores_shape)
    except RuntimeError:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
            f"{tuple(scores_shape)} (..., T_q, T_k)"
        ) from None


def scaled_dot_product_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *, dropout_p: float = 0.0
) -> tuple[Tensor, Tensor]:
    """softmax(q k^T / sqrt(D)) v over the last two dims; returns (output, weights).

    q (..., T_q, D), k (..., T_k, D), v (..., T_k, D_v) with 3 or 4 dims. A query whose keys are
    all masked gets zero weights and a zero output (not the NaN a bare softmax of -inf gives).
    `dropout_p` drops weights when computing the output; the returned weights are undropped.
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
    if mask is None:
        weights = scores.softmax(dim=-1)
    else:
        _check_mask(mask, scores.shape)
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
        desc = (tuple(key_is_token.shape), key_is_token.dtype) if isinstance(key_is_token, Tensor) else type(key_is_token).__name__
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


@dataclass
class KVCache:
    """The keys and values one attention layer has seen so far, (B, H_kv, T_seen, D) each.

    Make one empty `KVCache()` per layer and pass it to every forward call of a generation.
    Self-attention appends the new tokens' k, v; cross-attention fills it once from `context`
    and reuses it. `length` is the number of positions cached (the next token's position).
    """

    k: Tensor | None = None
    v: Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.shape[-2]

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Concatenate the new (B, H_kv, T_new, D) keys/values; return everything cached."""
        self.k = k if self.k is None else torch.cat([self.k, k], dim=-2)  # (B, H_kv, T_seen + T_new, D)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=-2)
        return self.k, self.v


class MultiHeadAttention(nn.Module):
    """Multi-head attention: self (context=None) or cross, with grouped-query heads and a KV cache.

    n_kv_heads (default n_heads) key/value heads are shared by groups of n_heads // n_kv_heads
    query heads: n_kv_heads=1 is multi-query attention. `dropout` acts on the attention weights.
    """

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int | None = None, bias: bool = True, dropout: float = 0.0):
        super().__init__()
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        if n_heads <= 0 or d_model % n_heads != 0:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        if n_kv_heads <= 0 or n_heads % n_kv_heads != 0:
            raise ValueError(f"n_heads={n_heads} must be divisible by n_kv_heads={n_kv_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.d_model, self.n_heads, self.n_kv_heads = d_model, n_heads, n_kv_heads
        self.head_dim = d_model // n_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        mask: Tensor | None = None,
        cache: KVCache | None = None,
        *,
        causal: bool = False,
        need_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """x (B, T, d_model) -> (B, T, d_model); with need_weights also the (B, H, T, T_k) weights.

        `mask` broadcasts to (B, H, T, T_k) where T_k counts cached keys too. `causal=True` adds
        causal_mask(T, T_k) (self-attention only), so a cached decoder needs no hand-made mask.
        """
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must be (B, T, {self.d_model}), got {tuple(x.shape)}")
        if context is not None and (context.dim() != 3 or context.shape[-1] != self.d_model or context.shape[0] != x.shape[0]):
            raise ValueError(f"context must be (B={x.shape[0]}, T_k, {self.d_model}), got {tuple(context.shape)}")
        if causal and context is not None:
            raise ValueError("causal=True is for self-attention; got a context (cross-attention)")
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)

        if context is not None and cache is not None and cache.k is not None:
            k, v = cache.k, cache.v  # cross-attention: the context was projected on the first call
        else:
            src = x if context is None else context
            S = src.shape[1]
            k = self.k_proj(src).view(B, S, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, H_kv, S, D)
            v = self.v_proj(src).view(B, S, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, H_kv, S, D)
            if cache is not None:
                k, v = cache.append(k, v)  # (B, H_kv, T_k, D)

        n_rep = self.n_heads // self.n_kv_heads
        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)  # (B, H, T_k, D)
        if causal:
            cm = causal_mask(T, k.shape[-2], device=x.device)  # (T, T_k)
            mask = cm if mask is None else mask & cm
        p = self.dropout if self.training else 0.0
        out, weights = scaled_dot_product_attention(q, k, v, mask, dropout_p=p)  # (B, H, T, D)
        out = self.out_proj(merge_heads(out))  # (B, T, d_model)
        return (out, weights) if need_weights else out
