"""Pre-tokenization: cut text into special tokens and GPT-2 pre-tokens before any BPE merge.

BPE never merges across the pieces made here, so this file fixes what a token can be.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence

import regex

# The regex GPT-2 uses, as released in openai/gpt-2 encoder.py (tiktoken's r50k_pat_str is an
# equivalent rewrite; tests/test_bpe.py checks that they split alike):
# contractions, an optional space + letters, an optional space + digits, an optional space +
# other symbols, whitespace not followed by a non-space, any other whitespace.
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

_GPT2_SPLIT = regex.compile(GPT2_SPLIT_PATTERN)


def check_special_tokens(special_tokens: Sequence[str] | None) -> list[str]:
    """Validate special tokens (a sequence of distinct non-empty str) and return them as a list."""
    if special_tokens is None:
        return []
    if isinstance(special_tokens, (str, bytes)):
        raise ValueError(
            f"special_tokens must be a sequence of strings, not a single {type(special_tokens).__name__} "
            f"{special_tokens!r}; wrap it in a list"
        )
    tokens = list(special_tokens)
    for t in tokens:
        if not isinstance(t, str) or not t:
            raise ValueError(f"special_tokens must hold non-empty strings, got {t!r}")
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"special_tokens has duplicates: {tokens!r}")
    return tokens


def special_splitter(special_tokens: Sequence[str]) -> regex.Pattern | None:
    """A regex that captures any special token, longest first (so overlapping ones: longest wins)."""
    if not special_tokens:
        return None
    alternatives = sorted(special_tokens, key=len, reverse=True)
    return regex.compile("(" + "|".join(regex.escape(t) for t in alternatives) + ")")


def split_on_specials(text: str, splitter: regex.Pattern | None) -> list[str]:
    """[chunk, special, chunk, special, ..., chunk]: odd positions are the special tokens."""
    return [text] if splitter is None else splitter.split(text)


def pretokenize(text: str) -> list[str]:
    """The GPT-2 pre-tokens of text (which must hold no special tokens)."""
    return _GPT2_SPLIT.findall(text)


def count_pretokens(text: str, special_tokens: Sequence[str] = ()) -> Counter[bytes]:
    """How often each pre-token occurs (as UTF-8 bytes); special tokens are cut out and not counted."""
    pieces = split_on_specials(text, special_splitter(special_tokens))
    counts: Counter[str] = Counter()
    for chunk in pieces[::2]:
        counts.update(_GPT2_SPLIT.findall(chunk))
    return Counter({word.encode("utf-8"): n for word, n in counts.items()})


def safe_cuts(pieces: Iterator[str], special_tokens: Sequence[str]) -> Iterator[str]:
    """Regroup a stream of strings into blocks that pre-tokenize independently.

    Joining the blocks gives back the stream exactly, and encoding them one by one gives the
    ids of the whole: a cut is made only where no GPT-2 pre-token and no special token can
    straddle it (see _SAFE_CUT). Memory is bounded by the longest stretch without such a point.
    """
    reach = max((len(t) for t in special_tokens), default=1) - 1  # how far a special token can straddle
    keep = 2 * reach + 3  # characters of held text a later cut may still need as context
    held: list[str] = []  # text since the last cut
    tail = ""  # the last `keep` characters of held
    for piece in pieces:
        if not piece:
            continue
        window = tail + piece
        cut = _last_safe_cut(window, special_tokens, lo=max(2, reach), hi=len(window) - max(1, reach))
        if cut >= 0:
            text = "".join(held) + piece
            cut += len(text) - len(window)
            yield text[:cut]
            held, tail = [text[cut:]], text[cut:][-keep:]
        else:
            held.append(piece)
            tail = window[-keep:]
    if held:
        yield "".join(held)


# Zero-width points where the GPT-2 regex always ends one pre-token and starts the next, whatever
# comes before or after: a letter then a digit or symbol, a digit then a letter or symbol, a
# symbol (not the apostrophe of "'s") then a letter or digit, and a single whitespace character
# other than the space between two non-spaces (it is its own pre-token, text cut there or not).
_SAFE_CUT = regex.compile(
    r"(?<=\p{L})(?=[^\s\p{L}])"
    r"|(?<=\p{N})(?=[^\s\p{N}])"
    r"|(?<=[^\s\p{L}\p{N}'])(?=[\p{L}\p{N}])"
    r"|(?<=\S[^\S ])(?=\S)"
)


def _last_safe_cut(window: str, special_tokens: Sequence[str], lo: int, hi: int) -> int:
    """The last safe cut c of window with lo <= c <= hi that no special token spans, else -1."""
    cuts = [m.start() for m in _SAFE_CUT.finditer(window)]
    for c in reversed(cuts):
        if not lo <= c <= hi:
            continue
        if not any(t in window[c - len(t) + 1 : c + len(t) - 1] for t in special_tokens if len(t) > 1):
            return c
    return -1
