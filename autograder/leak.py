"""Finding hidden-test lines in text, plain or encoded (base64/32/85, hex, decimal codes, rot13, reversed,
spaced out, case changed), so that feedback never carries them in any of those forms.

Each secret line becomes a set of needles; the text becomes a few views (normalised, base-N blobs joined,
hex digits only, decimal codes decoded); a leak is a needle found in its view. Needles are long (a line of
at least MIN_CHARS characters), so an honest notebook does not match by chance.
"""

from __future__ import annotations

import base64
import codecs
import re
import unicodedata

MIN_CHARS = 12
_SPACE = re.compile(r"\s+")
_INVISIBLE = re.compile("[\\s\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e"
                        "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]+")


def norm(text: str) -> str:
    """Case-folded, compatibility-normalised, without whitespace or invisible characters."""
    return _INVISIBLE.sub("", unicodedata.normalize("NFKC", text).casefold())


def _cores(data: bytes, encode, group_in: int, group_out: int) -> set[str]:
    """For each alignment of `data` in a longer stream: the encoded characters that depend on it alone."""
    out = set()
    for k in range(group_in):
        enc = encode(b"\0" * k + data).decode("ascii")
        g0, g1 = -(-k // group_in), (k + len(data)) // group_in
        core = enc[group_out * g0: group_out * g1]
        if len(core) >= 8:
            out.add(core)
    return out


def needles(line: str) -> dict[str, set[str]]:
    """view name -> strings whose presence in that view means `line` leaked."""
    n = norm(line)
    if len(n) < MIN_CHARS:
        return {}
    raw = line.strip().encode("utf-8")
    b64 = _cores(raw, base64.b64encode, 3, 4)
    return {
        "plain": {n, n[::-1], norm(codecs.encode(line, "rot13")), norm(codecs.encode(line, "rot13"))[::-1]},
        "blob": b64 | {c.translate(str.maketrans("+/", "-_")) for c in b64}
                | _cores(raw, base64.b32encode, 5, 8) | _cores(raw, base64.b85encode, 4, 5)
                | _cores(raw, base64.a85encode, 4, 5) | _cores(raw[::-1], base64.b64encode, 3, 4),
        "hex": {raw.hex(), raw[::-1].hex()},
        "codes": {n},
    }


_HEX_PREFIX = re.compile(r"0x|\\x|%|\\u00", re.IGNORECASE)
_NOT_HEX = re.compile(r"[^0-9a-f]+")
_NUM = re.compile(r"\d+")


def views(text: str) -> dict[str, str]:
    blob = _SPACE.sub("", text).replace("\\n", "")
    codes = "".join(chr(int(x)) for x in _NUM.findall(text) if len(x) <= 7 and int(x) <= 0x10FFFF)
    return {
        "plain": norm(text),
        "blob": blob,
        "hex": _NOT_HEX.sub("", _HEX_PREFIX.sub("", text.lower())),
        "codes": norm(codes),
    }


class Detector:
    """Hidden lines to look for, minus those that are public (in the release) or the student's own."""

    def __init__(self, secret_lines: list[str], public_text: str = ""):
        public = norm(public_text)
        self.lines = []
        self.needles = []
        for s in dict.fromkeys(secret_lines):
            n = needles(s)
            if n and norm(s) not in public:
                self.lines.append(s)
                self.needles.append(n)

    def find(self, text: str) -> tuple[str, str] | None:
        """(the hidden line, how it was encoded) for the first one found in `text`, or None."""
        if not self.lines or not text:
            return None
        v = views(text)
        for line, n in zip(self.lines, self.needles):
            for view, items in n.items():
                for item in items:
                    if item and item in v[view]:
                        return line, view
        return None
