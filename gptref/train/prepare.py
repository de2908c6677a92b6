"""Tokenizers of the homework and token files: a corpus split encoded once into
<cache>/tokens/<tokenizer>/<corpus>-<split>.bin, then memory-mapped."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from gptref import data


class CharTokenizer:
    """One token per character; the alphabet is every character of both corpora, so one vocab serves both."""

    def __init__(self, chars: str):
        self.chars = chars
        self.stoi = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_corpora(cls) -> "CharTokenizer":
        return cls("".join(sorted(set(data.corpus("shakespeare")) | set(data.corpus("milton")))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        unknown = set(text) - self.stoi.keys()
        if unknown:
            raise ValueError(f"text holds characters outside the vocabulary: {sorted(unknown)[:10]}")
        return [self.stoi[c] for c in text]

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def spec(self) -> dict[str, Any]:
        return {"kind": "char", "chars": self.chars}


class BPETokenizer:
    """gptref.bpe.Tokenizer trained on (the start of) Shakespeare's training split.

    Its spec holds the whole merge table, so a checkpoint carries its tokenizer to any machine.
    """

    def __init__(self, tok):
        self.tok = tok

    def __len__(self) -> int:
        return len(self.tok)

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text)

    def decode(self, ids) -> str:
        return self.tok.decode([int(i) for i in ids])

    def spec(self) -> dict[str, Any]:
        return {"kind": "bpe", "model": self.tok.to_dict()}


def _tokens_root(cache) -> Path:
    return (Path(cache) if cache is not None else data.cache_dir()) / "tokens"


def _bpe_path(bpe_vocab_size: int, cache) -> Path:
    return _tokens_root(cache) / f"bpe{bpe_vocab_size}" / "tokenizer.json"


def get_tokenizer(kind: str = "char", bpe_vocab_size: int = 512, cache=None):
    """The tokenizer for kind ("char", "bpe" or "spm"); BPE and SentencePiece are trained once and cached."""
    if kind == "char":
        return CharTokenizer.from_corpora()
    if kind == "spm":  # SentencePiece BPE with Baichuan 2's options (gptref.tokenizers)
        from gptref.tokenizers import get_spm_tokenizer

        return get_spm_tokenizer(bpe_vocab_size, cache)
    if kind != "bpe":
        raise ValueError(f"tokenizer must be 'char', 'bpe' or 'spm', got {kind!r}")
    from gptref.bpe import Tokenizer

    path = _bpe_path(bpe_vocab_size, cache)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tok = Tokenizer.train(data.corpus("shakespeare", "train")[:1_000_000], bpe_vocab_size)
        tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
        tok.save(tmp)
        os.replace(tmp, path)
    return BPETokenizer(Tokenizer.load(path))


def tokenizer_from_spec(spec: dict[str, Any]):
    """Rebuild the tokenizer stored in a checkpoint."""
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind == "char":
        return CharTokenizer(spec["chars"])
    if kind == "bpe":
        from gptref.bpe import Tokenizer

        if "model" in spec:
            return BPETokenizer(Tokenizer.from_dict(spec["model"], where="the checkpoint's tokenizer"))
        return BPETokenizer(Tokenizer.load(spec["path"]))  # checkpoints of gptref <= 0.1 pointed at the cache
    if kind == "spm":  # the SentencePiece model proto travels in the checkpoint (base64)
        from gptref.tokenizers import SentencePieceTokenizer

        return SentencePieceTokenizer.from_spec(spec)
    raise ValueError(f"unknown tokenizer spec in checkpoint: kind={kind!r}")


def tokens_dir(tokenizer, cache: str | os.PathLike | None = None) -> Path:
    """<cache>/tokens/<kind><vocab>-<hash of the spec>: two different tokenizers never share token files."""
    spec = tokenizer.spec()
    return _tokens_root(cache) / f"{spec['kind']}{len(tokenizer)}-{_digest(spec)}"


def _digest(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode("utf-8")).hexdigest()[:12]


def token_file(corpus: str, split: str, tokenizer="char", cache=None) -> np.memmap:
    """The tokens of corpus/split under `tokenizer` (an object from get_tokenizer, or "char"/"bpe") as a
    read-only memmap, uint16 when the vocab fits; written on first use only."""
    if isinstance(tokenizer, str):
        tokenizer = get_tokenizer(tokenizer, cache=cache)
    folder = tokens_dir(tokenizer, cache)
    path = folder / f"{corpus}-{split}.bin"
    meta_path = folder / f"{corpus}-{split}.json"
    text = data.corpus(corpus, split)
    fp = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if meta_path.exists() and path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("text_sha256") == fp and meta.get("vocab_size") == len(tokenizer):
            return np.memmap(path, dtype=meta["dtype"], mode="r")
    dtype = np.uint16 if len(tokenizer) <= 65535 else np.uint32
    ids = np.asarray(tokenizer.encode(text), dtype=dtype)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    ids.tofile(tmp)
    os.replace(tmp, path)
    meta = {"text_sha256": fp, "dtype": np.dtype(dtype).name, "n_tokens": int(ids.size), "vocab_size": len(tokenizer)}
    tmp = meta_path.with_name(meta_path.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, meta_path)
    return np.memmap(path, dtype=dtype, mode="r")
