"""Builds solutions/01_bpe/01_bpe.ipynb: cleaning a Gutenberg text and byte-level BPE from scratch."""

from tools.nbbuild import Notebook

nb = Notebook("01_bpe")

nb.md(r"""
# Day 1 — From raw text to tokens: cleaning and byte-level BPE

A language model reads integers, not text. Before anything else we must (1) get clean text and
(2) cut it into *tokens* from a fixed vocabulary. GPT-2 does the second with **byte-level
byte-pair encoding (BPE)**: start from the 256 possible bytes and repeatedly glue together the
most frequent adjacent pair into a new token.

**Learning goals.** After this notebook you can

1. strip a Project Gutenberg file down to the work itself, with normalized line endings and blank lines;
2. count adjacent pairs and apply one merge;
3. train a byte-level BPE tokenizer as GPT-2 does: pre-tokenize with a regular expression,
   merge the most frequent pair, break ties deterministically;
4. encode text with learned merges and decode ids back to text, even when bytes are not valid UTF-8;
5. measure how the vocabulary size trades off against sequence length, and compare with SentencePiece.
""")

nb.code(r"""
import os
import tempfile
from collections import Counter

import matplotlib.pyplot as plt
import regex  # the `regex` package: like `re`, but knows Unicode classes such as \p{L}

from gptref.tokenizers.bpe import GPT2_SPLIT_PATTERN
""")

nb.md(r"""
## 1. Cleaning a Gutenberg text

Our corpus is the works of Shakespeare from Project Gutenberg. Every Gutenberg file wraps the
work in boilerplate: a header (title, licence summary, release date), a start marker such as
`*** START OF THIS PROJECT GUTENBERG EBOOK HAMLET ***`, and after the work an end marker and a long
licence. A model trained on the raw files would learn the licence by heart. Files also come
with Windows line endings (`\r\n`), trailing spaces and runs of blank lines.

The rules our cleaner follows (those of `gptref.data.clean_gutenberg`, which built the corpus):

1. drop a leading byte-order mark `\ufeff`; turn `\r\n` and lone `\r` into `\n`;
2. **header**: if a line contains a start marker — `***`, optional spaces, `START OF THE PROJECT GUTENBERG`
   or `START OF THIS PROJECT GUTENBERG` — drop that line and everything before it;
3. **footer**: drop everything from the first line that begins with `End of the Project Gutenberg`
   or `End of Project Gutenberg`, or that contains `***` + optional spaces + `END OF THE PROJECT GUTENBERG`
   (or `THIS`), to the end;
4. remove trailing spaces and tabs from every line;
5. collapse any run of blank lines into a single blank line, and drop blank lines at the start and end;
6. end the text with exactly one `\n` (an empty text stays empty).

Here is a small synthetic file in that format (no network needed):
""")

nb.code(r'''
raw_example = (
    "\ufeffThe Project Gutenberg EBook of Sonnets, by William Shakespeare\r\n"
    "\r\n"
    "This eBook is for the use of anyone anywhere at no cost.\r\n"
    "*** START OF THIS PROJECT GUTENBERG EBOOK SONNETS ***\r\n"
    "\r\n"
    "\r\n"
    "  I\r\n"
    "From fairest creatures we desire increase,   \r\n"
    "That thereby beauty's rose might never die,\t\r\n"
    "\r\n"
    "   \r\n"
    "\r\n"
    "  II\r\n"
    "When forty winters shall besiege thy brow,\r\n"
    "\r\n"
    "End of the Project Gutenberg EBook of Sonnets, by William Shakespeare\r\n"
    "*** END OF THIS PROJECT GUTENBERG EBOOK SONNETS ***\r\n"
    "Section 1. General Terms of Use ...\r\n"
)
print(repr(raw_example[:120]))
''')

nb.md(r"""
## Exercise 1 — `clean_gutenberg` (2 points)

Write `clean_gutenberg(raw)` following rules 1–6. You may use `re`/`regex` or plain string
methods; you may not call `gptref.data.clean_gutenberg`. For the example above the result is
the string these two pieces make when joined (note the leading spaces of `  I` stay: only *trailing*
whitespace goes):

```python
"  I\nFrom fairest creatures we desire increase,\nThat thereby beauty's rose might never die,\n"
"\n  II\nWhen forty winters shall besiege thy brow,\n"
```
""")

nb.solution("clean_gutenberg", r'''
def clean_gutenberg(raw):
    """The work inside a Project Gutenberg file: no header or licence, tidy newlines and blanks."""
    ### BEGIN SOLUTION
    text = raw.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    start = regex.compile(r"\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG", regex.IGNORECASE)
    end = regex.compile(r"\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG|^\s*End of (the )?Project Gutenberg",
                        regex.IGNORECASE)
    for i, line in enumerate(lines):
        if start.search(line):
            lines = lines[i + 1:]
            break
    for i, line in enumerate(lines):
        if end.search(line):
            lines = lines[:i]
            break
    kept = []
    for line in lines:
        line = line.rstrip(" \t")
        if line == "" and (not kept or kept[-1] == ""):
            continue                      # no leading blank line, no two blank lines in a row
        kept.append(line)
    while kept and kept[-1] == "":
        kept.pop()
    return "\n".join(kept) + "\n" if kept else ""
    ### END SOLUTION
''')

nb.tests("test_clean_gutenberg", 2, r'''
from gptref.grading.explain import call, which_mistake
from gptref.grading.ladders import mistakes_agreeing
from gptref.grading.ladders.d01_bpe import clean_properties
from gptref.grading.mistakes.d01_bpe import MISTAKES


def _check_clean(raw, expected):
    """clean_gutenberg(raw) in order: a str; no \r; no trailing spaces; no header or footer line; no run of
    blank lines; one final newline; then the text itself. A failure also names the known mistake it matches."""
    got = call(clean_gutenberg, raw)

    def fail(problem):
        known = mistakes_agreeing(clean_gutenberg, MISTAKES["clean_gutenberg"], [{"raw": r} for r, _ in _CLEAN_CASES])
        raise AssertionError(problem + which_mistake(got, known, {"raw": raw}, expected))

    problem = clean_properties(got, {"raw": raw})
    if problem:
        fail(problem)
    lines = got.split("\n")
    indented = [line for line in expected.split("\n") if line != line.lstrip(" \t")]
    if indented and indented[0] not in lines and indented[0].lstrip() in [line.lstrip() for line in lines]:
        fail(f"clean_gutenberg: the line {indented[0]!r} starts with spaces, and they must stay: only TRAILING spaces "
             f"and tabs go (rule 4)")
    if got != expected:
        i = next((j for j, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
        fail(f"clean_gutenberg: from character {i} on the result is {got[i:i + 40]!r}, "
             f"expected {expected[i:i + 40]!r}")


_CLEAN_CASES = [  # (raw, expected); a known mistake is named only when it gives your answers on all of them
    # a footer that begins with an "End of Project Gutenberg" line and has no *** END line
    ("Text.\nEnd of Project Gutenberg's Sonnets\n\nSection 1.  General Terms of Use\n", "Text.\n"),
    (raw_example, "  I\nFrom fairest creatures we desire increase,\nThat thereby beauty's rose might never "
                  "die,\n\n  II\nWhen forty winters shall besiege thy brow,\n"),
    ("No header here.  \r\nSecond line.\r\n\r\n\r\nThird.", "No header here.\nSecond line.\n\nThird.\n"),
    ("\n \n\n", ""),   # nothing in it: the empty string
    ("\ufeffNo header, but a byte-order mark.\r\n", "No header, but a byte-order mark.\n"),
    ("Header\n***START OF THE PROJECT GUTENBERG EBOOK X***\nThe work.\n", "The work.\n"),  # THE, no space
    # a lone \r ends a line too
    ("Old Mac files end\ra line with CR alone,\r\nothers with CR LF.\r",
     "Old Mac files end\na line with CR alone,\nothers with CR LF.\n"),
]
for _raw, _cleaned in _CLEAN_CASES:
    _check_clean(_raw, _cleaned)
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("01_bpe", "clean_gutenberg", clean_gutenberg)
### END HIDDEN TESTS
''')

nb.md(r"""
## 2. Bytes, pairs and merges

Text is a sequence of Unicode characters; UTF-8 writes each as 1 to 4 bytes. Byte-level BPE
starts from those bytes, so its first 256 tokens can spell *any* string — no "unknown token" ever.
`"héllo".encode("utf-8")` is `[104, 195, 169, 108, 108, 111]`: `é` takes two bytes.

BPE (Gage 1994; Sennrich et al. 2016 for words; Radford et al. 2019 for bytes) is a greedy
compressor. Given a sequence of ids:

1. count every adjacent pair $(a, b)$;
2. take the most frequent pair and give it a new id $n$ (the token for the bytes of $a$ followed by those of $b$);
3. replace every occurrence of $(a, b)$ by $n$, scanning left to right;
4. repeat until the vocabulary has the size you want.

Each merge adds one token, so a vocabulary of $V$ tokens is $V - 256$ merges. A merge shortens the
sequence by the number of occurrences it replaces, which is the pair's count only when no two
occurrences overlap. Scanning left to right matters when a pair overlaps itself: the pair *count*
of $7\,7\,7$ is 2 (overlaps count), but merging $(7, 7)$ replaces only one occurrence and gives
$n\,7$ (the first two), not $7\,n$: three ids become two, one shorter, not two.
""")

nb.md(r"""
## Exercise 2 — `pair_counts` (1 point)

Write `pair_counts(ids)`: a dict from each adjacent pair `(ids[i], ids[i+1])` to how often it occurs.
""")

nb.solution("pair_counts", r'''
def pair_counts(ids):
    """{(a, b): number of positions i with ids[i] == a and ids[i + 1] == b}."""
    ### BEGIN SOLUTION
    counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts
    ### END SOLUTION
''')

nb.tests("test_pair_counts", 1, r'''
from gptref.grading.explain import call, which_mistake
from gptref.grading.ladders import mistakes_agreeing
from gptref.grading.mistakes.d01_bpe import MISTAKES


def _check_pair_counts(ids):
    """pair_counts(ids) in order: a dict of (id, id) -> count; the counts add up to len(ids) - 1 (every
    neighbouring pair, overlapping ones too); then each count. A failure also names the known mistake it matches."""
    got = call(pair_counts, list(ids))
    expected = dict(Counter(zip(ids, ids[1:])))

    def fail(problem):
        known = mistakes_agreeing(pair_counts, MISTAKES["pair_counts"], [{"ids": list(i)} for i in _PAIR_INPUTS])
        raise AssertionError(f"pair_counts({ids}): {problem}" + which_mistake(got, known, {"ids": ids}, expected))

    if not isinstance(got, dict):
        fail(f"return a dict, got {type(got).__name__}")
    if sum(got.values()) != max(len(ids) - 1, 0):
        fail(f"the counts add up to {sum(got.values())}, but {len(ids)} ids hold {max(len(ids) - 1, 0)} neighbouring "
             f"pairs (ids[i], ids[i + 1]), overlapping ones included")
    for pair, n in expected.items():
        if got.get(pair) != n:
            fail(f"the pair {pair} occurs {n} times, you counted {got.get(pair, 0)}")
    if got != expected:
        fail(f"pairs that do not occur: {sorted(set(got) - set(expected))}")


_PAIR_INPUTS = [
    [1, 2, 3, 1, 2],
    [7, 7, 7],                     # overlapping pairs all count
    [],                            # fewer than two ids hold no pair
    [5],
    list("abracadabra".encode()),  # (a, b) is not (b, a)
]
for _ids in _PAIR_INPUTS:
    _check_pair_counts(_ids)
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("01_bpe", "pair_counts", pair_counts)
### END HIDDEN TESTS
''')

nb.md(r"""
## Exercise 3 — `merge` (1 point)

Write `merge(ids, pair, new_id)`: a new list in which every occurrence of `pair` is replaced by
`new_id`, scanning left to right (a merged position is not reused).
""")

nb.solution("merge", r'''
def merge(ids, pair, new_id):
    """ids with each (left-to-right, non-overlapping) occurrence of pair replaced by new_id."""
    ### BEGIN SOLUTION
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out
    ### END SOLUTION
''')

nb.tests("test_merge", 1, r'''
from gptref.grading.explain import call, which_mistake
from gptref.grading.mistakes.d01_bpe import MISTAKES


from gptref.grading.ladders import mistakes_agreeing
from gptref.grading.ladders.d01_bpe import merge_properties


def _check_merge(ids, pair, new_id):
    """merge in order: a new list; the input unchanged; the pair gone; expanding new_id gives back ids; then the
    ids themselves. A failure also names the known mistake it matches."""
    before = list(ids)
    got = call(merge, ids, pair, new_id)
    expected, i = [], 0
    while i < len(ids):  # left to right, a merged position is not reused
        hit = i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair)
        expected.append(new_id if hit else ids[i])
        i += 2 if hit else 1

    def fail(problem):
        raise AssertionError(f"merge({before}, {pair}, {new_id}): {problem}"
                             + which_mistake(got, mistakes_agreeing(merge, MISTAKES["merge"], [
                                 {"ids": list(i), "pair": p, "new_id": n} for i, p, n in _MERGE_CASES]),
                                 {"ids": before, "pair": pair, "new_id": new_id}, expected))

    if not isinstance(got, list):
        fail(f"return a list, got {type(got).__name__}")
    if ids != before:
        fail(f"the input list changed to {ids}: return a new list and leave ids as it is")
    problem = merge_properties(got, {"ids": before, "pair": pair, "new_id": new_id})
    if problem:
        fail(problem)
    if got != expected:
        fail(f"got {got}, expected {expected} (scan left to right; a merged position is not reused)")


_MERGE_CASES = [  # a known mistake is named only when it gives your answers on all of them
    ([1, 2, 3, 1, 2], (1, 2), 256),
    ([1, 2, 5], (1, 2), 9),
    ([7, 7, 7], (7, 7), 300),      # left to right: [300, 7]
    ([7, 7, 7, 7], (7, 7), 300),
    ([1, 2], (2, 1), 9),           # the order inside the pair matters
    ([1, 2, 1], (1, 2), 9),        # the last id is not part of a merge
    ([], (1, 2), 9),
]
for _ids, _pair, _new in _MERGE_CASES:
    _check_merge(list(_ids), _pair, _new)
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("01_bpe", "merge", merge)
### END HIDDEN TESTS
''')

nb.md(r"""
A worked example, with your two functions: three merges on a short string.
""")

nb.code(r"""
ids = list("aaabdaaabac".encode("utf-8"))
vocab_demo = {i: bytes([i]) for i in range(256)}
for new_id in range(256, 259):
    counts = pair_counts(ids)
    best = max(counts, key=counts.get)
    ids = merge(ids, best, new_id)
    vocab_demo[new_id] = vocab_demo[best[0]] + vocab_demo[best[1]]
    print(f"merge {best} -> {new_id} = {vocab_demo[new_id]!r}: {[vocab_demo[i].decode() for i in ids]}")
""")

nb.md(r"""
## 3. Training a GPT-2 style tokenizer

Two refinements turn this into GPT-2's tokenizer.

**Pre-tokenization.** Merging over the raw text would create tokens such as `"e t"` or `"dog."`
that straddle words and punctuation. GPT-2 first cuts the text with a regular expression into
*pre-tokens* — contractions (`'s`, `'ll`, ...), a word with its leading space (`" the"`), a run of
digits, a run of punctuation, whitespace — and **never merges across two pre-tokens**:
""")

nb.code(r"""
print(GPT2_SPLIT_PATTERN)
print(regex.findall(GPT2_SPLIT_PATTERN, "Hello world, it's 2024!  Isn't it?\n"))
""")

nb.md(r"""
Since identical pre-tokens merge identically, training only needs each **distinct** pre-token
(as a tuple of byte ids) and its count $f_w$. A pair's count is then $\sum_w f_w \cdot (\text{its count inside } w)$.

**Ties.** Two pairs often have the same count. To make training deterministic (and our tests
possible) we take, among the most frequent pairs, the **greatest** one, comparing pairs by their
bytes: `(vocab[a], vocab[b])` as a tuple of `bytes`. This is the rule of `gptref.tokenizers.bpe.train_bpe`.

The result is `vocab`, a dict `id -> bytes` with ids 0–255 the single bytes and id $256 + r$ the
token made by merge $r$, and `merges`, the list of merged pairs as `(bytes, bytes)` in order.

**The toy corpus** of Sennrich et al.: `low` ×5, `lower` ×2, `newest` ×6, `widest` ×3, joined by spaces.
The pre-tokens are `low`, ` low` ×4, ` lower` ×2, ` newest` ×6, ` widest` ×3. Counting pairs:
`(e, s)` and `(s, t)` occur 6 + 3 = 9 times each, more than any other; the tie goes to
`(b"s", b"t") > (b"e", b"s")`, so the first merge is `st`, and then `(e, st)` with count 9 gives `est`.
""")

nb.md(r"""
## Exercise 4 — `train_bpe` (3 points)

Write `train_bpe(text, vocab_size)` returning `(vocab, merges)` as described: pre-tokenize with
`GPT2_SPLIT_PATTERN`, count distinct pre-tokens, then make `vocab_size - 256` merges (fewer if no
pair is left), each time the most frequent pair with ties to the greatest `(bytes, bytes)`.
Keep it simple: recount all pairs after each merge. Write it self-contained (loops of your
own rather than calls to `pair_counts`/`merge`, which count a single list without weights).
You may not call `gptref.tokenizers.bpe.train_bpe`.
""")

nb.solution("train_bpe", r'''
def train_bpe(text, vocab_size):
    """(vocab, merges) of a byte-level BPE tokenizer with vocab_size tokens learned from text."""
    ### BEGIN SOLUTION
    words = Counter(tuple(w.encode("utf-8")) for w in regex.findall(GPT2_SPLIT_PATTERN, text))
    vocab = {i: bytes([i]) for i in range(256)}
    merges = []
    for new_id in range(256, vocab_size):
        counts = {}
        for word, freq in words.items():
            for pair in zip(word, word[1:]):
                counts[pair] = counts.get(pair, 0) + freq
        if not counts:
            break
        a, b = max(counts, key=lambda p: (counts[p], vocab[p[0]], vocab[p[1]]))
        vocab[new_id] = vocab[a] + vocab[b]
        merges.append((vocab[a], vocab[b]))
        merged_words = Counter()
        for word, freq in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged_words[tuple(out)] += freq
        words = merged_words
    return vocab, merges
    ### END SOLUTION
''')

nb.tests("test_train_bpe", 3, r'''
from gptref.grading.explain import call, which_mistake
from gptref.grading.mistakes.d01_bpe import MISTAKES
from gptref.tokenizers.bpe import train_bpe as _ref_train_bpe
from gptref.data import corpus as _corpus
from gptref.grading.ladders import mistakes_agreeing
from gptref.grading.ladders.d01_bpe import wrong_merges


def _check_train_bpe(text, vocab_size, what):
    """train_bpe in order: a tuple (vocab, merges); the 256 single bytes; vocab[256 + r] made by merge r; no merge
    across pre-tokens; the number of merges; then each merge against gptref's. A failure also names the known
    mistake it matches."""
    got = call(train_bpe, text, vocab_size)
    expected = _ref_train_bpe(text, vocab_size)

    def fail(problem):
        same = lambda a, b: None if (list(a[1]), a[0]) == (list(b[1]), b[0]) else "differs"   # noqa: E731
        known = mistakes_agreeing(train_bpe, MISTAKES["train_bpe"],   # named only if it fits every input
                                  [{"text": t, "vocab_size": n} for t, n, _ in _TRAIN_CASES], same)
        raise AssertionError(f"train_bpe on {what}: {problem}" + which_mistake(
            got, known, {"text": text, "vocab_size": vocab_size}, expected, same))

    if not isinstance(got, tuple) or len(got) != 2 or not isinstance(got[0], dict) or not isinstance(got[1], list):
        fail("return a tuple (vocab, merges): a dict id -> bytes and a list of (bytes, bytes) pairs")
    vocab, merges = got
    if any(vocab.get(i) != bytes([i]) for i in range(256)):
        fail("ids 0..255 must be the single bytes: vocab[i] == bytes([i])")
    for r, merged in enumerate(merges):
        if not (isinstance(merged, tuple) and len(merged) == 2 and all(isinstance(p, bytes) for p in merged)):
            fail(f"merges[{r}] is {merged!r}: each merge is a pair of bytes objects, (vocab[a], vocab[b]), "
                 f"not of ids")
    for r, (a, b) in enumerate(merges):
        if vocab.get(256 + r) != a + b:
            fail(f"vocab[{256 + r}] should hold the bytes made by merge {r}, {a + b!r}; "
                 f"it holds {vocab.get(256 + r)!r}")
    pieces = set(regex.findall(GPT2_SPLIT_PATTERN, text))
    pieces = {p.encode("utf-8") for p in pieces}
    crossing = [a + b for a, b in merges if not any(a + b in p for p in pieces)]
    if crossing:
        fail(f"the merged token {crossing[0]!r} is not inside any GPT2_SPLIT_PATTERN pre-token of the text")
    if len(merges) != len(expected[1]) or len(vocab) != 256 + len(expected[1]):
        fail(f"{len(merges)} merges and {len(vocab)} vocab entries; expected {len(expected[1])} and "
             f"{256 + len(expected[1])} (vocab_size - 256 merges, fewer only when no pair is left)")
    for r, (mine, theirs) in enumerate(zip(merges, expected[1])):
        if tuple(mine) != tuple(theirs):
            fail(wrong_merges(text, merges, expected[1]) or f"merge {r} is {tuple(mine)}, expected {tuple(theirs)}")


_toy = " ".join(["low"] * 5 + ["lower"] * 2 + ["newest"] * 6 + ["widest"] * 3)
_numbers = "In 1599 and 1600, 2024 lines; act3 of 1599 " * 3   # ' 1599' is one pre-token; 'act3' is two
_TRAIN_CASES = [
    (_toy, 256 + 4, "the toy corpus"),             # first merges: st, est, ow, low
    (_numbers, 256 + 12, "a text with numbers"),
    ("a b", 300, "'a b'"),                          # one pair only, and it occurs once
    ("", 260, "the empty text"),
    ("abc abc abd zy zy", 256 + 3, "'abc abc abd zy zy'"),  # a tie: (b'z', b'y') > (b'ab', b'c')
    ("déjà vu — déjà lu — déjà", 256 + 6, "a text with accents and a dash"),  # characters of 2 and 3 bytes
    (_corpus("shakespeare", "train")[:3000], 256 + 20, "3000 characters of Shakespeare"),
]
for _text, _size, _what in _TRAIN_CASES:
    _check_train_bpe(_text, _size, _what)
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("01_bpe", "train_bpe", train_bpe)
### END HIDDEN TESTS
''')

nb.md(r"""
## 4. Encoding and decoding

**Encoding** new text with learned merges replays training, pre-token by pre-token: start from
the bytes, then repeatedly find, among the adjacent pairs present, the one that was merged
**earliest** in training (lowest rank $r$) and merge all its occurrences, until no adjacent pair
is a learned merge. (Applying merges in training order is what makes encode reproduce the
tokens training saw.) The id of a merged token is the id whose bytes are the concatenation.

**Decoding** joins the tokens' bytes and decodes UTF-8 **once**, at the end: a character such as
`é` may be split across two tokens, so decoding token by token would fail. A model can also
produce a sequence that is not valid UTF-8 (say, the first byte of `é` alone); decoding must not
crash, and replaces such bytes by `U+FFFD` (`�`) with `errors="replace"`.

## Exercise 5 — `encode` (2 points)

Write `encode(text, vocab, merges)` returning a list of ids, for `vocab` and `merges` as returned by
training (`vocab[i] == bytes([i])` for `i < 256`). You may not call `gptref.tokenizers.bpe.Tokenizer`.
""")

nb.solution("encode", r'''
def encode(text, vocab, merges):
    """Token ids of text: GPT-2 pre-tokens, each merged by the earliest learned merge first."""
    ### BEGIN SOLUTION
    id_of = {}
    for i in sorted(vocab):
        id_of.setdefault(vocab[i], i)
    rank = {}
    for r, (left, right) in enumerate(merges):
        rank.setdefault((id_of[left], id_of[right]), r)
    ids = []
    for piece in regex.findall(GPT2_SPLIT_PATTERN, text):
        tokens = list(piece.encode("utf-8"))
        while len(tokens) > 1:
            pair = min(zip(tokens, tokens[1:]), key=lambda p: rank.get(p, float("inf")))
            if pair not in rank:
                break
            new_id = id_of[vocab[pair[0]] + vocab[pair[1]]]
            out, i = [], 0
            while i < len(tokens):
                if i + 1 < len(tokens) and (tokens[i], tokens[i + 1]) == pair:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(tokens[i])
                    i += 1
            tokens = out
        ids.extend(tokens)
    return ids
    ### END SOLUTION
''')

nb.tests("test_encode", 2, r'''
from gptref.grading.explain import call, which_mistake
from gptref.grading.ladders import mistakes_agreeing
from gptref.grading.mistakes.d01_bpe import MISTAKES
from gptref.tokenizers.bpe import Tokenizer as _Tokenizer, train_bpe as _ref_train_bpe


def _check_encode(text, vocab, merges):
    """encode in order: a list of ids of the vocabulary; the ids spell the text back; no token spans two
    pre-tokens; then the ids of gptref's Tokenizer. A failure also names the known mistake it matches."""
    got = call(encode, text, vocab, merges)
    expected = _Tokenizer(vocab, merges).encode(text)

    def fail(problem):
        same = lambda a, b: None if list(a) == list(b) else "differs"   # noqa: E731
        known = mistakes_agreeing(encode, MISTAKES["encode"], _ENCODE_CASES, same)
        raise AssertionError(f"encode({text[:30]!r}...): {problem}" + which_mistake(
            got, known, {"text": text, "vocab": vocab, "merges": merges}, expected, same))

    if not isinstance(got, list) or not all(isinstance(i, int) and i in vocab for i in got):
        fail("return a list of int ids, each a key of vocab")
    if b"".join(vocab[i] for i in got) != text.encode("utf-8"):
        fail("the tokens' bytes joined do not spell the text: every byte must be in exactly one token, in order")
    pieces, ends, n = regex.findall(GPT2_SPLIT_PATTERN, text), set(), 0
    for piece in pieces:
        n += len(piece.encode("utf-8"))
        ends.add(n)
    n = 0
    for i in got:
        n += len(vocab[i])
        if any(n - len(vocab[i]) < e < n for e in ends):
            fail(f"the token {vocab[i]!r} spans two GPT2_SPLIT_PATTERN pre-tokens: merge inside each pre-token only")
    learned, n = {tuple(m) for m in merges}, 0
    for left, right in zip(got, got[1:]):
        n += len(vocab[left])
        if n not in ends and (vocab[left], vocab[right]) in learned:
            fail(f"the tokens {vocab[left]!r} and {vocab[right]!r} sit side by side inside one GPT2_SPLIT_PATTERN "
                 f"pre-token, yet ({vocab[left]!r}, {vocab[right]!r}) is a learned merge: split the text with "
                 f"GPT2_SPLIT_PATTERN, then keep merging until no neighbouring pair inside a pre-token is learned")
    if got != expected:
        j = next(k for k, (a, b) in enumerate(zip(got + [None], expected + [None])) if a != b)
        fail(f"token {j} is {vocab.get(got[j]) if j < len(got) else None!r}, expected "
             f"{vocab.get(expected[j]) if j < len(expected) else None!r} (the tokens {[vocab[i] for i in got][:8]}...)")


_toy = " ".join(["low"] * 5 + ["lower"] * 2 + ["newest"] * 6 + ["widest"] * 3)
_vocab, _merges = _ref_train_bpe(_toy, 256 + 10)
_ws_text = "  To be,    or not\n\n\n   to be:\n\n  that is   the question.\t\t\n"
_ws_vocab, _ws_merges = _ref_train_bpe(_ws_text * 20, 256 + 40)
_hand_vocab = {i: bytes([i]) for i in range(256)} | {256: b"bc", 257: b"ab", 258: b"cd", 259: b"abc"}
_hand_vocab_2 = {i: bytes([i]) for i in range(256)} | {256: b"yz", 257: b"xy", 258: b"xyz"}
_utf8_vocab, _utf8_merges = _ref_train_bpe("café déjà naïve — café déjà — é", 256 + 12)
_num_vocab, _num_merges = _ref_train_bpe("In 1599 and 1600, 2024 lines; act3 of 1599 " * 3, 256 + 12)
_ENCODE_CASES = [
    dict(text=" lowest", vocab=_vocab, merges=_merges),                      # [b' low', b'est']
    dict(text="", vocab=_vocab, merges=_merges),                             # no tokens
    dict(text="xyz low low", vocab=_vocab, merges=_merges),  # bytes with no merge; the space joins the next word
    dict(text="Alas,    poor   Yorick!\n\n\n\n  I knew him.", vocab=_ws_vocab, merges=_ws_merges),  # runs of spaces
    # (b, c) has rank 0: a + bc + d
    dict(text="abcd", vocab=_hand_vocab, merges=[(b"b", b"c"), (b"a", b"b"), (b"c", b"d"), (b"ab", b"c")]),
    dict(text="xyz", vocab=_hand_vocab_2, merges=[(b"y", b"z"), (b"x", b"y"), (b"xy", b"z")]),  # (y, z) first: x + yz
    dict(text="the newest lower widest, lowly owls", vocab=_vocab, merges=_merges),
    dict(text="déjà café — naïve é", vocab=_utf8_vocab, merges=_utf8_merges),  # é is 2 UTF-8 bytes, — is 3
    dict(text="page 1599 of act3, 20241600", vocab=_num_vocab, merges=_num_merges),  # a run of digits: one pre-token
]
for _case in _ENCODE_CASES:
    _check_encode(**_case)
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("01_bpe", "encode", encode)
### END HIDDEN TESTS
''')

nb.md(r"""
## Exercise 6 — `decode` (1 point)

Write `decode(ids, vocab)` returning the text; invalid UTF-8 becomes `U+FFFD`, never an exception.
""")

nb.solution("decode", r'''
def decode(ids, vocab):
    """Text of ids: join the tokens' bytes, then decode UTF-8 once (invalid bytes -> U+FFFD)."""
    ### BEGIN SOLUTION
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")
    ### END SOLUTION
''')

nb.tests("test_decode", 1, r'''
from gptref.grading.explain import call, which_mistake
from gptref.grading.ladders import mistakes_agreeing
from gptref.grading.mistakes.d01_bpe import MISTAKES


_vocab = {i: bytes([i]) for i in range(256)}
_vocab[256] = b"he"
_vocab[257] = b"\xc3"  # the first byte of "é" alone
_vocab[258] = b"\xa9!"  # the second byte of "é", then "!"
try:
    decode([104, 0xC3], _vocab)
except UnicodeDecodeError:
    raise AssertionError("invalid UTF-8 must not raise: decode with errors='replace'") from None


def _check_decode(ids, expected):
    """decode(ids) in order: a str, then the text. A failure also names the known mistake it matches."""
    got = call(decode, ids, _vocab)
    if not isinstance(got, str) or got != expected:
        known = mistakes_agreeing(decode, MISTAKES["decode"], [{"ids": i, "vocab": _vocab} for i, _ in _DECODE_CASES])
        raise AssertionError(f"decode({ids}) should be {expected!r}, got {got!r}"
                             + which_mistake(got, known, {"ids": ids, "vocab": _vocab}, expected))


_DECODE_CASES = [  # a known mistake is named only when it gives your answers on all of them
    ([256, 108, 108, 111], "hello"),           # the tokens' bytes in order
    ([256, 257, 258], "heé!"),                 # a character split across two tokens
    ([], ""),
    ([104, 0xC3], "h\ufffd"),                  # an incomplete character becomes U+FFFD
    ([0xE9, 0x21], "\ufffd!"),                 # a byte that no UTF-8 text starts with
]
for _ids, _text in _DECODE_CASES:
    _check_decode(_ids, _text)
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("01_bpe", "decode", decode)
### END HIDDEN TESTS
''')

nb.md(r"""
## 5. Experiments on Shakespeare

We now train on real text: the first 300 000 characters of the training split of our Shakespeare
corpus, and we measure on 50 000 characters of the held-out plays. The cells use the reference
`gptref.tokenizers.bpe` (a faster trainer that updates pair counts incrementally instead of recounting)
so they take a couple of seconds; your `train_bpe` gives the same merges, only more slowly.

**Compression against vocabulary size.** Merges are learned in order, so the tokenizer with
$V$ tokens is the first $V - 256$ merges of a larger one: one training run gives every size.
We report bytes per token on the held-out text (higher means shorter sequences, hence cheaper
attention and a longer effective context, at the price of a larger embedding table).
""")

nb.code(r"""
from gptref.tokenizers.bpe import Tokenizer, train_bpe as ref_train_bpe
from gptref.data import corpus

train_text = corpus("shakespeare", "train")[:300_000]
held_out = corpus("shakespeare", "val")[:50_000]
big_vocab, big_merges = ref_train_bpe(train_text, 256 + 1024)
print("first merges:", big_merges[:12])
print("merges 1000 to 1010:", big_merges[1000:1010])

sizes = [256, 288, 384, 512, 768, 1024, 1280]
n_bytes = len(held_out.encode("utf-8"))
bytes_per_token = []
for size in sizes:
    n_merges = size - 256
    tok = Tokenizer({i: big_vocab[i] for i in range(size)}, big_merges[:n_merges])
    bytes_per_token.append(n_bytes / len(tok.encode(held_out)))
    print(f"vocab {size:5d}: {bytes_per_token[-1]:.2f} bytes per token")
""")

nb.md(r"""
**SentencePiece.** Most non-GPT models (T5, Llama 1–2) tokenize with SentencePiece, which works
on Unicode characters rather than bytes (with optional byte fallback), does no regex
pre-tokenization, and turns spaces into a visible `▁` that starts a word. We train its BPE
on the same text, in-process, with the same vocabulary size, and compare.
""")

nb.code(r"""
import sentencepiece as spm

sp_sizes, sp_bytes_per_token = [512, 1024, 1280], []
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "train.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(train_text)
    for size in sp_sizes:
        spm.SentencePieceTrainer.train(input=path, model_prefix=os.path.join(tmp, f"sp{size}"), vocab_size=size,
                                       model_type="bpe", character_coverage=1.0, byte_fallback=True,
                                       minloglevel=2)
        sp = spm.SentencePieceProcessor(model_file=os.path.join(tmp, f"sp{size}.model"))
        sp_bytes_per_token.append(n_bytes / len(sp.encode(held_out)))
        print(f"vocab {size:5d}: SentencePiece {sp_bytes_per_token[-1]:.2f}, "
              f"gptref {bytes_per_token[sizes.index(size)]:.2f} bytes per token")

fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(sizes, bytes_per_token, "o-", label="byte-level BPE (GPT-2 style, gptref)")
ax.plot(sp_sizes, sp_bytes_per_token, "s--", label="SentencePiece BPE")
ax.set(xlabel="vocabulary size", ylabel="bytes per token (held-out plays)", title="compression against vocabulary size")
ax.legend()
fig.tight_layout()
plt.savefig("bpe_compression.png", dpi=100)
plt.show()

line = "  CASSIUS. Why, man, he doth bestride the narrow world\nLike a Colossus!"
ours = Tokenizer(big_vocab, big_merges)
print("gptref BPE   :", [big_vocab[i].decode("utf-8", "replace") for i in ours.encode(line)])
print("SentencePiece:", sp.encode(line, out_type=str))
print("round trip   : gptref", ours.decode(ours.encode(line)) == line,
      "| SentencePiece", sp.decode(sp.encode(line)) == line)
""")

nb.md(r"""
What to see. Compression rises quickly for the first few hundred merges (common words and
endings such as ` the`, ` and`, `ing`) and then more slowly (each further merge is rarer). Token
by token, the two tokenizers agree on many common words but differ in how they handle spaces:
GPT-2's pre-tokens attach a space to the *following* word (` world`), SentencePiece writes it as
`▁world`. By default SentencePiece also normalizes whitespace: the two leading spaces are dropped
(compare the first tokens of the two printed lists), and the newline becomes a space (where ours
print `'\n'`, its tokens show only the `▁` that starts the next word, `Like`), so its round trip is
not exact (the last printed line: False), while byte-level BPE reproduces every byte. Compare the
two printed bytes-per-token rows at equal vocabulary sizes: where SentencePiece compresses more,
part of the reason is that it spends no tokens on the newlines and
indentation it threw away, and its base symbols are whole characters rather than bytes.
""")

nb.written("q_tokenizers", 1, r"""
**Question.** Give two reasons why GPT-2 pre-tokenizes with a regular expression before
learning merges, and one consequence of doing so that you can see in the token lists above.
Then explain why a byte-level tokenizer never needs an "unknown" token, while a character-level
one with a fixed alphabet does.
""", answer=r"""
Pre-tokenization stops merges from crossing word/punctuation/digit boundaries, so the vocabulary
is not spent on accidental combinations such as "dog." / "dog!" / "dog?" or "e t", and merges stay
reusable across contexts; it also makes training fast because identical pre-tokens are counted
once. A visible consequence: spaces belong to the following word (" world"), so "world" at the
start of a line and " world" are different tokens, and no token spans two words. A byte-level
tokenizer starts from all 256 byte values, and every string is a sequence of bytes, so any input
(including unseen scripts or emoji) can be spelled with the base tokens; a character-level
alphabet fixed from the training text cannot represent a character it never saw.
""")

nb.md(r"""
## Summary

* Cleaning comes first: strip the Gutenberg header and licence, normalize newlines, trailing
  whitespace and blank runs — otherwise the model learns boilerplate.
* Byte-level BPE starts from the 256 bytes and repeatedly merges the most frequent adjacent pair;
  GPT-2 pre-tokenizes with a regex and never merges across pre-tokens; ties are broken by the
  greatest pair so that training is deterministic.
* Encoding replays the merges in training order inside each pre-token; decoding joins the bytes
  and decodes UTF-8 once, replacing invalid bytes by U+FFFD.
* A larger vocabulary gives fewer tokens per byte, with diminishing returns; SentencePiece's BPE
  compresses similarly but treats spaces and normalization differently.
""")

nb.save()
