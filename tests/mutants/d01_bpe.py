"""Planted mistakes for 01_bpe."""

from tests.mutants import Mutant

MUTANTS = [
    Mutant(
        cell="pair_counts",
        old="for pair in zip(ids, ids[1:]):",
        new="for pair in [(ids[i], ids[i + 1]) for i in range(len(ids) - 2)]:",
        fails={"test_pair_counts"},
        why="the loop stops one pair early (fresh set 9, A-01-6)",
        hint="the last pair (ids[-2], ids[-1]) was not counted",
    ),
    Mutant(
        cell="clean_gutenberg",
        old='line = line.rstrip(" \\t")',
        new="line = line",
        fails={"test_clean_gutenberg"},
        why="keeps trailing spaces",
        hint="remove trailing spaces",
    ),
    Mutant(
        cell="clean_gutenberg",
        old="lines = lines[i + 1:]",
        new="lines = lines[i:]",
        fails={"test_clean_gutenberg"},
        why="keeps the *** START OF ... *** line",
        hint="the header (everything up to and including the *** START OF",
    ),
    Mutant(
        cell="clean_gutenberg",
        old='.replace("\\r\\n", "\\n").replace("\\r", "\\n")',
        new="",
        fails={"test_clean_gutenberg"},
        why="leaves Windows line endings",
        hint="(and lone",
    ),
    Mutant(
        cell="clean_gutenberg",
        old='if line == "" and (not kept or kept[-1] == ""):',
        new='if line == "" and not kept:',
        fails={"test_clean_gutenberg"},
        why="keeps runs of blank lines",
        hint="collapse runs of blank lines",
    ),
    Mutant(
        cell="pair_counts",
        old="zip(ids, ids[1:])",
        new="zip(ids[::2], ids[1::2])",
        fails={"test_pair_counts"},
        why="counts only non-overlapping pairs at even positions",
        hint="you counted only the pairs at even positions",
    ),
    Mutant(
        cell="merge",
        old="i += 2",
        new="i += 1",
        fails={"test_merge"},
        why="reuses the second id of a merged pair",
        hint="skip BOTH of its ids",
    ),
    Mutant(
        cell="merge",
        old="while i < len(ids):",
        new="while i < len(ids) - 1:",
        fails={"test_merge"},
        why="drops the last id",
        hint="the last id went missing",
    ),
    Mutant(
        cell="merge",
        old="ids[i] == pair[0] and ids[i + 1] == pair[1]",
        new="{ids[i], ids[i + 1]} == set(pair)",
        fails={"test_merge"},
        why="matches the pair in either order (fresh set 8, A-01-11)",
        hint="a pair is ordered, (left, right)",
    ),
    Mutant(
        cell="train_bpe",
        old="key=lambda p: (counts[p], vocab[p[0]], vocab[p[1]])",
        new="key=lambda p: counts[p]",
        fails={"test_train_bpe"},
        why="breaks ties by first occurrence instead of the greatest pair",
        hint="ties go to the greatest pair",
    ),
    Mutant(
        cell="train_bpe",
        old='words = Counter(tuple(w.encode("utf-8")) for w in regex.findall(GPT2_SPLIT_PATTERN, text))',
        new='words = Counter([tuple(text.encode("utf-8"))])',
        fails={"test_train_bpe"},
        why="no pre-tokenization: merges cross word boundaries",
        hint="a merge crosses a word boundary",
    ),
    Mutant(
        cell="train_bpe",
        old="for new_id in range(256, vocab_size):",
        new="for new_id in range(256, vocab_size + 1):",
        fails={"test_train_bpe"},
        why="one merge too many (vocab_size counts the 256 bytes)",
        hint="vocab_size 260 means 4 merges",
    ),
    Mutant(
        cell="encode",
        old='key=lambda p: rank.get(p, float("inf"))',
        new="key=lambda p: -rank.get(p, -1)",
        fails={"test_encode"},
        why="applies the latest merge first",
        hint="apply the merges in training order",
    ),
    Mutant(
        cell="encode",
        old="for piece in regex.findall(GPT2_SPLIT_PATTERN, text):",
        new="for piece in [text]:",
        fails={"test_encode"},
        why="no pre-tokenization",
        hint="split the text into GPT2_SPLIT_PATTERN pre-tokens first",
    ),
    Mutant(
        cell="decode",
        old='b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")',
        new='"".join(vocab[i].decode("utf-8", errors="replace") for i in ids)',
        fails={"test_decode"},
        why="decodes token by token: splits characters",
        hint="join all bytes first, then decode once",
    ),
    Mutant(
        cell="decode",
        old=', errors="replace"',
        new="",
        fails={"test_decode"},
        why="raises on invalid UTF-8",
        hint="invalid UTF-8 must not raise",
    ),
    # mistakes students make that the ladders must name (gptref/grading/mistakes/d01_bpe.py)
    Mutant(
        cell="clean_gutenberg",
        old="lines = lines[:i]",
        new="lines = lines[:i + 1]",
        fails={"test_clean_gutenberg"},
        why="keeps the first footer line",
        hint="the footer starts at that line",
    ),
    Mutant(
        cell="pair_counts",
        old="counts[pair] = counts.get(pair, 0) + 1",
        new="counts[pair] = 1",
        fails={"test_pair_counts"},
        why="records which pairs occur, not how often",
        hint="you recorded which pairs occur, not how often",
    ),
    Mutant(
        cell="merge",
        old="if i + 1 < len(ids) and ids[i] == pair[0]",
        new="if ids[i] == pair[0]",
        fails={"test_merge"},
        why="reads past the end of ids at the last position",
        hint="an index reached past the end",
    ),
    Mutant(
        cell="train_bpe",
        old="        if not counts:\n            break",
        new="        if not counts or max(counts.values()) < 2:\n            break",
        fails={"test_train_bpe"},
        why="stops when the best pair occurs once",
        hint="merge even a pair that occurs once",
    ),
    Mutant(
        cell="encode",
        old='pair = min(zip(tokens, tokens[1:]), key=lambda p: rank.get(p, float("inf")))',
        new="pair = next((p for p in zip(tokens, tokens[1:]) if p in rank), None)",
        fails={"test_encode"},
        why="merges the leftmost learned pair first",
        hint="merge the leftmost learned pair first: apply the merges in training order",
    ),
    Mutant(
        cell="decode",
        old=', errors="replace"',
        new=', errors="ignore"',
        fails={"test_decode"},
        why="drops invalid bytes instead of U+FFFD",
        hint="not vanish",
    ),
    # issue 23: wrong answers written as a new student, before reading the mistakes (each names its mistake)
    Mutant(
        cell="clean_gutenberg",
        old='line = line.rstrip(" \\t")',
        new="line = line.strip()",
        fails={"test_clean_gutenberg"},
        why="strips the leading spaces of a line too",
        hint="only TRAILING spaces and tabs go",
    ),
    Mutant(
        cell="clean_gutenberg",
        old='.replace("\\r", "\\n")',
        new="",
        fails={"test_clean_gutenberg"},
        why="turns \\r\\n into \\n but leaves a lone \\r",
        hint="(an old Mac line end)",
    ),
    Mutant(
        cell="clean_gutenberg",
        old="START OF (THE|THIS) PROJECT",
        new="START OF THIS PROJECT",
        fails={"test_clean_gutenberg"},
        why="recognises only the START OF THIS form of the marker",
        hint="files also write START OF THE PROJECT GUTENBERG",
    ),
    Mutant(
        cell="pair_counts",
        old="for pair in zip(ids, ids[1:]):",
        new="for pair in ((ids[i], ids[i + 1]) for i in range(len(ids))):",
        fails={"test_pair_counts"},
        why="an index loop that runs one past the last pair",
        hint="an index reached past the end",
    ),
    Mutant(
        cell="merge",
        old="out, i = [], 0\n    while i < len(ids):\n        if i + 1 < len(ids) and ids[i] == pair[0] and "
        "ids[i + 1] == pair[1]:\n            out.append(new_id)\n            i += 2\n        else:\n"
        "            out.append(ids[i])\n            i += 1\n    return out",
        new="i = 0\n    while i < len(ids) - 1:\n        if ids[i] == pair[0] and ids[i + 1] == pair[1]:\n"
        "            ids[i:i + 2] = [new_id]\n        i += 1\n    return ids",
        fails={"test_merge"},
        why="merges in place, in the input list",
        hint="leave ids as it is",
    ),
    Mutant(
        cell="train_bpe",
        old="key=lambda p: (counts[p], vocab[p[0]], vocab[p[1]])",
        new="key=lambda p: (counts[p], p)",
        fails={"test_train_bpe"},
        why="breaks ties by the pair of ids instead of the pair of bytes",
        hint="ties go to the greatest pair of bytes",
    ),
    Mutant(
        cell="train_bpe",
        old="counts[pair] = counts.get(pair, 0) + freq",
        new="counts[pair] = counts.get(pair, 0) + 1",
        fails={"test_train_bpe"},
        why="counts each distinct pre-token once, whatever its frequency",
        hint="count each distinct pre-token once",
    ),
    Mutant(
        cell="encode",
        old='tokens = list(piece.encode("utf-8"))',
        new="tokens = [ord(c) for c in piece]",
        fails={"test_encode"},
        why="starts from code points instead of UTF-8 bytes",
        hint="start from the characters' code points",
    ),
    Mutant(
        cell="decode",
        old='b"".join(vocab[i] for i in ids)',
        new="bytes(ids)",
        fails={"test_decode"},
        why="bytes(ids): treats the ids as bytes, ignoring the vocabulary",
        hint="an id above 255 is a merged token",
    ),
    # issue 23, second set (written after the fixes, then each fixed to name its mistake)
    Mutant(
        cell="clean_gutenberg",
        old="|^\\s*End of (the )?Project Gutenberg",
        new="",
        fails={"test_clean_gutenberg"},
        why="finds the footer only by its *** END OF line",
        hint="find the footer only by its *** END OF line",
    ),
    Mutant(
        cell="merge",
        old="if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:",
        new="if ids[i:i + 2] == pair:",
        fails={"test_merge"},
        why="compares a list slice with the pair tuple",
        hint="nothing was replaced at all",
    ),
    Mutant(
        cell="train_bpe",
        old="merges.append((vocab[a], vocab[b]))",
        new="merges.append((a, b))",
        fails={"test_train_bpe"},
        why="merges hold ids instead of bytes",
        hint="each merge is a pair of bytes objects",
    ),
    Mutant(
        cell="encode",
        old="for piece in regex.findall(GPT2_SPLIT_PATTERN, text):",
        new='for piece in regex.findall(r"\\w+|\\W", text):',
        fails={"test_encode"},
        why="pre-tokenizes with a regex of its own, \\w+|\\W (equal to the known \\p{L}+ pattern on ' lowest' only: "
            "since issue 23 a mistake is named only when it equals the answer on every visible input, so it has its "
            "own)",
        hint="cuts every space and punctuation mark into a piece of its own",
    ),
    # issue 23, third set: the student's own pre-tokenizing regex instead of GPT2_SPLIT_PATTERN
    Mutant(cell="train_bpe", old="regex.findall(GPT2_SPLIT_PATTERN, text))",
           new=r"""regex.findall(r"'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}+|[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", text))""",
           fails={"test_train_bpe"}, why="own pattern without the leading spaces",
           hint="leaves the space out of the word"),
    Mutant(cell="train_bpe", old="regex.findall(GPT2_SPLIT_PATTERN, text))", new=r"""regex.findall(r"\w+", text))""",
           fails={"test_train_bpe"}, why="pre-tokens are \\w+ only", hint="pre-tokenize with \\w+ alone"),
    Mutant(cell="train_bpe", old="regex.findall(GPT2_SPLIT_PATTERN, text))",
           new=r"""regex.findall(r" ?\w+| ?[^\w\s]+|\s+", text))""",
           fails={"test_train_bpe"}, why="own pattern built on \\w", hint="put letters and digits into one pre-token"),
    Mutant(cell="train_bpe", old="regex.findall(GPT2_SPLIT_PATTERN, text))",
           new=r"""regex.findall(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}"""
               r"""| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", text))""",
           fails={"test_train_bpe"}, why="one digit per pre-token", hint="pre-tokens of ONE digit"),
    Mutant(cell="train_bpe", old="regex.findall(GPT2_SPLIT_PATTERN, text))",
           new=r"""regex.findall(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}{1,3}"""
               r"""| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", text))""",
           fails={"test_train_bpe"}, why="digits in groups of three", hint="groups of three"),
    Mutant(cell="train_bpe", old="regex.findall(GPT2_SPLIT_PATTERN, text))",
           new=r"""regex.findall(r"'s|'t|'re|'ve|'m|'ll|'d| ?[\p{L}\p{N}]+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", text))""",
           fails={"test_train_bpe"}, why="letters and digits in one pre-token",
           hint="put letters and digits into one pre-token"),
    Mutant(cell="encode", old="regex.findall(GPT2_SPLIT_PATTERN, text):", new=r"""regex.findall(r"\w+", text):""",
           fails={"test_encode"}, why="encode pre-tokenizes with \\w+", hint="pre-tokenize with \\w+ alone"),
    Mutant(cell="encode", old="regex.findall(GPT2_SPLIT_PATTERN, text):",
           new=r"""regex.findall(r"'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}+|[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", text):""",
           fails={"test_encode"}, why="encode without the leading spaces", hint="leaves the space out of the word"),
    Mutant(cell="encode", old="regex.findall(GPT2_SPLIT_PATTERN, text):",
           new=r"""regex.findall(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}"""
               r"""| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", text):""",
           fails={"test_encode"}, why="encode: one digit per pre-token", hint="pre-tokens of ONE digit"),
    Mutant(cell="train_bpe", old="key=lambda p: (counts[p], vocab[p[0]], vocab[p[1]])",
           new="key=lambda p: (counts[p], vocab[p[1]], vocab[p[0]])", fails={"test_train_bpe"},
           why="issue 23: ties compare the right token's bytes first (found by no known mistake)",
           hint="when the right token's bytes are compared first"),
]

# Issue 23, fresh set 6: the byte-order mark kept, and code points where bytes belong (caught only by hidden tests).
MUTANTS += [
    Mutant("clean_gutenberg", old='raw.lstrip("\\ufeff")', new="raw",
           fails={"test_clean_gutenberg"}, why="the byte-order mark is kept", hint="drop the byte-order mark"),
    Mutant("train_bpe", old='tuple(w.encode("utf-8"))', new="tuple(ord(ch) for ch in w)",
           fails={"test_train_bpe"}, why="code points instead of UTF-8 bytes", hint="it is the code point of"),
]

# Issue 23, fresh set 10: one merge per pre-token (an if where a while belongs).
MUTANTS += [
    Mutant(cell="encode", old="while len(tokens) > 1:", new="if len(tokens) > 1:",
           fails={"test_encode"}, why="one merge per pre-token (C-01-15)",
           hint="apply at most one merge per pre-token"),
]

# Issue 23, fresh set 11: the blank lines at the end kept.
MUTANTS += [
    Mutant(cell="clean_gutenberg", old='    while kept and kept[-1] == "":\n        kept.pop()\n', new="",
           fails={"test_clean_gutenberg"}, why="blank lines at the end kept (A-01-4)",
           hint="drop the blank lines at the end too"),
]

# Issue 23, fresh set 12: the last two ids never tested as a pair.
MUTANTS += [
    Mutant(cell="merge", old="if i + 1 < len(ids) and", new="if i + 2 < len(ids) and",
           fails={"test_merge"}, why="the last pair is never tested (B-01-9)",
           hint="never test the last two ids as a pair"),
]

# Issue 23, fresh set 13: a new pair's count started at 1.
MUTANTS += [
    Mutant(cell="pair_counts", old="counts[pair] = counts.get(pair, 0) + 1",
           new="counts[pair] = counts.get(pair, 1) + 1",
           fails={"test_pair_counts"}, why="a new pair counted twice (A-01-05)", hint="start a new pair's count at 1"),
]
