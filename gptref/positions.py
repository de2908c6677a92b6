"""Position information: sinusoidal absolute embeddings, rotary position embeddings (RoPE) and ALiBi biases."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["sinusoidal_positions", "rope_angles", "rope", "alibi_slopes", "alibi_bias"]


def sinusoidal_positions(n_positions: int, d_model: int, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
    """(n, d) table of "Attention is all you need": PE[p, 2i] = sin(p w_i), PE[p, 2i+1] = cos(p w_i),
    with w_i = 10000^(-2i/d)."""
    for name, n in (("n_positions", n_positions), ("d_model", d_model)):
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be a positive int, got {n!r}")
    pos = torch.arange(n_positions, dtype=torch.float64, device=device)[:, None]  # (n, 1)
    freq = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64, device=device) / d_model)  # (ceil(d/2),)
    angles = pos * freq  # (n, ceil(d/2))
    pe = torch.empty(n_positions, d_model, dtype=torch.float64, device=device)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles[:, : d_model // 2])
    return pe.to(dtype)


def rope_angles(positions: Tensor, dim: int, base: float = 10000.0) -> Tensor:
    """(..., T) positions -> (..., T, dim/2) angles p * theta_i, theta_i = base^(-2i/dim)."""
    theta = base ** (-torch.arange(0, dim, 2, dtype=torch.float64, device=positions.device) / dim)  # (dim/2,)
    return positions.to(torch.float64)[..., None] * theta  # (..., T, dim/2)


def rope(x: Tensor, positions: Tensor | None = None, base: float = 10000.0, interleaved: bool = True) -> Tensor:
    """Rotate each channel pair of x (..., T, D) by the angle p * theta_i of its position p.

    interleaved=True pairs channels (2i, 2i+1) as in RoFormer; False pairs (i, i + D/2) as in
    GPT-NeoX / Llama implementations. Then q_m . k_n depends only on m - n.
    """
    if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[-1] % 2 != 0:
        raise ValueError(f"x must be (..., T, D) with D even, got {getattr(x, 'shape', type(x).__name__)}")
    T, D = x.shape[-2], x.shape[-1]
    if positions is None:
        positions = torch.arange(T, device=x.device)
    positions = torch.as_tensor(positions, device=x.device)
    if positions.dim() == 0 or positions.shape[-1] != T:
        raise ValueError(f"positions must have length T={T} in its last dim, got shape {tuple(positions.shape)}")
    ang = rope_angles(positions, D, base)  # (..., T, D/2), in float64 for accuracy at large p
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    if interleaved:
        x1, x2 = x[..., 0::2], x[..., 1::2]  # (..., T, D/2) each: the pairs (2i, 2i+1)
    else:
        x1, x2 = x[..., : D // 2], x[..., D // 2 :]  # the pairs (i, i + D/2)
    r1 = x1 * cos - x2 * sin
    r2 = x1 * sin + x2 * cos
    if interleaved:
        return torch.stack([r1, r2], dim=-1).flatten(-2)  # (..., T, D/2, 2) -> (..., T, D)
    return torch.cat([r1, r2], dim=-1)  # (..., T, D)


def _geometric_slopes(n: int) -> list[float]:
    """ALiBi's slopes for a power of two n: 2^(-8/n), 2^(-16/n), ..., 2^(-8)."""
    start = 2.0 ** (-8.0 / n)
    return [start ** (i + 1) for i in range(n)]


def alibi_slopes(n_heads: int) -> Tensor:
    """(H,) float32 head slopes of ALiBi (Press et al., 2022), as in the 13B Baichuan 2 model.

    For H a power of two the slopes are the geometric sequence 2^(-8i/H), i = 1..H. Otherwise
    the paper's rule: the H' = 2^floor(log2 H) slopes of H', then every other slope of 2H'
    (the ones that fall between them) until there are H.
    """
    if not isinstance(n_heads, int) or isinstance(n_heads, bool) or n_heads < 1:
        raise ValueError(f"n_heads must be a positive int, got {n_heads!r}")
    p = 2 ** int(math.floor(math.log2(n_heads)))
    slopes = _geometric_slopes(p)
    if p < n_heads:
        slopes += _geometric_slopes(2 * p)[0::2][: n_heads - p]
    return torch.tensor(slopes, dtype=torch.float32)


def alibi_bias(n_heads: int, t_q: int, t_k: int | None = None, device=None,
               dtype: torch.dtype = torch.float32) -> Tensor:
    """(H, t_q, t_k) additive attention bias -slope_h * (i - j) for query i and key j <= i.

    With t_k > t_q (a KV cache) the queries are the LAST t_q of the t_k positions, so query row r
    sits at position t_k - t_q + r. Future keys (j > i) get 0 here: combine with a causal mask.
    BLOOM and Baichuan add +slope * j instead, which differs from this by a per-row constant
    (slope * i) that the softmax ignores.
    """
    t_k = t_q if t_k is None else t_k
    for name, n in (("t_q", t_q), ("t_k", t_k)):
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"{name} must be a positive int, got {n!r}")
    if t_k < t_q:
        raise ValueError(f"t_k (keys, {t_k}) must be at least t_q (queries, {t_q}): the queries are the last positions")
    q_pos = torch.arange(t_k - t_q, t_k, device=device)[:, None]  # (t_q, 1)
    k_pos = torch.arange(t_k, device=device)[None, :]  # (1, t_k)
    distance = (q_pos - k_pos).clamp(min=0).to(torch.float32)  # (t_q, t_k), 0 on and above the diagonal
    slopes = alibi_slopes(n_heads).to(device)  # (H,)
    return (-slopes[:, None, None] * distance).to(dtype)  # (H, t_q, t_k)
