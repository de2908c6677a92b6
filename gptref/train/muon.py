"""Muon (Keller Jordan, 2024) with its Newton-Schulz iteration in float32, for CPUs.

Muon replaces a matrix's momentum by the nearest orthogonal matrix (all singular values ~1) before stepping, so
every direction of the update moves at the same rate instead of a few dominant ones. torch.optim.Muon does the
same, but its Newton-Schulz runs in bfloat16, and a CPU without bfloat16 matrix units (like the homework's) runs
that far slower than float32; the update rule is otherwise the same (tests/test_recipe.py checks it).
"""

from __future__ import annotations

import math

import torch

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # the quintic of Keller Jordan's muon.py (and torch.optim.Muon)


def orthogonalise(matrix: torch.Tensor, steps: int = 5, eps: float = 1e-7) -> torch.Tensor:
    """Newton-Schulz: matrix (A, B) -> roughly U V^T of its SVD (singular values pushed into about [0.7, 1.2])."""
    a, b, c = NS_COEFFICIENTS
    wide = matrix.float()
    tall = wide.size(0) > wide.size(1)
    if tall:
        wide = wide.T  # (B, A): iterate on the short side
    wide = wide / wide.norm().clamp(min=eps)  # spectral norm <= Frobenius norm = 1
    for _ in range(steps):
        gram = wide @ wide.T  # (short, short)
        poly = torch.addmm(gram, gram, gram, beta=b, alpha=c)  # b G + c G^2
        wide = torch.addmm(wide, poly, wide, beta=a)  # a X + (b G + c G^2) X
    return (wide.T if tall else wide).to(matrix.dtype)


class Muon(torch.optim.Optimizer):
    """Nesterov momentum, orthogonalised, scaled by sqrt(max(1, rows/cols)); decoupled weight decay. 2-D only."""

    def __init__(self, params, lr: float = 0.02, weight_decay: float = 0.0, momentum: float = 0.95,
                 ns_steps: int = 5):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, ns_steps=ns_steps))
        for group in self.param_groups:
            for param in group["params"]:
                if param.dim() != 2:
                    raise ValueError(f"Muon takes 2-D matrices only, got a parameter of shape {tuple(param.shape)}")

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(param)
                buf = state["momentum_buffer"]
                buf.lerp_(param.grad, 1 - momentum)  # buf = momentum buf + (1 - momentum) grad
                update = param.grad.lerp(buf, momentum)  # Nesterov: look one step ahead along the momentum
                update = orthogonalise(update, group["ns_steps"])
                rows, cols = param.shape
                param.mul_(1 - lr * group["weight_decay"])
                param.add_(update, alpha=-lr * math.sqrt(max(1.0, rows / cols)))
        return None
