"""The feed-forward block of every model here, its activation an option: GELU (GPT-2, BERT) or SwiGLU (Llama,
Baichuan 2). Parameter names follow the checkpoints each comes from, so weights load 1:1."""

from __future__ import annotations

import math

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

__all__ = ["MLP", "SwiGLU", "swiglu_hidden", "ACTIVATIONS"]

ACTIVATIONS = ("gelu", "gelu_tanh", "relu2", "swiglu")  # exact GELU (BERT), tanh GELU (GPT-2), ReLU^2, gated SiLU


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
    """Position-wise feed-forward n_embd -> hidden -> n_embd.

    activation "gelu"/"gelu_tanh": c_proj(GELU(c_fc(x))), hidden 4 n_embd (GPT-2's and BERT's names).
    activation "relu2": c_proj(relu(c_fc(x))^2), the squared ReLU of Primer (So et al. 2021), same shape.
    activation "swiglu": down_proj(silu(gate_proj(x)) * up_proj(x)) (Shazeer 2020), hidden 8/3 n_embd rounded
    up to `multiple_of` (Llama's names).
    """

    def __init__(self, n_embd: int, hidden: int | None = None, activation: str = "gelu_tanh", bias: bool = True,
                 dropout: float = 0.0, multiple_of: int = 128):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        if activation == "swiglu":
            hidden = swiglu_hidden(n_embd, multiple_of) if hidden is None else hidden
            self.gate_proj = nn.Linear(n_embd, hidden, bias=bias)
            self.up_proj = nn.Linear(n_embd, hidden, bias=bias)
            self.down_proj = nn.Linear(hidden, n_embd, bias=bias)
        else:
            hidden = 4 * n_embd if hidden is None else hidden
            self.c_fc = nn.Linear(n_embd, hidden, bias=bias)
            self.c_proj = nn.Linear(hidden, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """x (..., n_embd) -> (..., n_embd)."""
        if self.activation == "swiglu":
            return self.dropout(self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x)))
        if self.activation == "relu2":
            return self.dropout(self.c_proj(F.relu(self.c_fc(x)).square()))
        approximate = "tanh" if self.activation == "gelu_tanh" else "none"
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate=approximate)))


def SwiGLU(n_embd: int, hidden: int | None = None, bias: bool = False, multiple_of: int = 128,
           dropout: float = 0.0) -> MLP:
    """The SwiGLU MLP as Llama and Baichuan 2 build it (no biases): MLP(activation="swiglu")."""
    return MLP(n_embd, hidden=hidden, activation="swiglu", bias=bias, dropout=dropout, multiple_of=multiple_of)
