"""Feed-forward blocks: GPT-2's GELU MLP and the SwiGLU of Llama and Baichuan 2."""

from __future__ import annotations

import math

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

__all__ = ["MLP", "SwiGLU", "swiglu_hidden"]


def swiglu_hidden(n_embd: int, multiple_of: int = 128) -> int:
    """8/3 * n_embd rounded UP to a multiple of `multiple_of`: 11008 for 4096 (Llama 7B, Baichuan 2 7B).

    SwiGLU has three matrices instead of two; 8/3 instead of 4 keeps the parameters and FLOPs of
    GPT-2's 4x MLP.
    """
    for name, n in (("n_embd", n_embd), ("multiple_of", multiple_of)):
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"{name} must be a positive int, got {n!r}")
    return multiple_of * math.ceil(int(8 * n_embd / 3) / multiple_of)


class MLP(nn.Module):
    """GPT-2's feed-forward: c_proj(GELU(c_fc(x))), 4x wide (tanh GELU, as GPT-2)."""

    def __init__(self, n_embd: int, hidden: int | None = None, bias: bool = True, dropout: float = 0.0):
        super().__init__()
        hidden = 4 * n_embd if hidden is None else hidden
        self.c_fc = nn.Linear(n_embd, hidden, bias=bias)
        self.c_proj = nn.Linear(hidden, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class SwiGLU(nn.Module):
    """Shazeer's (2020) gated feed-forward: down(silu(gate(x)) * up(x)), Llama's names, no biases."""

    def __init__(self, n_embd: int, hidden: int | None = None, bias: bool = False, multiple_of: int = 128,
                 dropout: float = 0.0):
        super().__init__()
        hidden = swiglu_hidden(n_embd, multiple_of) if hidden is None else hidden
        self.gate_proj = nn.Linear(n_embd, hidden, bias=bias)
        self.up_proj = nn.Linear(n_embd, hidden, bias=bias)
        self.down_proj = nn.Linear(hidden, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x)))
