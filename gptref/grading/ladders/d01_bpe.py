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


def clean_properties(got, case) -> str | None:
    """clean_gutenberg's ladder, in order: a str; no \\r or BOM; no trailing spaces; no START or footer line; no run of
    blank lines; no blank line first; one final newline. The notebook's visible test and the verdict both use it."""
    if not isinstance(got, str):
        return f"return a str, got {type(got).__name__}"
    lines = got.split("\n")
    footer = next((line for line in lines if ("END OF" in line.upper() and "GUTENBERG" in line.upper())
                   or "Terms of Use" in line), None)
    checks = [("\r" in got, "the result still holds \\r characters: every line must end with \\n alone"),
              ("\ufeff" in got, "drop the byte-order mark \\ufeff at the start"),
              (any(line != line.rstrip(" \t") for line in lines), "a line ends with spaces or tabs; no line may"),
              (any("START OF" in line.upper() and "GUTENBERG" in line.upper() for line in lines),
               "the *** START OF ... *** line is still there"),
              (footer is not None, f"footer text is still there, from the line {footer!r} on (everything from the "
               "*** END OF line, or from a line that begins End of the Project Gutenberg or End of Project "
               "Gutenberg, must go)"),
              ("\n\n\n" in got, "two blank lines follow each other somewhere: at most one blank line in a row"),
              (got != "" and got.strip() == "", f"your result {got!r} holds no text at all, so it must be the empty "
               "string '': with no non-blank line there is no line to end with a newline"),
              (got.startswith("\n"), f"your result begins {got[:30]!r}: drop the blank lines before the first "
               "non-blank line"),
              (got != "" and not got.endswith("\n"), f"your result ends {got[-30:]!r}, without a newline: the text "
               "ends with exactly one newline after its last line"),
              (got.endswith("\n\n"), f"your result ends {got[-30:]!r}: drop the blank lines at the end too, so that "
               "the text ends with exactly one newline after its last non-blank line")]
    return next((f"clean_gutenberg: {problem}" for broken, problem in checks if broken), None)


def merge_properties(got, case) -> str | None:
    """merge's ladder: a list of ints; each new_id replaced the pair itself; writing each new_id back as the pair
    gives the input; the pair no longer occurs. The notebook's visible test and the verdict both use it."""
    if not isinstance(got, (list, tuple)):
        return f"return a list of ints, got {type(got).__name__}"
    got, ids, pair, new_id = list(got), list(case["ids"]), tuple(case["pair"]), case["new_id"]
    other = replaced_other_than_pair(got, ids, pair, new_id)
    if other:
        return other
    expanded = [x for t in got for x in (pair if t == new_id else (t,))]
    if expanded != ids:
        return (f"writing each new_id back as its pair gives {expanded}, not the input: every id of the input must be "
                f"in the result once, either itself or inside one new_id")
    if any((a, b) == pair for a, b in zip(got, got[1:])):
        note = ("; nothing was replaced at all: check the test that finds the pair (a list such as ids[i:i + 2] "
                "never equals a tuple such as pair)" if got == ids else
                "; the pair left is the list's last two ids: check that your loop also tests the last pair"
                if tuple(got[-2:]) == pair and tuple(ids[-2:]) == pair else "")
        return f"the result {got} still holds the pair {pair}: replace every occurrence{note}"
    return None


__all__ = ["clean_properties", "merge_properties", "pair_counts_after", "replaced_other_than_pair",
           "wrong_merges"]
