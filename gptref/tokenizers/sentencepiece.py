"""The SentencePiece route: a BPE tokenizer trained with Baichuan 2's options (report, sec. 2.3).

Byte fallback (no unknown tokens: a character outside the vocabulary becomes its UTF-8 bytes),
digits split one per token, no normalisation (identity rule, extra spaces kept), no dummy
prefix, whitespace-only pieces allowed (indentation in code), pieces up to 32 characters.
The model travels as the bytes of its proto: in a checkpoint's tokenizer spec (base64) or a file.
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

__all__ = ["BAICHUAN2_OPTIONS", "SentencePieceTokenizer", "train_sentencepiece", "get_spm_tokenizer"]

# SentencePieceTrainer options of Baichuan 2's tokenizer (vocabulary 125,696 there; ours is small)
BAICHUAN2_OPTIONS: dict[str, Any] = dict(
    model_type="bpe",
    byte_fallback=True,
    split_digits=True,
    normalization_rule_name="identity",
    remove_extra_whitespaces=False,
    add_dummy_prefix=False,
    allow_whitespace_only_pieces=True,
    max_sentencepiece_length=32,
    character_coverage=0.9999,
)


def _lines(text: str, max_bytes: int = 4000) -> Iterator[str]:
    """Training sentences: the text's lines, long ones cut (SentencePiece skips lines over 4192 bytes)."""
    for line in text.split("\n"):
        while len(line.encode("utf-8")) > max_bytes:
            yield line[: max_bytes // 4]
            line = line[max_bytes // 4 :]
        if line:
            yield line


def train_sentencepiece(text: str | Iterable[str], vocab_size: int, **overrides: Any) -> bytes:
    """Train a SentencePiece BPE model with BAICHUAN2_OPTIONS (plus overrides); return its proto bytes."""
    import sentencepiece as spm

    if not isinstance(vocab_size, int) or vocab_size < 260:
        raise ValueError("vocab_size must be an int >= 260 (3 specials + 256 byte tokens + pieces), "
                         f"got {vocab_size!r}")
    sentences = _lines(text) if isinstance(text, str) else iter(text)
    options = {**BAICHUAN2_OPTIONS, **overrides}
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=sentences, model_writer=out, vocab_size=vocab_size,
                                   minloglevel=2, num_threads=1, **options)
    return out.getvalue()


class SentencePieceTokenizer:
    """gptref.tokenizers' interface (encode, decode, vocab_size, spec/from_spec) over a SentencePiece model proto."""

    def __init__(self, model_proto: bytes):
        import sentencepiece as spm

        if not isinstance(model_proto, (bytes, bytearray)) or not model_proto:
            raise ValueError("model_proto must be the non-empty bytes of a SentencePiece model")
        self.model_proto = bytes(model_proto)
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.LoadFromSerializedProto(self.model_proto)
        except (RuntimeError, OSError) as e:
            raise ValueError(f"not a SentencePiece model ({e})") from e

    @classmethod
    def train(cls, text: str, vocab_size: int, **overrides: Any) -> "SentencePieceTokenizer":
        return cls(train_sentencepiece(text, vocab_size, **overrides))

    def __len__(self) -> int:
        return self.sp.GetPieceSize()

    @property
    def vocab_size(self) -> int:
        return self.sp.GetPieceSize()

    def encode(self, text: str) -> list[int]:
        return self.sp.EncodeAsIds(text)

    def decode(self, ids) -> str:
        return self.sp.DecodeIds([int(i) for i in ids])

    def pieces(self, text: str) -> list[str]:
        return self.sp.EncodeAsPieces(text)

    def spec(self) -> dict[str, Any]:
        """What a checkpoint stores: the model proto as base64 text (JSON-ready, weights_only-safe)."""
        return {"kind": "spm", "model": base64.b64encode(self.model_proto).decode("ascii")}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> "SentencePieceTokenizer":
        if not isinstance(spec, dict) or spec.get("kind") != "spm" or not isinstance(spec.get("model"), str):
            raise ValueError("not a SentencePiece tokenizer spec: expected {'kind': 'spm', 'model': <base64 proto>}")
        return cls(base64.b64decode(spec["model"]))

    def save(self, path: str | os.PathLike) -> None:
        """Write the proto bytes atomically (a *.model file the sentencepiece library itself can load)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_bytes(self.model_proto)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SentencePieceTokenizer":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no SentencePiece model at {path}")
        return cls(path.read_bytes())

    def __repr__(self) -> str:
        return f"SentencePieceTokenizer(vocab_size={len(self)})"


def get_spm_tokenizer(vocab_size: int = 512, cache=None) -> SentencePieceTokenizer:
    """The homework's SentencePiece tokenizer, trained once on (the start of) Shakespeare's train split."""
    from gptref import data

    path = data.tokens_cache(cache) / f"spm{vocab_size}" / "tokenizer.model"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        SentencePieceTokenizer.train(data.corpus("shakespeare", "train")[:1_000_000], vocab_size).save(path)
    return SentencePieceTokenizer.load(path)
