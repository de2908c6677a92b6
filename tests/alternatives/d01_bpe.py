"""Day 1 written another way: regular expressions for cleaning, a heap-free but rank-driven encoder,
training that recounts with collections.Counter."""
import re
from collections import Counter

import regex

from gptref.tokenizers.bpe import GPT2_SPLIT_PATTERN

_START = re.compile(r"\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG", re.IGNORECASE)
_END = re.compile(r"\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG|^\s*End of (the )?Project Gutenberg", re.IGNORECASE)


def clean_gutenberg(raw):
    text = re.sub(r"\r\n?", "\n", raw[1:] if raw.startswith("\ufeff") else raw)
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if _START.search(line)]
    if starts:
        lines = lines[starts[0] + 1:]
    ends = [i for i, line in enumerate(lines) if _END.search(line)]
    if ends:
        lines = lines[:ends[0]]
    body = "\n".join(line.rstrip(" \t") for line in lines)
    body = re.sub(r"\n{3,}", "\n\n", body).strip("\n")
    return body + "\n" if body else ""


def _replace(word, a, b, new_id):
    out, i = [], 0
    while i < len(word):
        if word[i:i + 2] == [a, b]:
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def train_bpe(text, vocab_size):
    words = Counter(regex.findall(GPT2_SPLIT_PATTERN, text))
    seqs = {w: list(w.encode("utf-8")) for w in words}
    vocab = {i: bytes([i]) for i in range(256)}
    merges = []
    while len(vocab) < vocab_size:
        counts = Counter()
        for w, freq in words.items():
            s = seqs[w]
            for i in range(len(s) - 1):
                counts[s[i], s[i + 1]] += freq
        if not counts:
            break
        top = max(counts.values())
        a, b = max((p for p, c in counts.items() if c == top), key=lambda p: (vocab[p[0]], vocab[p[1]]))
        new_id = len(vocab)
        vocab[new_id] = vocab[a] + vocab[b]
        merges.append((vocab[a], vocab[b]))
        seqs = {w: _replace(s, a, b, new_id) for w, s in seqs.items()}
    return vocab, merges


def encode(text, vocab, merges):
    by_bytes = {}
    for i in sorted(vocab, reverse=True):
        by_bytes[vocab[i]] = i  # the smallest id wins for equal bytes
    out = []
    for piece in regex.findall(GPT2_SPLIT_PATTERN, text):
        parts = [bytes([b]) for b in piece.encode("utf-8")]
        for left, right in merges:  # each merge in training order, applied everywhere at once
            merged, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == left and parts[i + 1] == right:
                    merged.append(left + right)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        out.extend(by_bytes[p] for p in parts)
    return out


def decode(ids, vocab):
    data = bytearray()
    for i in ids:
        data += vocab[i]
    return bytes(data).decode("utf-8", "replace")
