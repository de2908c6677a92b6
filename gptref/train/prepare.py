"""Token files: a corpus split encoded once (by a gptref.tokenizers tokenizer) into
<cache>/tokens/<tokenizer>/<corpus>-<split>.bin, then memory-mapped."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from gptref import data
from gptref.tokenizers import get_tokenizer


def tokens_dir(tokenizer, cache: str | os.PathLike | None = None) -> Path:
    """<cache>/tokens/<kind><vocab>-<hash of the spec>: two different tokenizers never share token files."""
    spec = tokenizer.spec()
    return data.tokens_cache(cache) / f"{spec['kind']}{len(tokenizer)}-{_digest(spec)}"


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
