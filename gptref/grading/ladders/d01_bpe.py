"""Day 1's ladder helpers: what one merge replaced, and why a BPE merge is not the expected one, said with the
pair counts at that step (nothing hidden lives here: the counts come from the text and the merges both answers
agree on)."""

from __future__ import annotations

from collections import Counter

import regex

from gptref.tokenizers.bpe import GPT2_SPLIT_PATTERN
from gptref.tokenizers.bpe.train import merge_pair


def pair_counts_after(text: str, merges: list[tuple[bytes, bytes]]) -> Counter:
    """The weighted pair counts (as (bytes, bytes)) over the GPT-2 pre-tokens of text, after applying merges."""
    words = Counter(tuple(bytes([b]) for b in w.encode("utf-8")) for w in regex.findall(GPT2_SPLIT_PATTERN, text))
    for pair in merges:
        # merge_pair compares items only, so it joins bytes tokens as it joins ids
        words = Counter({tuple(merge_pair(list(word), *pair, pair[0] + pair[1])): n for word, n in words.items()})
    counts = Counter()
    for word, n in words.items():
        for pair in zip(word, word[1:]):
            counts[pair] += n
    return counts


def wrong_merges(text: str, mine: list, theirs: list) -> str:
    """Why the merges `mine` differ from `theirs`, said with the pair counts: the first of your merges that is not a
    most frequent pair after your merges before it (a counting problem), or, when every one is, the tie."""
    mine, theirs = [tuple(m) for m in mine], [tuple(m) for m in theirs]
    first = next((r for r, (a, b) in enumerate(zip(mine, theirs)) if a != b), min(len(mine), len(theirs)))
    for step, pair in enumerate(mine):
        counts = pair_counts_after(text, mine[:step])
        if not counts:
            break
        best = max(counts.values())
        if counts.get(pair, 0) < best:
            top = max((p for p, n in counts.items() if n == best))
            return (f"merge {step} is {pair!r}, which occurs {counts.get(pair, 0)} times in the GPT2_SPLIT_PATTERN "
                    f"pre-tokens after your first {step} merges, but {top!r} occurs {best} times: merge the most "
                    f"frequent pair, counting every occurrence inside every pre-token (its leading space included), "
                    f"times how often that pre-token occurs")
    if first >= min(len(mine), len(theirs)):
        return ""
    counts = pair_counts_after(text, mine[:first])
    count = counts.get(mine[first], 0)
    tied = [pair for pair, n in counts.items() if n == count]
    orders = {"the right token's bytes are compared first": lambda pair: (pair[1], pair[0]),
              "the merged bytes a + b are compared (the token, not the pair)": lambda pair: pair[0] + pair[1]}
    fits = [how for how, key in orders.items() if mine[first] == max(tied, key=key)]
    note = ""
    if fits:  # every order it fits is told: one input cannot tell them apart
        note = f" (yours is the greatest when {' and also when '.join(fits)})"
    elif mine[first] == min(tied):
        note = " (yours is the smallest of the tied pairs)"
    return (f"merge {first} is {mine[first]!r}, expected {theirs[first]!r}: both occur {count} times after the first "
            f"{first} merges, and every one of your merges is a most frequent pair, counted as expected; so the "
            f"difference is the tie{note}: among pairs of equal count take the greatest, compared as "
            f"(vocab[a], vocab[b]), the left token's bytes first")


def replaced_other_than_pair(got: list, ids: list, pair: tuple, new_id: int) -> str | None:
    """When a new_id of `got` stands where `ids` held two ids other than `pair` (read left to right), say which:
    a reversed pair gets the order rule. None when every new_id replaced the pair, or the two do not line up."""
    pair, at = tuple(pair), 0
    if new_id in ids:  # a new_id that is also an input id cannot be told apart
        return None
    for token in got:
        if token == new_id and at + 1 < len(ids):
            replaced = (ids[at], ids[at + 1])
            if replaced != pair:
                order = (f": a pair is ordered, (left, right), and {replaced} is {pair} reversed; merge only where "
                         f"ids[i] == pair[0] and ids[i + 1] == pair[1]" if replaced == pair[::-1] else
                         ": replace only the two neighbours equal to pair[0] then pair[1]")
                return (f"{new_id} stands where the input had {replaced} (ids {at} and {at + 1}), which is not the "
                        f"pair {pair}{order}")
            at += 2
        elif at < len(ids) and ids[at] == token:
            at += 1
        else:
            return None
    return None


__all__ = ["pair_counts_after", "replaced_other_than_pair", "wrong_merges"]
