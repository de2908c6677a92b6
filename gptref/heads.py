"""Output heads: Baichuan 2's NormHead, whose logits are the hidden state against unit-norm token rows."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch import Tensor

__all__ = ["NormHead", "norm_head_logits"]


def norm_head_logits(x: Tensor, weight: Tensor, eps: float = 1e-12) -> Tensor:
    """x (..., C) @ (rows of weight (V, C) scaled to L2 norm 1).T -> (..., V) logits."""
    if weight.dim() != 2 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"weight must be (V, {x.shape[-1]}) for x (..., {x.shape[-1]}), got {tuple(weight.shape)}")
    unit = weight / weight.norm(dim=1, keepdim=True).clamp(min=eps)  # (V, C), each row of norm 1
    return x @ unit.t()


class NormHead(nn.Module):
    """lm_head with L2-normalised rows (Baichuan 2, sec. 2.6): a logit depends on the angle between
    the hidden state and a token's row, not on that row's norm, which rare tokens cannot learn well.

    The rows are normalised on every forward (the open code caches the normalised weight in eval
    mode; that is a speed trick with the same output). No bias; not weight-tied.
    """

    def __init__(self, n_embd: int, vocab_size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(vocab_size, n_embd))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Linear's default, as the open code

    def forward(self, x: Tensor) -> Tensor:
        return norm_head_logits(x, self.weight)
