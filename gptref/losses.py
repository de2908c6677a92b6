"""Label-smoothed cross-entropy, written out, its KL-divergence form, and Baichuan 2's max-z loss."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["smoothed_targets", "label_smoothing_cross_entropy", "label_smoothing_kl", "max_z_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def smoothed_targets(target: Tensor, n_classes: int, smoothing: float = 0.1,
                     dtype: torch.dtype = torch.float32) -> Tensor:
    """(N,) class ids -> (N, C) distribution: 1 - smoothing + smoothing/C on the target, smoothing/C elsewhere."""
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"smoothing must be in [0, 1], got {smoothing}")
    if target.dtype != torch.long or (target.numel() and (target.min() < 0 or target.max() >= n_classes)):
        raise ValueError(f"target must hold int64 class ids in [0, {n_classes}), got dtype {target.dtype}")
    q = torch.full((*target.shape, n_classes), smoothing / n_classes, dtype=dtype, device=target.device)
    return q.scatter_add_(-1, target[..., None], torch.full_like(q[..., :1], 1.0 - smoothing))


def _flatten(logits: Tensor, target: Tensor, ignore_index: int, smoothing: float, reduction: str):
    """Validate; return logits as (N, C), target as (N,), the keep-mask and target's original shape."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"smoothing must be in [0, 1], got {smoothing}")
    if logits.dim() < 2:
        raise ValueError(f"logits must be (N, C) or (N, C, d1, ...), got {tuple(logits.shape)}")
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != expected or target.dtype != torch.long:
        raise ValueError(f"target must be int64 of shape {expected} for logits {tuple(logits.shape)}, "
                         f"got {tuple(target.shape)} {target.dtype}")
    C = logits.shape[1]
    flat_logits = logits.movedim(1, -1).reshape(-1, C)  # (N*d1*..., C)
    flat_target = target.reshape(-1)
    keep = flat_target != ignore_index
    bad = keep & ((flat_target < 0) | (flat_target >= C))
    if bad.any():
        raise ValueError(f"target has class ids outside [0, {C}) (ignore_index={ignore_index}): "
                         f"{flat_target[bad][:5].tolist()}")
    return flat_logits, flat_target, keep, target.shape


def _reduce(per_item: Tensor, keep: Tensor, shape, reduction: str) -> Tensor:
    per_item = per_item.masked_fill(~keep, 0.0)
    if reduction == "none":
        return per_item.reshape(shape)
    if reduction == "sum":
        return per_item.sum()
    return per_item.sum() / keep.sum()  # mean over the non-ignored items (NaN if none, as torch)


def label_smoothing_cross_entropy(
    logits: Tensor, target: Tensor, smoothing: float = 0.1, ignore_index: int = -100, reduction: str = "mean"
) -> Tensor:
    """Cross-entropy against the smoothed target q: -sum_c q_c log p_c, per item.

    Equals F.cross_entropy(logits, target, ignore_index=..., reduction=..., label_smoothing=smoothing)
    in value and gradient: (1 - s) * (-log p_y) + s * mean_c(-log p_c).
    """
    x, t, keep, shape = _flatten(logits, target, ignore_index, smoothing, reduction)
    logp = x.log_softmax(dim=-1)  # (N, C)
    safe_t = t.masked_fill(~keep, 0)  # any valid id; ignored rows are zeroed below
    q = smoothed_targets(safe_t, x.shape[-1], smoothing, dtype=logp.dtype)  # (N, C)
    return _reduce(-(q * logp).sum(dim=-1), keep, shape, reduction)


def label_smoothing_kl(
    logits: Tensor, target: Tensor, smoothing: float = 0.1, ignore_index: int = -100, reduction: str = "mean"
) -> Tensor:
    """KL(q || p) = sum_c q_c (log q_c - log p_c): the smoothed cross-entropy minus the entropy of q.

    The entropy does not depend on the logits, so the gradient is the cross-entropy's; the value
    reaches 0 when p = q (the smoothed cross-entropy's minimum is H(q) > 0 instead).
    """
    x, t, keep, shape = _flatten(logits, target, ignore_index, smoothing, reduction)
    logp = x.log_softmax(dim=-1)
    q = smoothed_targets(t.masked_fill(~keep, 0), x.shape[-1], smoothing, dtype=logp.dtype)
    return _reduce(torch.special.xlogy(q, q).sum(dim=-1) - (q * logp).sum(dim=-1), keep, shape, reduction)


def max_z_loss(logits: Tensor, weight: float = 2e-4, ignore_mask: Tensor | None = None) -> Tensor:
    """weight * mean over positions of z^2, z the LARGEST logit of each position (Baichuan 2, sec. 2.6).

    Baichuan 2's report writes L_max-z = 2e-4 * z^2 with z the maximum logit; its released
    modeling_baichuan.py computes `logits.max(-1).values ** 2`, averaged over all positions. (PaLM's
    z-loss squares log Z, the logsumexp, instead.) logits: (..., V); ignore_mask (...) bool, True
    where a position is left out of the mean (padding, prompt tokens).
    """
    if not isinstance(logits, Tensor) or logits.dim() < 1:
        raise ValueError(f"logits must be a tensor (..., V), got {getattr(logits, 'shape', type(logits).__name__)}")
    z2 = logits.max(dim=-1).values.pow(2)  # (...,)
    if ignore_mask is None:
        return weight * z2.mean()
    if tuple(ignore_mask.shape) != tuple(z2.shape) or ignore_mask.dtype != torch.bool:
        raise ValueError(f"ignore_mask must be a bool tensor of shape {tuple(z2.shape)} "
                         "(logits without the vocab dim), "
                         f"got {ignore_mask.dtype} {tuple(ignore_mask.shape)}")
    keep = ~ignore_mask
    return weight * z2.masked_fill(ignore_mask, 0.0).sum() / keep.sum()
