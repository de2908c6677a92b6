"""gptref.tokenizers: every tokenizer of the course behind one interface.

    tok.encode(text) -> list[int]      tok.decode(ids) -> str      tok.vocab_size (== len(tok))
    tok.spec() -> dict                 what a checkpoint stores (JSON-ready; {"kind": ..., ...})
    tokenizer_from_spec(spec)          the same tokenizer back, on any machine

Kinds: "char" (char.CharTokenizer, one token per character), "bpe" (bpe.Tokenizer, byte-level BPE as GPT-2
does it) and "spm" (sentencepiece.SentencePieceTokenizer, SentencePiece BPE with Baichuan 2's options).
`get_tokenizer(kind)` gives the homework's tokenizer of that kind, trained once on Shakespeare and cached.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from gptref.tokenizers.bpe import Tokenizer as BPETokenizer
from gptref.tokenizers.char import CharTokenizer
from gptref.tokenizers.sentencepiece import (
    BAICHUAN2_OPTIONS,
    SentencePieceTokenizer,
    get_spm_tokenizer,
    train_sentencepiece,
)

__all__ = ["TextTokenizer", "CharTokenizer", "BPETokenizer", "SentencePieceTokenizer", "KINDS", "get_tokenizer",
           "tokenizer_from_spec", "BAICHUAN2_OPTIONS", "train_sentencepiece", "get_spm_tokenizer"]

KINDS = {"char": CharTokenizer, "bpe": BPETokenizer, "spm": SentencePieceTokenizer}  # spec["kind"] -> class


class TextTokenizer(Protocol):
    """What the training loop, sampling and checkpoints need of a tokenizer."""

    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids) -> str: ...

    def spec(self) -> dict[str, Any]: ...

    def __len__(self) -> int: ...


def get_tokenizer(kind: str = "char", bpe_vocab_size: int = 512, cache=None) -> TextTokenizer:
    """The homework's tokenizer of `kind`: the corpora's characters, or a BPE/SentencePiece model of
    bpe_vocab_size tokens trained once on (the start of) Shakespeare's train split and cached."""
    if kind == "char":
        return CharTokenizer.from_corpora()
    if kind == "spm":
        return get_spm_tokenizer(bpe_vocab_size, cache)
    if kind != "bpe":
        raise ValueError(f"tokenizer must be one of {tuple(KINDS)}, got {kind!r}")
    from gptref import data

    path = data.tokens_cache(cache) / f"bpe{bpe_vocab_size}" / "tokenizer.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tok = BPETokenizer.train(data.corpus("shakespeare", "train")[:1_000_000], bpe_vocab_size)
        tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
        tok.save(tmp)
        os.replace(tmp, path)
    return BPETokenizer.load(path)


def tokenizer_from_spec(spec: dict[str, Any]) -> TextTokenizer:
    """Rebuild the tokenizer a checkpoint stored (its `spec()`)."""
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind not in KINDS:
        raise ValueError(f"unknown tokenizer spec in checkpoint: kind={kind!r} (known: {tuple(KINDS)})")
    return KINDS[kind].from_spec(spec)
