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

from gptref.bpe import GPT2_SPLIT_PATTERN
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
`"  I\nFrom fairest creatures we desire increase,\nThat thereby beauty's rose might never die,\n\n  II\nWhen forty winters shall besiege thy brow,\n"`
(note the leading spaces of `  I` stay: only *trailing* whitespace goes).
""")

nb.solution("clean_gutenberg", r'''
def clean_gutenberg(raw):
    """The work inside a Project Gutenberg file: no header or licence, tidy newlines and blanks."""
    ### BEGIN SOLUTION
    text = raw.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    start = regex.compile(r"\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG", regex.IGNORECASE)
    end = regex.compile(r"\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG|^\s*End of (the )?Project Gutenberg", regex.IGNORECASE)
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
_clean = clean_gutenberg(raw_example)
assert isinstance(_clean, str), f"return a str, got {type(_clean).__name__}"
assert "\r" not in _clean, "turn \\r\\n (and lone \\r) into \\n"
assert "Gutenberg" not in _clean and "START OF" not in _clean, \
    "the header (everything up to and including the *** START OF ... *** line) must go"
assert "End of" not in _clean and "Terms of Use" not in _clean, "the footer (from 'End of the Project Gutenberg' on) must go"
assert "\ufeff" not in _clean, "drop the byte-order mark \\ufeff at the start"
assert not any(_l != _l.rstrip(" \t") for _l in _clean.split("\n")), "remove trailing spaces and tabs from every line"
assert "\n\n\n" not in _clean, "collapse runs of blank lines into one blank line (a line holding only spaces is blank too)"
assert _clean.startswith("  I\n"), f"drop the blank lines at the start, keep leading spaces: the text starts {_clean[:12]!r}"
assert _clean.endswith("brow,\n") and not _clean.endswith("\n\n"), "end with exactly one newline"
assert _clean == ("  I\nFrom fairest creatures we desire increase,\nThat thereby beauty's rose might never die,\n"
                  "\n  II\nWhen forty winters shall besiege thy brow,\n"), f"got {_clean!r}"
assert clean_gutenberg("No header here.  \nSecond line.") == "No header here.\nSecond line.\n", \
    "a text without markers is only tidied"
assert clean_gutenberg("\n \n\n") == "", "a text with nothing in it becomes the empty string"
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

Each merge shortens the sequence by the pair's count, so a vocabulary of $V$ tokens is $V - 256$
merges. Scanning left to right matters when a pair overlaps itself: merging $(7, 7)$ in
$7\,7\,7$ gives $n\,7$ (the first two), not $7\,n$; the pair *count* of $7\,7\,7$ is 2 (overlaps count).
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
_c = pair_counts([1, 2, 3, 1, 2])
assert isinstance(_c, dict), f"return a dict, got {type(_c).__name__}"
assert _c != {(1, 2): 1, (3, 1): 1}, "you counted only the pairs at even positions (ids[0::2] with ids[1::2]): every neighbouring pair counts, zip(ids, ids[1:])"
assert (2, 3) in _c and (3, 1) in _c, "overlapping pairs all count: every neighbouring pair (ids[i], ids[i + 1]), zip(ids, ids[1:])"
assert _c == {(1, 2): 2, (2, 3): 1, (3, 1): 1}, f"pair_counts([1, 2, 3, 1, 2]) should be {{(1, 2): 2, (2, 3): 1, (3, 1): 1}}, got {_c}"
assert pair_counts([7, 7, 7]) == {(7, 7): 2}, "overlapping pairs all count: [7, 7, 7] holds (7, 7) twice"
assert pair_counts([]) == {} and pair_counts([5]) == {}, "fewer than two ids hold no pair"
_ids = list("abracadabra".encode())
assert pair_counts(_ids)[(ord("a"), ord("b"))] == 2, "count pairs of neighbouring ids, in order (a, b) is not (b, a)"
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
_m = merge([1, 2, 3, 1, 2], (1, 2), 256)
assert isinstance(_m, list), f"return a list, got {type(_m).__name__}"
assert _m != [256, 2, 3, 256, 2], "after replacing a pair by new_id, skip BOTH of its ids (i += 2): you kept the second one"
assert _m == [256, 3, 256], f"merge([1, 2, 3, 1, 2], (1, 2), 256) should be [256, 3, 256], got {_m}"
assert merge([1, 2, 5], (1, 2), 9) == [9, 5], "the last id went missing: keep every id that is not part of a merge, the last one too"
assert merge([7, 7, 7], (7, 7), 300) == [300, 7], "scan left to right: [7, 7, 7] with (7, 7) gives [300, 7]"
assert merge([7, 7, 7, 7], (7, 7), 300) == [300, 300], "after a merge, continue after the merged pair"
assert merge([1, 2], (2, 1), 9) == [1, 2], "the order inside the pair matters"
assert merge([1, 2, 1], (1, 2), 9) == [9, 1], "keep the ids that are not part of a merge, including the last one"
_orig = [4, 5, 4, 5]
merge(_orig, (4, 5), 9)
assert _orig == [4, 5, 4, 5], "return a new list; do not change the input"
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
bytes: `(vocab[a], vocab[b])` as a tuple of `bytes`. This is the rule of `gptref.bpe.train_bpe`.

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
You may not call `gptref.bpe.train_bpe`.
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
_toy = " ".join(["low"] * 5 + ["lower"] * 2 + ["newest"] * 6 + ["widest"] * 3)
_res = train_bpe(_toy, 256 + 4)
assert isinstance(_res, tuple) and len(_res) == 2, "return a tuple (vocab, merges)"
_vocab, _merges = _res
assert isinstance(_merges, list) and len(_merges) == 4, f"vocab_size 260 means 4 merges, got {len(_merges) if isinstance(_merges, list) else _merges}"
assert all(_vocab[_i] == bytes([_i]) for _i in range(256)), "ids 0..255 must be the single bytes"
assert len(_vocab) == 260, f"vocab must hold 256 bytes + 4 merged tokens, got {len(_vocab)} entries"
assert _merges[0] != (b"e", b"s"), "(e, s) and (s, t) both occur 9 times: ties go to the greatest pair, (b's', b't')"
assert _merges[0] == (b"s", b"t"), f"the first merge of the toy corpus is (b's', b't'), got {_merges[0]}"
assert _merges[1] == (b"e", b"st"), f"the second merge is (b'e', b'st'): merged tokens take part in later pairs; got {_merges[1]}"
assert all(b" " not in _a + _b or (_a + _b).startswith(b" ") and b" " not in (_a + _b)[1:] for _a, _b in _merges), \
    f"a merge crosses a word boundary ({_merges}): split the text into GPT2_SPLIT_PATTERN pre-tokens first and count pairs inside each"
assert _merges[2:] == [(b"o", b"w"), (b"l", b"ow")], f"merges 3 and 4 should be (o, w) then (l, ow), got {_merges[2:]}"
assert _vocab[256] == b"st" and _vocab[257] == b"est", "vocab[256 + r] holds the bytes made by merge r"
_v2, _m2 = train_bpe("a b", 300)
assert (b"a", b" ") not in _m2, "never merge across pre-tokens: \"a b\" is the pre-tokens 'a' and ' b'"
assert _m2 == [(b" ", b"b")], f"stop when no pair is left: \"a b\" allows exactly one merge, (b' ', b'b'); got {_m2}"
from gptref.data import corpus as _corpus
from gptref.bpe import train_bpe as _ref_train_bpe
_text = _corpus("shakespeare", "train")[:3000]
_got = train_bpe(_text, 256 + 20)
assert _got[1] == _ref_train_bpe(_text, 256 + 20)[1], "on 3000 characters of Shakespeare your merges differ from gptref's"
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
training (`vocab[i] == bytes([i])` for `i < 256`). You may not call `gptref.bpe.Tokenizer`.
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
from gptref.bpe import Tokenizer as _Tokenizer, train_bpe as _ref_train_bpe
_toy = " ".join(["low"] * 5 + ["lower"] * 2 + ["newest"] * 6 + ["widest"] * 3)
_vocab, _merges = _ref_train_bpe(_toy, 256 + 10)
_ids = encode(" lowest", _vocab, _merges)
assert isinstance(_ids, list) and all(isinstance(_i, int) for _i in _ids), "return a list of int ids"
assert [_vocab[_i] for _i in _ids] == [b" low", b"est"], \
    f"' lowest' should encode to the tokens [b' low', b'est'], got {[_vocab.get(_i) for _i in _ids]}"
assert encode("", _vocab, _merges) == [], "the empty text has no tokens"
assert encode("xyz", _vocab, _merges) == [120, 121, 122], "bytes with no learned merge stay single-byte ids"
assert [_vocab[_i] for _i in encode("low low", _vocab, _merges)] == [b"low", b" low"], \
    "pre-tokenize with GPT2_SPLIT_PATTERN first: the space belongs to the next word"
_ws_vocab, _ws_merges = _ref_train_bpe("  To be,    or not\n\n\n   to be:\n\n  that is   the question.\t\t\n" * 20, 256 + 40)
_t = "Alas,    poor   Yorick!\n\n\n\n  I knew him."
assert encode(_t, _ws_vocab, _ws_merges) == _Tokenizer(_ws_vocab, _ws_merges).encode(_t), \
    "split the text into GPT2_SPLIT_PATTERN pre-tokens first and merge inside each one only (runs of spaces are pre-tokens of their own)"
_hand_vocab = {i: bytes([i]) for i in range(256)} | {256: b"yz", 257: b"xy", 258: b"xyz"}
_hand_merges = [(b"y", b"z"), (b"x", b"y"), (b"xy", b"z")]
assert encode("xyz", _hand_vocab, _hand_merges) == [ord("x"), 256], \
    "apply the merges in training order: (y, z) has rank 0, so 'xyz' becomes x + yz, even though (x, y) comes first in the text"
_text = "the newest lower widest, lowly owls"
assert encode(_text, _vocab, _merges) == _Tokenizer(_vocab, _merges).encode(_text), \
    "apply the merges in training order (lowest rank first), not in the order the pairs appear"
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
_vocab = {i: bytes([i]) for i in range(256)}
_vocab[256] = b"he"
_vocab[257] = b"\xc3"  # the first byte of "é" alone
_vocab[258] = b"\xa9!"  # the second byte of "é", then "!"
assert decode([256, 108, 108, 111], _vocab) == "hello", "join the bytes of the tokens in order"
_d = decode([256, 257, 258], _vocab)
assert _d == "heé!", f"a character may be split across tokens: join all bytes first, then decode once; got {_d!r}"
assert decode([], _vocab) == "", "no ids: the empty string"
try:
    _bad = decode([104, 0xC3], _vocab)
except UnicodeDecodeError:
    raise AssertionError("invalid UTF-8 must not raise: decode with errors='replace'") from None
assert _bad == "h\ufffd", f"an incomplete character becomes U+FFFD, got {_bad!r}"
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("01_bpe", "decode", decode)
### END HIDDEN TESTS
''')

nb.md(r"""
## 5. Experiments on Shakespeare

We now train on real text: the first 300 000 characters of the training split of our Shakespeare
corpus, and we measure on 50 000 characters of the held-out plays. The cells use the reference
`gptref.bpe` (a faster trainer that updates pair counts incrementally instead of recounting)
so they take a couple of seconds; your `train_bpe` gives the same merges, only more slowly.

**Compression against vocabulary size.** Merges are learned in order, so the tokenizer with
$V$ tokens is the first $V - 256$ merges of a larger one: one training run gives every size.
We report bytes per token on the held-out text (higher means shorter sequences, hence cheaper
attention and a longer effective context, at the price of a larger embedding table).
""")

nb.code(r"""
from gptref.bpe import Tokenizer, train_bpe as ref_train_bpe
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
print("round trip   : gptref", ours.decode(ours.encode(line)) == line, "| SentencePiece", sp.decode(sp.encode(line)) == line)
""")

nb.md(r"""
What to see. Compression rises quickly for the first few hundred merges (common words and
endings such as ` the`, ` and`, `ing`) and then more slowly (each further merge is rarer). Token
by token, the two tokenizers agree on many common words but differ in how they handle spaces:
GPT-2's pre-tokens attach a space to the *following* word (` world`), SentencePiece writes it as
`▁world`. By default SentencePiece also normalizes whitespace — runs of spaces and the newline
disappear — so its round trip is not exact, while byte-level BPE reproduces every byte. That is
also part of why SentencePiece's bytes-per-token looks better at large vocabularies: it does not
spend tokens on the newlines and indentation it threw away, and its base symbols are whole
characters rather than bytes.
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
