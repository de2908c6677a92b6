"""Day 1, text cleaning and byte-level BPE: clean, count pairs, merge, train, encode, decode.

What each verdict checks, in order (the notebook's visible tests climb the same ladder), before the values:
clean_gutenberg: a str without \\r, BOM, trailing spaces, START or footer lines, blank runs, with one final
newline; pair_counts: a dict whose counts add up to len(ids) - 1; merge: a list that expands back to ids and no
longer holds the pair; train_bpe: (vocab, merges) with the 256 bytes, vocab[256 + r] = merge r, merges inside
pre-tokens; encode: ids of the vocabulary that spell the text, none spanning two pre-tokens; decode: a str.

The small helpers the notebook asks for first (pair counts, one merge) have no public
counterpart in gptref, so their references live here; they are a few lines each.
"""

from __future__ import annotations

import random
from collections import Counter

import regex

import gptref.data as data
import gptref.tokenizers.bpe as bpe
import gptref.tokenizers.bpe.tokenizer as bpe_tokenizer
import gptref.tokenizers.bpe.train as bpe_train
from gptref.grading.ladders.d01_bpe import clean_properties, merge_properties, wrong_merges
from gptref.grading.spec import Exercise
from gptref.tokenizers.bpe import GPT2_SPLIT_PATTERN

DAY = "01_bpe"

TOY_CORPUS = " ".join(["low"] * 5 + ["lower"] * 2 + ["newest"] * 6 + ["widest"] * 3)


# -- references for the two helpers ----------------------------------------------------------
def reference_pair_counts(ids: list[int]) -> dict[tuple[int, int], int]:
    """How often each adjacent pair occurs in ids (overlapping occurrences all count)."""
    return dict(Counter(zip(ids, ids[1:])))


def reference_merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """The exercise's signature over gptref.tokenizers.bpe.train.merge_pair (the merge training and encoding use)."""
    return bpe_train.merge_pair(ids, pair[0], pair[1], new_id)


def reference_encode(text: str, vocab: dict[int, bytes], merges: list[tuple[bytes, bytes]]) -> list[int]:
    return bpe.Tokenizer(vocab, merges).encode(text)


def reference_decode(ids: list[int], vocab: dict[int, bytes]) -> str:
    return bpe.Tokenizer(vocab, []).decode(ids)


# -- random inputs ------------------------------------------------------------------------------
_LETTERS = "aabcdeeilnorstuwé"  # a small alphabet, so pairs repeat; é is two UTF-8 bytes
_PUNCT = [",", ".", "!", "?", "'s", "'ll", " —", ";", "\n", "\n\n", "  ", "7", "42", "🙂"]


def _random_text(rng: random.Random, n_words: int) -> str:
    words = ["".join(rng.choice(_LETTERS) for _ in range(rng.randint(1, 6))) for _ in range(12)]
    out = []
    for _ in range(n_words):
        w = rng.choice(words)
        out.append(w.capitalize() if rng.random() < 0.1 else w)
        out.append(rng.choice(_PUNCT) if rng.random() < 0.2 else " ")
    return "".join(out)


def _random_ids(rng: random.Random, n: int, alphabet: int) -> list[int]:
    ids = [rng.randrange(alphabet) for _ in range(n)]
    for _ in range(n // 8):  # plant runs such as (7, 7, 7), where overlapping matters
        if ids:
            i = rng.randrange(len(ids))
            ids[i:i + 3] = [ids[i]] * 3
    return ids


_NUMBERS = "Anno 1642, 1643 and 1642; folio2 of 1642 pages " * 3


def _pair_counts_cases(seed: int) -> list[dict]:
    rng = random.Random(seed)
    cases = [{"ids": []}, {"ids": [5]}, {"ids": [1, 1, 1, 1]}]
    cases += [{"ids": _random_ids(rng, n, a)} for n, a in [(10, 3), (200, 6), (57, 300)]]
    return cases


def _merge_cases(seed: int) -> list[dict]:
    rng = random.Random(seed + 1)
    cases = [{"ids": [], "pair": (1, 2), "new_id": 256},
             {"ids": [7, 7, 7], "pair": (7, 7), "new_id": 256},
             {"ids": [1, 2, 3, 1, 2], "pair": (9, 9), "new_id": 300},
             {"ids": [4, 3, 3, 4, 3], "pair": (3, 4), "new_id": 261},  # (4, 3) is there too: the order matters
             {"ids": [5, 1, 2, 6, 1, 2], "pair": (1, 2), "new_id": 270}]  # the pair as the list's last two ids
    for n, a in [(20, 3), (300, 5), (41, 2)]:
        ids = _random_ids(rng, n, a)
        i = rng.randrange(len(ids) - 1)
        cases.append({"ids": ids, "pair": (ids[i], ids[i + 1]), "new_id": 256 + rng.randrange(500)})
    return cases


def _train_cases(seed: int) -> list[dict]:
    rng = random.Random(seed + 2)
    cases = [{"text": TOY_CORPUS, "vocab_size": 256 + 10},
             {"text": "ab ab", "vocab_size": 300},  # runs out of pairs after two merges
             {"text": "", "vocab_size": 260},
             # a tie between (b"ab", b"c") and (b"z", b"y"): by bytes (z, y) wins, by ids (256, 99) would
             {"text": "abc abc abd zy zy", "vocab_size": 256 + 3}]
    # numbers: a run of digits with its leading space is one pre-token, apart from the letters before it
    cases.append({"text": _NUMBERS, "vocab_size": 256 + 12})
    for n_words, n_merges in [(60, 12), (300, 40), (150, 25)]:
        cases.append({"text": _random_text(rng, n_words), "vocab_size": 256 + n_merges})
    return cases


def _encode_cases(seed: int) -> list[dict]:
    rng = random.Random(seed + 3)
    cases = []
    for n_train, n_merges, n_test in [(200, 30, 40), (600, 120, 200), (100, 10, 30)]:
        vocab, merges = bpe.train_bpe(_random_text(rng, n_train), 256 + n_merges)
        text = _random_text(rng, n_test) + rng.choice(["", " zebra!", "ΑΒΓ 😀", "\t\n end"])
        cases.append({"text": text, "vocab": vocab, "merges": merges})
    # whitespace runs: merges such as (b"  ", b" ") must not reach across pre-tokens
    spaced = "".join(rng.choice(["  ", "   ", "\n\n", "\n\n\n", " ", "\t\t"]) + w
                     for w in _random_text(rng, 150).split(" "))
    vocab, merges = bpe.train_bpe(spaced, 256 + 40)
    cases.append({"text": "".join(rng.choice(["    ", "  ", "\n\n\n\n ", " "]) + w
                                  for w in _random_text(rng, 30).split(" ")), "vocab": vocab, "merges": merges})
    vocab, merges = bpe.train_bpe(TOY_CORPUS, 256 + 10)
    cases.append({"text": "the lowest newer wider lower newest", "vocab": vocab, "merges": merges})
    cases.append({"text": "", "vocab": vocab, "merges": merges})
    # merges that compete for a byte: (y, z) was learned before (x, y), so "xyz" is x + yz
    vocab = {i: bytes([i]) for i in range(256)} | {256: b"yz", 257: b"xy", 258: b"xyz"}
    merges = [(b"y", b"z"), (b"x", b"y"), (b"xy", b"z")]
    cases.append({"text": "xyz xyzzy xy yz xxyyzz", "vocab": vocab, "merges": merges})
    # characters of two and three UTF-8 bytes, merged in training: the ids are bytes, not code points
    vocab, merges = bpe.train_bpe("café déjà naïve — café déjà — é", 256 + 12)
    cases.append({"text": "déjà café — naïve é", "vocab": vocab, "merges": merges})
    vocab, merges = bpe.train_bpe(_NUMBERS, 256 + 12)
    cases.append({"text": "folio2 in 1642, 16431642 and 7", "vocab": vocab, "merges": merges})
    return cases


def _decode_cases(seed: int) -> list[dict]:
    rng = random.Random(seed + 4)
    vocab, merges = bpe.train_bpe(_random_text(rng, 300), 256 + 40)
    tok = bpe.Tokenizer(vocab, merges)
    cases = [{"ids": tok.encode(_random_text(rng, 50) + " é😀"), "vocab": vocab},
             {"ids": [], "vocab": vocab},
             {"ids": list("😀".encode("utf-8"))[:3], "vocab": vocab},  # a character cut short: U+FFFD
             {"ids": [rng.randrange(128, 256) for _ in range(6)] + tok.encode(" ok"), "vocab": vocab}]
    ids = tok.encode("é" * 5)
    cases.append({"ids": ids, "vocab": vocab})
    return cases


# -- Gutenberg cleaning ------------------------------------------------------------------------
_HEADER = [
    "The Project Gutenberg EBook of {title}, by William Shakespeare",
    "",
    "This eBook is for the use of anyone anywhere at no cost and with",
    "almost no restrictions whatsoever.  You may copy it, give it away or",
    "re-use it under the terms of the Project Gutenberg License included",
    "with this eBook or online at www.gutenberg.org",
    "",
    "Title: {title}",
    "Release Date: {date}",
    "Language: English",
    "",
]
_START = ["*** START OF THIS PROJECT GUTENBERG EBOOK {upper} ***",
          "*** START OF THE PROJECT GUTENBERG EBOOK {upper} ***",
          "***START OF THE PROJECT GUTENBERG EBOOK {upper}***"]
_FOOTERS = [
    ["End of the Project Gutenberg EBook of {title}, by William Shakespeare", "",
     "*** END OF THIS PROJECT GUTENBERG EBOOK {upper} ***", "", "***** This file should be named 1234.txt *****"],
    ["*** END OF THE PROJECT GUTENBERG EBOOK {upper} ***", "",
     "Updated editions will replace the previous one--the old editions", "will be renamed."],
    ["End of Project Gutenberg's {title}, by William Shakespeare", "", "Section 1.  General Terms of Use"],
]
_VERSE = ["Now is the winter of our discontent", "Made glorious summer by this sun of York;",
          "And all the clouds that lour'd upon our house", "In the deep bosom of the ocean buried.",
          "ACT I. SCENE I.", "Enter GLOUCESTER, solus.", "  GLOUCESTER.", "Why, I, in this weak piping time of peace,"]


def _raw_gutenberg(rng: random.Random, header: bool, footer: bool, crlf: bool) -> str:
    title = rng.choice(["The Tragedy of King Richard III", "Sonnets", "The Tempest"])
    fill = {"title": title, "upper": title.upper(), "date": "January, 1999 [EBook #1103]"}
    lines = []
    if header:
        lines += [s.format(**fill) for s in _HEADER] + [rng.choice(_START).format(**fill)]
        lines += [""] * rng.randint(0, 3)
    for _ in range(rng.randint(4, 14)):
        line = rng.choice(_VERSE) + rng.choice(["", "", " ", "   ", "\t", " \t "])
        lines.append(line)
        if rng.random() < 0.3:
            lines += [rng.choice(["", " ", "\t"])] * rng.randint(1, 4)  # blank runs, some with spaces
    if footer:
        lines += [""] * rng.randint(0, 4) + [s.format(**fill) for s in rng.choice(_FOOTERS)]
    text = ("\r\n" if crlf else "\n").join(lines) + rng.choice(["", "\n", "\n\n"])
    return ("\ufeff" if rng.random() < 0.3 else "") + text


def _clean_cases(seed: int) -> list[dict]:
    rng = random.Random(seed + 5)
    cases = [{"raw": _raw_gutenberg(rng, True, True, False)},
             {"raw": _raw_gutenberg(rng, True, True, True)},
             {"raw": _raw_gutenberg(rng, False, False, False)},
             {"raw": _raw_gutenberg(rng, True, False, rng.random() < 0.5)},
             {"raw": _raw_gutenberg(rng, False, True, False)},
             {"raw": "\n\n  \n"},
             {"raw": "Text.\nEnd of Project Gutenberg's Sonnets\n\nSection 1.  General Terms of Use\n"},
             # chosen on every seed: the THE form of the start marker, a lone \r line end, an indented line
             {"raw": "Header\r\n***START OF THE PROJECT GUTENBERG EBOOK X***\r\n\r\n  SONNET I.\rFrom fairest "
                     "creatures\r\n  we desire increase,  \n"},
             # chosen on every seed: a byte-order mark before a text without header, which must go too
             {"raw": "\ufeffA text without header.\r\nIts second line.\r\n"}]
    cases += [{"raw": _raw_gutenberg(rng, rng.random() < 0.8, rng.random() < 0.8, rng.random() < 0.3)}
              for _ in range(3)]
    return cases


# -- comparisons ---------------------------------------------------------------------------------
def _show(x, limit: int = 60) -> str:
    s = repr(x)
    return s if len(s) <= limit else s[:limit] + "..."


def _compare_text(got, expected, case) -> str | None:
    if not isinstance(got, str):
        return f"return a str, got {type(got).__name__}"
    if got == expected:
        return None
    g, e = got.split("\n"), expected.split("\n")
    for i, (a, b) in enumerate(zip(g, e)):
        if a != b:
            return f"line {i + 1} is {_show(a)}, expected {_show(b)}"
    return f"the text has {len(g)} lines, expected {len(e)} (last lines {_show(g[-2:])} vs {_show(e[-2:])})"


def _compare_counts(got, expected, case) -> str | None:
    if not isinstance(got, dict):
        return f"return a dict mapping (id, id) pairs to counts, got {type(got).__name__}"
    got = {k: v for k, v in got.items() if v}
    for pair, n in expected.items():
        if got.get(pair) != n:
            return f"pair {pair} occurs {n} times, you counted {got.get(pair, 0)}"
    extra = [p for p in got if p not in expected]
    if extra:
        return f"pair {extra[0]} does not occur in ids, you counted {got[extra[0]]}"
    return None


def _compare_ids(got, expected, case) -> str | None:
    if not isinstance(got, (list, tuple)):
        return f"return a list of ints, got {type(got).__name__}"
    got = list(got)
    if got == expected:
        return None
    for i, (a, b) in enumerate(zip(got, expected)):
        if a != b:
            return f"position {i}: got id {a!r}, expected {b!r} (length {len(got)}, expected {len(expected)})"
    return f"got {len(got)} ids, expected {len(expected)}"


def _compare_training(got, expected, case) -> str | None:
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"return a tuple (vocab, merges), got {type(got).__name__}"
    vocab, merges = got
    ref_vocab, ref_merges = expected
    if not isinstance(merges, list):
        return f"merges must be a list of (bytes, bytes) pairs, got {type(merges).__name__}"
    for i, (a, b) in enumerate(zip(merges, ref_merges)):
        if tuple(a) != tuple(b):
            return wrong_merges(case["text"], merges, ref_merges) or f"merge {i} is {a!r}, expected {b!r}"
    if len(merges) != len(ref_merges):
        return f"made {len(merges)} merges, expected {len(ref_merges)} (stop at vocab_size, or when no pair is left)"
    if not isinstance(vocab, dict) or vocab != ref_vocab:
        wrong = [i for i in ref_vocab if not isinstance(vocab, dict) or vocab.get(i) != ref_vocab[i]]
        detail = (f"id {wrong[0]} should be {ref_vocab[wrong[0]]!r}" if wrong
                  else f"it has {len(vocab)} entries, expected {len(ref_vocab)}")
        return f"vocab is wrong: {detail}"
    return None


# -- the ladders: what every correct answer has, checked in order before the values --------------
def pair_counts_total(got, case) -> str | None:
    """A dict whose counts add up to len(ids) - 1: every neighbouring pair, overlapping ones too."""
    if not isinstance(got, dict):
        return f"return a dict mapping (id, id) pairs to counts, got {type(got).__name__}"
    ids = case["ids"]
    total = sum(v for v in got.values() if isinstance(v, int))
    if total != max(len(ids) - 1, 0):
        return (f"the counts add up to {total}, but {len(ids)} ids hold {max(len(ids) - 1, 0)} neighbouring pairs "
                f"(ids[i], ids[i + 1]), overlapping ones included")
    return None


def train_properties(got, case) -> str | None:
    """(vocab, merges); the 256 single bytes; vocab[256 + r] made by merge r; every merge inside a pre-token."""
    if not isinstance(got, (tuple, list)) or len(got) != 2 or not isinstance(got[0], dict) \
            or not isinstance(got[1], list):
        return "return a tuple (vocab, merges): a dict id -> bytes and a list of (bytes, bytes) pairs"
    vocab, merges = got
    if any(vocab.get(i) != bytes([i]) for i in range(256)):
        return "ids 0..255 must be the single bytes: vocab[i] == bytes([i])"
    for r, merged in enumerate(merges):
        if not (isinstance(merged, (tuple, list)) and len(merged) == 2 and all(isinstance(p, bytes) for p in merged)):
            return (f"merges[{r}] is {merged!r}: each merge is a pair of bytes objects, (vocab[a], vocab[b]), "
                    f"not of ids")
        if vocab.get(256 + r) != merged[0] + merged[1]:
            return f"vocab[{256 + r}] should hold the bytes made by merge {r}, the two parts of merges[{r}] joined"
    pieces = {p.encode("utf-8") for p in regex.findall(GPT2_SPLIT_PATTERN, case["text"])}
    crossing = [a + b for a, b in merges if not any(a + b in p for p in pieces)]
    if crossing:
        return f"the merged token {crossing[0]!r} is not inside any GPT2_SPLIT_PATTERN pre-token of the text"
    return None


def encode_properties(got, case) -> str | None:
    """A list of ids of the vocabulary whose bytes spell the text, no token spanning two pre-tokens."""
    vocab, text = case["vocab"], case["text"]
    if not isinstance(got, (list, tuple)) or not all(isinstance(i, int) and i in vocab for i in got):
        return "return a list of int ids, each a key of vocab"
    if b"".join(vocab[i] for i in got) != text.encode("utf-8"):
        return "the tokens' bytes joined do not spell the text: every byte must be in exactly one token, in order"
    ends, n = set(), 0
    for piece in regex.findall(GPT2_SPLIT_PATTERN, text):
        n += len(piece.encode("utf-8"))
        ends.add(n)
    n = 0
    for i in got:
        n += len(vocab[i])
        if any(n - len(vocab[i]) < e < n for e in ends):
            return f"the token {vocab[i]!r} spans two GPT2_SPLIT_PATTERN pre-tokens: merge inside each pre-token only"
    learned, n = {tuple(m) for m in case["merges"]}, 0
    for left, right in zip(got, list(got)[1:]):
        n += len(vocab[left])
        if n not in ends and (vocab[left], vocab[right]) in learned:
            return (f"the tokens {vocab[left]!r} and {vocab[right]!r} sit side by side inside one GPT2_SPLIT_PATTERN "
                    f"pre-token, yet ({vocab[left]!r}, {vocab[right]!r}) is a learned merge: split the text with "
                    f"GPT2_SPLIT_PATTERN, then keep merging until no neighbouring pair inside a pre-token is learned")
    return None


def decode_type(got, case) -> str | None:
    """A str."""
    return None if isinstance(got, str) else f"return a str, got {type(got).__name__}"


EXERCISES = [
    Exercise(day=DAY, name="clean_gutenberg", grade_ids=("test_clean_gutenberg",), make_cases=_clean_cases,
             reference=data.clean_gutenberg, compare=_compare_text, forbidden=(data.clean_gutenberg,),
             description="strip the Gutenberg header and licence, normalise newlines, trailing spaces, blank runs",
             properties=(clean_properties,),
             edge_cases=("header and footer, each alone, neither", "\\r\\n line ends", "a lone \\r line end",
                         "a byte-order mark", "START OF THE and START OF THIS, with and without a space after ***",
                         "three footer styles", "runs of blank lines, some holding spaces", "only blank lines",
                         "indented lines (leading spaces stay)")),
    Exercise(day=DAY, name="pair_counts", grade_ids=("test_pair_counts",), make_cases=_pair_counts_cases,
             reference=reference_pair_counts, compare=_compare_counts,
             description="counts of adjacent pairs of ids", properties=(pair_counts_total,),
             edge_cases=("no ids", "one id", "a run of equal ids (overlapping pairs)", "ids above 255")),
    Exercise(day=DAY, name="merge", grade_ids=("test_merge",), make_cases=_merge_cases,
             reference=reference_merge, compare=_compare_ids,
             description="replace every occurrence of a pair by a new id, left to right",
             properties=(merge_properties,),
             edge_cases=("no ids", "a run of three equal ids (left to right)", "a pair that does not occur",
                         "the pair's first id last in the list", "the pair as the list's last two ids")),
    Exercise(day=DAY, name="train_bpe", grade_ids=("test_train_bpe",), make_cases=_train_cases,
             reference=bpe.train_bpe, compare=_compare_training,
             forbidden=(bpe.train_bpe, bpe.Tokenizer.train, bpe_train._merge_word, bpe_train._pop_best),
             description="byte-level BPE training with GPT-2 pre-tokenization and greatest-pair tie-breaking",
             properties=(train_properties,),
             edge_cases=("the toy corpus (ties)", "running out of pairs, the last merge of a pair seen once",
                         "the empty text", "multi-byte characters and whitespace runs",
                         "a tie that the pairs' ids and their bytes break differently",
                         "a pre-token occurring many times (counts weighted by frequency)")),
    Exercise(day=DAY, name="encode", grade_ids=("test_encode",), make_cases=_encode_cases,
             reference=reference_encode, compare=_compare_ids,
             forbidden=(bpe.Tokenizer.encode, bpe_tokenizer.Tokenizer._bpe, bpe.Tokenizer.encode_iterable),
             description="pre-tokenize, then apply merges lowest rank first within each pre-token",
             properties=(encode_properties,),
             edge_cases=("the empty text", "whitespace runs", "merges that compete for a byte (rank, not position)",
                         "characters never seen in training", "characters of 2 and 3 UTF-8 bytes, merged")),
    Exercise(day=DAY, name="decode", grade_ids=("test_decode",), make_cases=_decode_cases,
             reference=reference_decode, compare=_compare_text, forbidden=(bpe.Tokenizer.decode,),
             description="join the tokens' bytes, then decode UTF-8 once, with U+FFFD for invalid bytes",
             properties=(decode_type,),
             edge_cases=("no ids", "a character cut short", "lone continuation bytes",
                         "characters split across tokens")),
]
