"""The Tokenizer: applies learned merges to text (encode) and maps ids back to text (decode)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from os import PathLike
from pathlib import Path

from gptref.tokenizers.bpe.pretokenize import (
    check_special_tokens,
    pretokenize,
    safe_cuts,
    special_splitter,
    split_on_specials,
)
from gptref.tokenizers.bpe.train import merge_pair, train_bpe

_FORMAT = "gptref-bpe"
_CACHE_LIMIT = 1 << 16  # pre-token encodings remembered; cleared when full, so memory stays bounded


class Tokenizer:
    """Byte-level BPE: vocab maps id -> bytes, merges are (left, right) byte pairs in merge order.

    Special tokens are whole strings that always map to one id; they are looked up in vocab by
    their UTF-8 bytes and given fresh ids after the largest one if vocab lacks them.
    """

    def __init__(
        self,
        vocab: dict[int, bytes],
        merges: Sequence[tuple[bytes, bytes]],
        special_tokens: Sequence[str] | None = None,
    ):
        self.vocab: dict[int, bytes] = _check_vocab(vocab)
        self.merges: list[tuple[bytes, bytes]] = [tuple(m) for m in merges]
        self.special_tokens: list[str] = check_special_tokens(special_tokens)

        # bytes -> id; on duplicate bytes the smallest id wins (the one made first)
        self._id_of: dict[bytes, int] = {}
        for i in sorted(self.vocab):
            self._id_of.setdefault(self.vocab[i], i)
        missing = [x for x in range(256) if bytes([x]) not in self._id_of]
        if missing:
            raise ValueError(f"vocab must hold every single byte; missing {len(missing)}, e.g. {bytes(missing[:5])!r}")
        self._byte_ids = [self._id_of[bytes([x])] for x in range(256)]

        # (left id, right id) -> (rank, merged id)
        self._ranks: dict[tuple[int, int], tuple[int, int]] = {}
        for rank, merge in enumerate(self.merges):
            if len(merge) != 2 or not all(isinstance(p, bytes) for p in merge):
                raise ValueError(f"merges[{rank}] must be a pair of bytes, got {merge!r}")
            left, right = merge
            for part in (left, right, left + right):
                if part not in self._id_of:
                    raise ValueError(f"merges[{rank}] = {merge!r}: {part!r} is not in vocab")
            self._ranks.setdefault((self._id_of[left], self._id_of[right]), (rank, self._id_of[left + right]))

        self.special_ids: dict[str, int] = {}
        next_id = max(self.vocab) + 1
        for token in self.special_tokens:
            raw = token.encode("utf-8")
            have = [i for i, b in self.vocab.items() if b == raw and i >= 256]
            if have:  # the last such id: training puts specials after any merge with equal bytes
                self.special_ids[token] = max(have)
            else:
                self.vocab[next_id] = raw
                self.special_ids[token] = next_id
                next_id += 1
        self._splitter = special_splitter(self.special_tokens)
        self._cache: dict[str, list[int]] = {}

    # --- training and files ---------------------------------------------------------------

    @classmethod
    def train(cls, text: str, vocab_size: int, special_tokens: Sequence[str] = (), **kwargs) -> Tokenizer:
        """Train with train_bpe and wrap the result."""
        vocab, merges = train_bpe(text, vocab_size, special_tokens, **kwargs)
        return cls(vocab, merges, list(special_tokens))

    def to_dict(self) -> dict:
        """Everything needed to rebuild this tokenizer, as JSON-ready data; every token's bytes are hex."""
        return {
            "format": _FORMAT,
            "version": 1,
            "special_tokens": list(self.special_tokens),
            "vocab": [[i, b.hex(), b.decode("utf-8", errors="replace")] for i, b in sorted(self.vocab.items())],
            "merges": [[left.hex(), right.hex()] for left, right in self.merges],
        }

    @classmethod
    def from_dict(cls, data: dict, where: str = "data") -> Tokenizer:
        """Rebuild a tokenizer from to_dict's output (`where` names the source in errors)."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"{where} is not a {_FORMAT} tokenizer")
        vocab = {int(i): bytes.fromhex(h) for i, h, *_ in data["vocab"]}
        merges = [(bytes.fromhex(left), bytes.fromhex(right)) for left, right in data["merges"]]
        return cls(vocab, merges, data["special_tokens"])

    def spec(self) -> dict:
        """What a checkpoint stores (gptref.tokenizers' interface): the whole merge table, so it travels."""
        return {"kind": "bpe", "model": self.to_dict()}

    @classmethod
    def from_spec(cls, spec: dict) -> Tokenizer:
        """The tokenizer a checkpoint stored with spec(); checkpoints of gptref <= 0.1 held a file path instead."""
        if not isinstance(spec, dict) or spec.get("kind") != "bpe" or not ("model" in spec or "path" in spec):
            raise ValueError("not a BPE tokenizer spec: expected {'kind': 'bpe', 'model': <Tokenizer.to_dict()>}")
        if "model" in spec:
            return cls.from_dict(spec["model"], where="the checkpoint's tokenizer")
        return cls.load(spec["path"])

    def save(self, path: str | PathLike) -> None:
        """Write to_dict() as a JSON file (a readable copy of each token beside its hex bytes)."""
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=0), encoding="utf-8")

    @classmethod
    def load(cls, path: str | PathLike) -> Tokenizer:
        """Read a file written by save."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")), where=f"path {str(path)!r}")

    # --- encoding -------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """Token ids of text: special tokens whole, the rest BPE-merged pre-token by pre-token."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        ids: list[int] = []
        pieces = split_on_specials(text, self._splitter)
        cache = self._cache
        for k, piece in enumerate(pieces):
            if k % 2:
                ids.append(self.special_ids[piece])
                continue
            for word in pretokenize(piece):
                try:
                    ids.extend(cache[word])
                except KeyError:
                    if len(cache) >= _CACHE_LIMIT:
                        cache.clear()
                    cache[word] = self._bpe(word.encode("utf-8"))
                    ids.extend(cache[word])
        return ids

    def encode_iterable(self, lines: Iterable[str]) -> Iterator[int]:
        """Lazily encode a stream of strings (e.g. an open file); same ids as encode("".join(lines)).

        Memory stays bounded: text is encoded block by block, cut only where no pre-token or
        special token can straddle the cut (see pretokenize.safe_cuts).
        """
        for block in safe_cuts(iter(lines), self.special_tokens):
            yield from self.encode(block)

    def _bpe(self, word: bytes) -> list[int]:
        """Merge the bytes of one pre-token: always the adjacent pair with the lowest merge rank."""
        ids = [self._byte_ids[x] for x in word]
        ranks = self._ranks
        while len(ids) > 1:
            best = None
            for pair in zip(ids, ids[1:]):
                found = ranks.get(pair)
                if found is not None and (best is None or found[0] < best[0]):
                    best, best_pair = found, pair
            if best is None:
                break
            ids = merge_pair(ids, *best_pair, best[1])
        return ids

    # --- decoding -------------------------------------------------------------------------

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ids; byte sequences that are not valid UTF-8 become U+FFFD (never raises on that)."""
        vocab = self.vocab
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)  # tensors and arrays too
        try:
            raw = b"".join([vocab[i] for i in ids])
        except (KeyError, TypeError):
            bad = [i for i in ids if not isinstance(i, int) or i not in vocab]
            raise ValueError(
                f"ids holds {len(bad)} unknown token id(s), e.g. {bad[:5]} (vocab has {len(vocab)})"
            ) from None
        return raw.decode("utf-8", errors="replace")

    def __len__(self) -> int:
        return len(self.vocab)

    @property
    def vocab_size(self) -> int:
        """Number of token ids (merges, single bytes and special tokens)."""
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"Tokenizer(vocab={len(self.vocab)}, merges={len(self.merges)}, special_tokens={self.special_tokens!r})"


def _check_vocab(vocab: dict[int, bytes]) -> dict[int, bytes]:
    """A copy of vocab after checking it maps int ids to bytes."""
    if not isinstance(vocab, dict) or not vocab:
        raise ValueError(f"vocab must be a non-empty dict[int, bytes], got {type(vocab).__name__}")
    for i, b in vocab.items():
        if isinstance(i, bool) or not isinstance(i, int) or i < 0 or not isinstance(b, bytes):
            raise ValueError(f"vocab must map non-negative int ids to bytes, got {i!r}: {b!r}")
    return dict(vocab)
