"""Common wrong answers of day 1 (cleaning, pair counts, merge, BPE training, encode, decode),
in the exercises' signatures.

Each `says` completes "Your answer is exactly what you get when you ...". Wrong answers only: the
notebook's visible tests import this module.
"""

from __future__ import annotations

from collections import Counter

import regex

from gptref.grading.explain import Mistake
from gptref.tokenizers.bpe import GPT2_SPLIT_PATTERN

_START = regex.compile(r"\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG", regex.IGNORECASE)
_END = regex.compile(r"\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG|^\s*End of (the )?Project Gutenberg",
                     regex.IGNORECASE)


# -- clean_gutenberg: one cleaner with a switch per slip ------------------------------------------
def _clean(raw, *, strip=True, keep_start=False, newlines=True, collapse=True, keep_end=False, both_ends=False,
           lone_cr=True, start=_START, end=_END):
    text = raw.lstrip("\ufeff")
    if newlines:
        text = text.replace("\r\n", "\n")
        text = text.replace("\r", "\n") if lone_cr else text
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if start.search(line):
            lines = lines[i if keep_start else i + 1:]
            break
    for i, line in enumerate(lines):
        if end.search(line):
            lines = lines[:i + 1 if keep_end else i]
            break
    kept = []
    for line in lines:
        line = line.rstrip(" \t") if strip else line
        line = line.strip() if both_ends else line
        if line == "" and (not kept or (collapse and kept[-1] == "")):
            continue
        kept.append(line)
    while kept and kept[-1] == "":
        kept.pop()
    return "\n".join(kept) + "\n" if kept else ""


_START_THIS_ONLY = regex.compile(r"\*\*\* START OF THIS PROJECT GUTENBERG")
_END_STARS_ONLY = regex.compile(r"\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG", regex.IGNORECASE)


# -- pair_counts ----------------------------------------------------------------------------------
def _counts_even_positions(ids):
    return dict(Counter(zip(ids[::2], ids[1::2])))


def _counts_stop_early(ids):
    return dict(Counter((ids[i], ids[i + 1]) for i in range(len(ids) - 2)))  # the last pair is left out


def _counts_presence(ids):
    return {pair: 1 for pair in zip(ids, ids[1:])}


def _counts_non_overlapping(ids):
    counts, i = Counter(), 0
    while i + 1 < len(ids):
        counts[(ids[i], ids[i + 1])] += 1
        i += 2 if ids[i] == ids[i + 1] else 1
    return dict(counts)


# -- merge ----------------------------------------------------------------------------------------
def _merge(ids, pair, new_id, step=2, keep_last=True, either_order=False, test_last_pair=True):
    matches = {tuple(pair), tuple(pair)[::-1]} if either_order else {tuple(pair)}
    out, i = [], 0
    while i < (len(ids) if keep_last else len(ids) - 1):
        if i + (1 if test_last_pair else 2) < len(ids) and (ids[i], ids[i + 1]) in matches:
            out.append(new_id)
            i += step
        else:
            out.append(ids[i])
            i += 1
    return out


def _merge_right_to_left(ids, pair, new_id):
    return _merge(ids[::-1], pair[::-1], new_id)[::-1]


# -- pre-tokenizing patterns students write instead of GPT2_SPLIT_PATTERN ---------------------------
_CONTRACTIONS = r"'s|'t|'re|'ve|'m|'ll|'d|"
NO_LEADING_SPACE = _CONTRACTIONS + r"\p{L}+|\p{N}+|[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
WORD_CHARS_ONLY = r"\w+"
WORD_CHARS = r" ?\w+| ?[^\w\s]+|\s+"
# GPT-2's pattern with letters and digits joined into one class
LETTERS_WITH_DIGITS = _CONTRACTIONS + r" ?[\p{L}\p{N}]+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
ONE_DIGIT = _CONTRACTIONS + r" ?\p{L}+| ?\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
DIGITS_BY_THREE = _CONTRACTIONS + r" ?\p{L}+| ?\p{N}{1,3}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
DIGITS_WITHOUT_SPACE = _CONTRACTIONS + r" ?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"

_USE_GIVEN = "; use the given GPT2_SPLIT_PATTERN"
_SAYS_NO_LEADING_SPACE = ("pre-tokenize with a pattern of your own that leaves the space out of the word (\\p{L}+ "
                          "without ' ?', \\w+, text.split()): GPT-2's pre-tokens carry their leading space, ' the'"
                          + _USE_GIVEN)
_SAYS_WORDS_ONLY = ("pre-tokenize with \\w+ alone: it keeps only the words (letters, digits and _ together) and "
                    "drops the spaces and punctuation between them" + _USE_GIVEN)
_SAYS_ONE_DIGIT = ("cut the digits into pre-tokens of ONE digit (\\p{N} without +): GPT-2 keeps a run of digits "
                   "together, ' 1599' is one pre-token" + _USE_GIVEN)
_SAYS_DIGITS_BY_THREE = ("cut runs of digits into groups of three (\\p{N}{1,3}, a later tokenizer's rule): GPT-2 keeps "
                         "the whole run together, ' ?\\p{N}+'" + _USE_GIVEN)
_SAYS_DIGITS_WITHOUT_SPACE = ("leave the space out of a run of digits (\\p{N}+ without ' ?'): GPT-2's ' 1599' carries "
                              "its space like ' the'" + _USE_GIVEN)


# -- train_bpe ------------------------------------------------------------------------------------
def _train(text, vocab_size, *, split=True, ties="bytes", extra=0, min_count=1, weighted=True,
           pattern=GPT2_SPLIT_PATTERN):
    pieces = regex.findall(pattern, text) if split else [text]
    words = Counter(tuple(w.encode("utf-8")) for w in pieces if w)
    vocab = {i: bytes([i]) for i in range(256)}
    merges = []
    for new_id in range(256, vocab_size + extra):
        counts = Counter()
        for word, freq in words.items():
            for pair in zip(word, word[1:]):
                counts[pair] += freq if weighted else 1
        if not counts or max(counts.values()) < min_count:
            break
        if ties == "bytes":
            a, b = max(counts, key=lambda p: (counts[p], vocab[p[0]], vocab[p[1]]))
        elif ties == "first":
            a, b = max(counts, key=lambda p: counts[p])
        else:
            a, b = max(counts, key=lambda p: (counts[p], p))
        vocab[new_id] = vocab[a] + vocab[b]
        merges.append((vocab[a], vocab[b]))
        words = Counter({tuple(_merge(list(w), (a, b), new_id)): f for w, f in words.items()})
    return vocab, merges


# -- encode ---------------------------------------------------------------------------------------
def _encode(text, vocab, merges, *, split=True, order="rank", code_points=False, pattern=GPT2_SPLIT_PATTERN,
            rounds=None, stop_at_unmerged=False):
    id_of = {}
    for i in sorted(vocab):
        id_of.setdefault(vocab[i], i)
    rank = {}
    for r, (left, right) in enumerate(merges):
        rank.setdefault((id_of[left], id_of[right]), r)
    ids = []
    for piece in (regex.findall(pattern, text) if split else [text]):
        tokens = [ord(c) for c in piece] if code_points else list(piece.encode("utf-8"))
        done = 0
        while len(tokens) > 1 and (rounds is None or done < rounds):  # rounds: an if where a while belongs
            done += 1
            present = [p for p in zip(tokens, tokens[1:]) if p in rank]
            if not present:
                if stop_at_unmerged:  # the break of an if leaves the loop over the pre-tokens
                    return ids
                break
            if order == "rank":
                pair = min(present, key=rank.get)
            elif order == "latest":
                pair = max(present, key=rank.get)
            else:
                pair = present[0]
            tokens = _merge(tokens, pair, id_of[vocab[pair[0]] + vocab[pair[1]]])
        ids.extend(tokens)
    return ids


# -- decode ---------------------------------------------------------------------------------------
def _decode_each(ids, vocab):
    return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)


def _decode_ignore(ids, vocab):
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="ignore")


def _decode_latin1(ids, vocab):
    return b"".join(vocab[i] for i in ids).decode("latin-1")


MISTAKES = {
    "clean_gutenberg": (
        Mistake("keep the spaces and tabs at the ends of lines: remove trailing spaces and tabs (line.rstrip(' \\t'))",
                lambda raw: _clean(raw, strip=False)),
        Mistake("keep the *** START OF ... *** line itself: the header (everything up to and including the "
                "*** START OF ... *** line) must go",
                lambda raw: _clean(raw, keep_start=True)),
        Mistake("leave the \\r of Windows line endings: turn \\r\\n (and lone \\r) into \\n first",
                lambda raw: _clean(raw, newlines=False)),
        Mistake("keep every blank line: collapse runs of blank lines into one",
                lambda raw: _clean(raw, collapse=False)),
        Mistake("keep the *** END OF ... *** (or 'End of the Project Gutenberg') line: the footer starts at that line "
                "and goes entirely", lambda raw: _clean(raw, keep_end=True)),
        Mistake("strip both ends of each line: only TRAILING spaces and tabs go (line.rstrip(' \\t')); the spaces "
                "that start a line, such as the indentation of '  I', stay", lambda raw: _clean(raw, both_ends=True)),
        Mistake("turn only \\r\\n into \\n: a lone \\r (an old Mac line end) is a line end too and must become \\n",
                lambda raw: _clean(raw, lone_cr=False)),
        Mistake("recognise only '*** START OF THIS PROJECT GUTENBERG': files also write START OF THE PROJECT "
                "GUTENBERG, in any case, with or without a space after ***",
                lambda raw: _clean(raw, start=_START_THIS_ONLY)),
        Mistake("find the footer only by its *** END OF line: a line that begins 'End of the Project Gutenberg' or "
                "'End of Project Gutenberg' starts the footer too (rule 3)",
                lambda raw: _clean(raw, end=_END_STARS_ONLY)),
    ),
    "pair_counts": (
        Mistake("pair ids[0::2] with ids[1::2]: you counted only the pairs at even positions; every neighbouring pair "
                "counts, zip(ids, ids[1:])", _counts_even_positions),
        Mistake("stop the loop one pair early: the last pair (ids[-2], ids[-1]) was not counted; i runs up to "
                "len(ids) - 2 included, range(len(ids) - 1)", _counts_stop_early),
        Mistake("set each pair's count to 1: you recorded which pairs occur, not how often; add 1 per occurrence",
                _counts_presence),
        Mistake("skip the overlapping occurrence of a pair of equal ids: counting overlaps too, [7, 7, 7] holds (7, 7) "
                "twice", _counts_non_overlapping),
        Mistake("write each pair as (ids[i + 1], ids[i]): a pair is (left, right), (ids[i], ids[i + 1])",
                lambda ids: dict(Counter(zip(ids[1:], ids)))),
        Mistake("start a new pair's count at 1 before adding its first occurrence (counts.get(pair, 1) + 1): a pair "
                "seen once must count 1, so start from 0, counts.get(pair, 0) + 1",
                lambda ids: {pair: n + 1 for pair, n in Counter(zip(ids, ids[1:])).items()}),
    ),
    "merge": (
        Mistake("move on by one after a merge: skip BOTH of its ids (i += 2)",
                lambda ids, pair, new_id: _merge(ids, pair, new_id, step=1)),
        Mistake("stop the loop one early: the last id went missing",
                lambda ids, pair, new_id: _merge(ids, pair, new_id, keep_last=False)),
        Mistake("never test the last two ids as a pair (a bound such as i + 2 < len(ids)): the pair that starts at "
                "i ends at i + 1, so it exists while i + 1 < len(ids)",
                lambda ids, pair, new_id: _merge(ids, pair, new_id, test_last_pair=False)),
        Mistake("scan from the right: scan left to right, so [7, 7, 7] with (7, 7) gives [new_id, 7]",
                _merge_right_to_left),
        Mistake("match the pair in either order: (2, 1) is 2 then 1, so [1, 2] holds no (2, 1)",
                lambda ids, pair, new_id: _merge(ids, pair, new_id, either_order=True)),
    ),
    "train_bpe": (
        Mistake("break ties by the pair seen first: ties go to the greatest pair of bytes, (vocab[a], vocab[b])",
                lambda text, vocab_size: _train(text, vocab_size, ties="first")),
        Mistake("break ties by the greatest pair of ids: ties go to the greatest pair of bytes, (vocab[a], vocab[b]), "
                "and a merged token's id says nothing about its bytes",
                lambda text, vocab_size: _train(text, vocab_size, ties="ids")),
        Mistake("count pairs over the whole text: a merge crosses a word boundary; pre-tokenize with "
                "GPT2_SPLIT_PATTERN",
                lambda text, vocab_size: _train(text, vocab_size, split=False)),
        Mistake("make vocab_size - 255 merges: vocab_size 260 means 4 merges (it counts the 256 bytes)",
                lambda text, vocab_size: _train(text, vocab_size, extra=1)),
        Mistake("stop when the best pair occurs only once: merge even a pair that occurs once, until vocab_size "
                "or no pair is left", lambda text, vocab_size: _train(text, vocab_size, min_count=2)),
        Mistake("count each distinct pre-token once: a pair's count is the sum over pre-tokens of (how often the "
                "pre-token occurs) x (how often the pair occurs in it)",
                lambda text, vocab_size: _train(text, vocab_size, weighted=False)),
        Mistake(_SAYS_NO_LEADING_SPACE,
                lambda text, vocab_size: _train(text, vocab_size, pattern=NO_LEADING_SPACE)),
        Mistake("put letters and digits into one pre-token (\\w+ or [\\p{L}\\p{N}]+ in a pattern of your own): "
                "GPT-2 cuts 'act3' into 'act' and '3', letters (\\p{L}+) apart from digits (\\p{N}+)" + _USE_GIVEN,
                lambda text, vocab_size: _train(text, vocab_size, pattern=WORD_CHARS)),
        Mistake("put letters and digits into one pre-token (\\w+ or [\\p{L}\\p{N}]+ in a pattern of your own): "
                "GPT-2 cuts 'act3' into 'act' and '3', letters (\\p{L}+) apart from digits (\\p{N}+)" + _USE_GIVEN,
                lambda text, vocab_size: _train(text, vocab_size, pattern=LETTERS_WITH_DIGITS)),
        Mistake(_SAYS_WORDS_ONLY, lambda text, vocab_size: _train(text, vocab_size, pattern=WORD_CHARS_ONLY)),
        Mistake(_SAYS_ONE_DIGIT, lambda text, vocab_size: _train(text, vocab_size, pattern=ONE_DIGIT)),
        Mistake(_SAYS_DIGITS_BY_THREE, lambda text, vocab_size: _train(text, vocab_size, pattern=DIGITS_BY_THREE)),
        Mistake(_SAYS_DIGITS_WITHOUT_SPACE,
                lambda text, vocab_size: _train(text, vocab_size, pattern=DIGITS_WITHOUT_SPACE)),
    ),
    "encode": (
        Mistake("apply the latest merge first: apply the merges in training order (lowest rank first)",
                lambda text, vocab, merges: _encode(text, vocab, merges, order="latest")),
        Mistake("merge the leftmost learned pair first: apply the merges in training order (lowest rank first), "
                "wherever the pair sits in the text",
                lambda text, vocab, merges: _encode(text, vocab, merges, order="left")),
        Mistake("apply at most one merge per pre-token (an if where a while belongs): keep applying the earliest "
                "learned merge present until no neighbouring pair of the pre-token is a learned merge",
                lambda text, vocab, merges: _encode(text, vocab, merges, rounds=1)),
        Mistake("apply at most one merge per pre-token (an if where a while belongs), and the if's break then leaves "
                "the loop over the pre-tokens, so everything from the first pre-token without a learned pair on is "
                "lost: keep a while loop, whose break ends only that pre-token's merging",
                lambda text, vocab, merges: _encode(text, vocab, merges, rounds=1, stop_at_unmerged=True)),
        Mistake("encode the whole text as one piece: split the text into GPT2_SPLIT_PATTERN pre-tokens first",
                lambda text, vocab, merges: _encode(text, vocab, merges, split=False)),
        Mistake("start from the characters' code points (ord(c)): start from the UTF-8 bytes, piece.encode('utf-8'); "
                "a character outside ASCII is 2 to 4 bytes",
                lambda text, vocab, merges: _encode(text, vocab, merges, code_points=True)),
        Mistake(_SAYS_WORDS_ONLY,
                lambda text, vocab, merges: _encode(text, vocab, merges, pattern=WORD_CHARS_ONLY)),
        Mistake(_SAYS_NO_LEADING_SPACE,
                lambda text, vocab, merges: _encode(text, vocab, merges, pattern=NO_LEADING_SPACE)),
        Mistake("pre-tokenize with a pattern of your own that cuts every space and punctuation mark into a piece of "
                "its own (\\w+|\\W): GPT-2's pre-tokens carry their leading space, ' the', and keep a run of spaces "
                "together" + _USE_GIVEN,
                lambda text, vocab, merges: _encode(text, vocab, merges, pattern=r"\w+|\W")),
        Mistake(_SAYS_ONE_DIGIT, lambda text, vocab, merges: _encode(text, vocab, merges, pattern=ONE_DIGIT)),
        Mistake(_SAYS_DIGITS_BY_THREE,
                lambda text, vocab, merges: _encode(text, vocab, merges, pattern=DIGITS_BY_THREE)),
        Mistake(_SAYS_DIGITS_WITHOUT_SPACE,
                lambda text, vocab, merges: _encode(text, vocab, merges, pattern=DIGITS_WITHOUT_SPACE)),
    ),
    "decode": (
        Mistake("decode token by token: join all bytes first, then decode once", _decode_each),
        Mistake("decode with errors='ignore': invalid bytes must become U+FFFD (errors='replace'), not vanish",
                _decode_ignore),
        Mistake("decode as latin-1: the bytes are UTF-8, decode('utf-8', errors='replace')", _decode_latin1),
    ),
}
