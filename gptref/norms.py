"""Layer normalization and RMSNorm over the last dimension, plus LayerNorm's backward by hand.

Both use the biased variance (divide by d, not d - 1), as torch.nn.LayerNorm does.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

__all__ = ["layer_norm", "rms_norm", "layer_norm_backward", "LayerNorm", "RMSNorm", "KERNELS"]


def _check(x: Tensor, weight: Tensor | None, bias: Tensor | None = None) -> None:
    if not isinstance(x, Tensor) or x.dim() < 1:
        raise ValueError(f"x must be a tensor with at least 1 dim, got {getattr(x, 'shape', type(x).__name__)}")
    d = x.shape[-1]
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != (d,):
            raise ValueError(f"{name} must have shape ({d},) to match x's last dim, got {tuple(p.shape)}")


def layer_norm(x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias over the last dim."""
    _check(x, weight, bias)
    mean = x.mean(dim=-1, keepdim=True)  # (..., 1)
    var = (x - mean).pow(2).mean(dim=-1, keepdim=True)  # biased variance, (..., 1)
    y = (x - mean) * torch.rsqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def rms_norm(x: Tensor, weight: Tensor | None = None, eps: float = 1e-6) -> Tensor:
    """x / sqrt(mean(x^2) + eps) * weight over the last dim: LayerNorm without centring or bias."""
    _check(x, weight)
    y = x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)
    return y if weight is None else y * weight


def layer_norm_backward(
    grad_out: Tensor, x: Tensor, weight: Tensor | None = None, eps: float = 1e-5
) -> tuple[Tensor, Tensor | None, Tensor]:
    """Gradients of layer_norm(x, weight, bias, eps) given dL/dy: (dx, dweight, dbias).

    With xhat = (x - mean) * rstd and g = grad_out * weight, the chain rule through the mean and
    the variance gives dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) (means over the last dim).
    dweight = sum(grad_out * xhat) and dbias = sum(grad_out) over all leading dims; dweight is None
    when weight is None.
    """
    _check(x, weight)
    if grad_out.shape != x.shape:
        raise ValueError(f"grad_out must have x's shape {tuple(x.shape)}, got {tuple(grad_out.shape)}")
    mean = x.mean(dim=-1, keepdim=True)
    rstd = torch.rsqrt((x - mean).pow(2).mean(dim=-1, keepdim=True) + eps)  # (..., 1)
    xhat = (x - mean) * rstd
    g = grad_out if weight is None else grad_out * weight
    dx = rstd * (g - g.mean(dim=-1, keepdim=True) - xhat * (g * xhat).mean(dim=-1, keepdim=True))
    lead = tuple(range(x.dim() - 1))
    dweight = None if weight is None else (grad_out * xhat).sum(dim=lead)
    dbias = grad_out.sum(dim=lead)
    return dx, dweight, dbias


KERNELS = ("math", "torch")


def _check_kernel(kernel: str) -> str:
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    return kernel


class LayerNorm(nn.Module):
    """nn.LayerNorm(d) written out: learnable weight (ones) and optional bias (zeros).

    kernel="math" runs layer_norm above; "torch" runs torch's fused F.layer_norm (same result, fewer
    kernels: what a model trains with on a CPU, where a baby GPT's time goes into small ops).
    """

    def __init__(self, d: int, eps: float = 1e-5, bias: bool = True, kernel: str = "math"):
        super().__init__()
        self.eps, self.kernel = eps, _check_kernel(kernel)
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        if self.kernel == "torch":
            return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)
        return layer_norm(x, self.weight, self.bias, self.eps)


class RMSNorm(nn.Module):
    """RMSNorm(d) (Zhang & Sennrich, 2019): learnable weight (ones), no bias; kernel as for LayerNorm."""

    def __init__(self, d: int, eps: float = 1e-6, kernel: str = "math"):
        super().__init__()
        self.eps, self.kernel = eps, _check_kernel(kernel)
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: Tensor) -> Tensor:
        if self.kernel == "torch":
            return F.rms_norm(x, self.weight.shape, self.weight, self.eps)
        return rms_norm(x, self.weight, self.eps)
