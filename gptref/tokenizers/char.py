"""Character tokenizer: one token per character of a fixed alphabet (the homework's default)."""

from __future__ import annotations

from typing import Any


class CharTokenizer:
    """One token per character, ids in the alphabet's order; text outside the alphabet is refused."""

    def __init__(self, chars: str):
        if not isinstance(chars, str) or not chars or len(set(chars)) != len(chars):
            raise ValueError("chars must be a non-empty string of distinct characters")
        self.chars = chars
        self.stoi = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_corpora(cls) -> "CharTokenizer":
        """Every character of both course corpora, sorted: one vocabulary serves Shakespeare and Milton."""
        from gptref import data

        return cls("".join(sorted(set(data.corpus("shakespeare")) | set(data.corpus("milton")))))

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        unknown = set(text) - self.stoi.keys()
        if unknown:
            raise ValueError(f"text holds characters outside the vocabulary: {sorted(unknown)[:10]}")
        return [self.stoi[c] for c in text]

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def spec(self) -> dict[str, Any]:
        """What a checkpoint stores: the alphabet itself."""
        return {"kind": "char", "chars": self.chars}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> "CharTokenizer":
        if not isinstance(spec, dict) or spec.get("kind") != "char" or not isinstance(spec.get("chars"), str):
            raise ValueError("not a character tokenizer spec: expected {'kind': 'char', 'chars': <alphabet>}")
        return cls(spec["chars"])

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={len(self)})"
