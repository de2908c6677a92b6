"""Byte-level BPE training: repeatedly merge the most frequent adjacent pair of tokens.

Fast in pure Python because the work is proportional to what changes: unique pre-tokens are
counted once, pair counts are kept up to date incrementally, the best pair comes from a heap
whose stale entries are fixed when popped, and a merge only visits the words that hold it.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Sequence

from tqdm.auto import tqdm

from gptref.tokenizers.bpe.pretokenize import check_special_tokens, count_pretokens

Pair = tuple[int, int]


def check_vocab_size(vocab_size: int, n_special: int) -> None:
    """vocab_size must leave room for the 256 bytes and the special tokens."""
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise ValueError(f"vocab_size must be an int, got {type(vocab_size).__name__} {vocab_size!r}")
    if vocab_size < 256 + n_special:
        raise ValueError(
            f"vocab_size={vocab_size} is too small: it must be at least 256 (the bytes) + "
            f"{n_special} (special tokens) = {256 + n_special}"
        )


def _descending(token: bytes) -> tuple[int, ...]:
    """A key that sorts byte strings in reverse lexicographic order (a heap pops the greatest first).

    Each byte x becomes 255 - x, and a final 256 makes a prefix sort after its extensions.
    """
    return (*(255 - x for x in token), 256)


def train_bpe(
    text: str,
    vocab_size: int,
    special_tokens: Sequence[str] = (),
    *,
    progress: bool | None = None,
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """Learn (vocab, merges) from text: ids 0..255 are bytes, then merges in order, then specials.

    Ties in pair count go to the lexicographically greatest (bytes, bytes) pair. If the text
    runs out of pairs, fewer merges are made and the special tokens follow the last merge.
    progress: show a tqdm bar (None: only on a terminal).
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    specials = check_special_tokens(special_tokens)
    check_vocab_size(vocab_size, len(specials))

    vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}
    merges: list[tuple[bytes, bytes]] = []

    word_counts = count_pretokens(text, specials)
    words: list[list[int]] = [list(w) for w in word_counts]  # each unique pre-token as token ids
    freqs: list[int] = list(word_counts.values())

    pair_counts: dict[Pair, int] = defaultdict(int)
    where: dict[Pair, set[int]] = defaultdict(set)  # pair -> indices of words that hold it
    for index, (word, freq) in enumerate(zip(words, freqs)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += freq
            where[pair].add(index)

    key = {i: _descending(b) for i, b in vocab.items()}
    # Entries (-count, key(a), key(b), a, b): the smallest is the most frequent, greatest pair.
    # Invariant: every live pair has an entry whose count is >= its true count.
    heap = [(-n, key[a], key[b], a, b) for (a, b), n in pair_counts.items()]
    heapq.heapify(heap)

    n_merges = vocab_size - 256 - len(specials)
    bar = tqdm(range(256, 256 + n_merges), desc="BPE merges", leave=False,
               disable=None if progress is None else not progress)
    for new_id in bar:
        best = _pop_best(heap, pair_counts)
        if best is None:
            break
        a, b = best
        vocab[new_id] = vocab[a] + vocab[b]
        merges.append((vocab[a], vocab[b]))
        key[new_id] = _descending(vocab[new_id])
        touched: set[Pair] = set()  # pairs made with new_id: pushed once, with their final count
        for index in where.pop(best):
            _merge_word(index, words, freqs[index], a, b, new_id, pair_counts, where, touched)
        del pair_counts[best]
        for pair in touched:
            heapq.heappush(heap, (-pair_counts[pair], key[pair[0]], key[pair[1]], pair[0], pair[1]))
    bar.close()

    next_id = len(vocab)
    for i, token in enumerate(specials):
        vocab[next_id + i] = token.encode("utf-8")
    return vocab, merges


def _pop_best(heap: list, pair_counts: dict[Pair, int]) -> Pair | None:
    """Pop the live pair with the highest count (greatest pair on ties), fixing stale entries."""
    while heap:
        neg, ka, kb, a, b = heapq.heappop(heap)
        count = pair_counts.get((a, b), 0)
        if count == -neg:
            return (a, b)
        if count > 0:  # its count fell since the push: put it back where it belongs now
            heapq.heappush(heap, (-count, ka, kb, a, b))
    return None


def merge_pair(ids: list[int], a: int, b: int, new_id: int) -> list[int]:
    """ids with every adjacent (a, b) replaced by new_id, left to right (so "aaa" merges as "(aa)a")."""
    merged: list[int] = []
    i, n = 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == a and ids[i + 1] == b:
            merged.append(new_id)
            i += 2
        else:
            merged.append(ids[i])
            i += 1
    return merged


def _merge_word(
    index: int,
    words: list[list[int]],
    freq: int,
    a: int,
    b: int,
    new_id: int,
    pair_counts: dict[Pair, int],
    where: dict[Pair, set[int]],
    touched: set[Pair],
) -> None:
    """Replace every (a, b) in words[index] by new_id, left to right, and update the pair tables.

    `where` is kept lazily: a word stays listed under pairs it lost, and is skipped here.
    """
    word = words[index]
    merged = merge_pair(word, a, b, new_id)
    if len(merged) == len(word):  # a stale listing: the word no longer holds (a, b)
        return
    words[index] = merged
    for pair in zip(word, word[1:]):
        pair_counts[pair] -= freq
    for pair in zip(merged, merged[1:]):
        pair_counts[pair] += freq
        if new_id in pair:
            where[pair].add(index)
            touched.add(pair)
