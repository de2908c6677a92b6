"""Day 1's ladder helpers: why a BPE merge is not the expected one, said with the pair counts at that step
(nothing hidden lives here: the counts come from the text and the merges both answers agree on)."""

from __future__ import annotations

from collections import Counter

import regex

from gptref.tokenizers.bpe import GPT2_SPLIT_PATTERN


def _merged(word: tuple[bytes, ...], pair: tuple[bytes, bytes]) -> tuple[bytes, ...]:
    """word with each left-to-right occurrence of pair joined into one token."""
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def pair_counts_after(text: str, merges: list[tuple[bytes, bytes]]) -> Counter:
    """The weighted pair counts (as (bytes, bytes)) over the GPT-2 pre-tokens of text, after applying merges."""
    words = Counter(tuple(bytes([b]) for b in w.encode("utf-8")) for w in regex.findall(GPT2_SPLIT_PATTERN, text))
    for pair in merges:
        words = Counter({_merged(word, pair): n for word, n in words.items()})
    counts = Counter()
    for word, n in words.items():
        for pair in zip(word, word[1:]):
            counts[pair] += n
    return counts


def wrong_merge(text: str, step: int, agreed: list, mine: tuple, theirs: tuple) -> str:
    """Why merge `step` is `mine` and not `theirs` (the merges before it agree): the two pairs' counts, in words."""
    counts = pair_counts_after(text, [tuple(m) for m in agreed])
    have, want = counts.get(tuple(mine), 0), counts.get(tuple(theirs), 0)
    if have == 0:
        return (f"merge {step} is {tuple(mine)!r}, expected {tuple(theirs)!r}: after the first {step} merges your pair "
                f"does not occur in any GPT2_SPLIT_PATTERN pre-token of the text; {tuple(theirs)!r} occurs {want} "
                f"times (count pairs inside each pre-token, leading space included, never across two)")
    if have < want:
        return (f"merge {step} is {tuple(mine)!r}, expected {tuple(theirs)!r}: after the first {step} merges your pair "
                f"occurs {have} times, the expected one {want} times: merge the most frequent pair, counting every "
                f"occurrence inside every pre-token, times how often that pre-token occurs")
    if have == want:
        return (f"merge {step} is {tuple(mine)!r}, expected {tuple(theirs)!r}: both pairs occur {want} times, a tie, "
                f"and a tie goes to the greatest pair compared as a tuple of bytes, (vocab[a], vocab[b]): first by the "
                f"left token's bytes, then by the right's")
    return (f"merge {step} is {tuple(mine)!r}, expected {tuple(theirs)!r}, which occurs {want} times after the first "
            f"{step} merges (yours {have}): check that each merge replaces every occurrence of its pair")


__all__ = ["pair_counts_after", "wrong_merge"]
