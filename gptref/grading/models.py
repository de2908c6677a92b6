"""Argument objects the exercises build from plain data (torch only, no reference inside).

They live apart from the exercise modules so that the trusted verdict can rebuild them in a
sandbox where the exercise modules and their references are hidden: `to_plain()` gives the
plain data, `from_plain()` rebuilds the object (see autograder/inside/plaindata.REBUILDABLE).
"""

from __future__ import annotations

import torch


class TableModel:
    """(B, T) ids -> (B, T, V) logits read from a (L, V, V) table: row [position, previous token]."""

    def __init__(self, table: torch.Tensor):
        if table.dim() == 2:
            table = table[None]  # a plain bigram table: the same at every position
        self.table = table

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        pos = torch.arange(T).clamp(max=self.table.shape[0] - 1)  # (T,)
        return self.table[pos[None, :], idx]  # (B, T, V)

    def to_plain(self) -> dict:
        return {"table": self.table}

    @classmethod
    def from_plain(cls, state: dict) -> "TableModel":
        table = state["table"]
        if not isinstance(table, torch.Tensor) or table.dim() != 3:
            raise ValueError("a TableModel needs a (L, V, V) tensor")
        return cls(table)
