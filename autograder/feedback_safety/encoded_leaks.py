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
    cores = set()
    for offset in range(group_in):
        encoded = encode(b"\0" * offset + data).decode("ascii")
        first_group, end_group = -(-offset // group_in), (offset + len(data)) // group_in
        core = encoded[group_out * first_group: group_out * end_group]
        if len(core) >= 8:
            cores.add(core)
    return cores


def needles(line: str) -> dict[str, set[str]]:
    """view name -> strings whose presence in that view means `line` leaked."""
    normal = norm(line)
    if len(normal) < MIN_CHARS:
        return {}
    raw = line.strip().encode("utf-8")
    rot13 = norm(codecs.encode(line, "rot13"))
    b64 = _cores(raw, base64.b64encode, 3, 4)
    return {
        "plain": {normal, normal[::-1], rot13, rot13[::-1]},
        "blob": b64 | {core.translate(str.maketrans("+/", "-_")) for core in b64}
                | _cores(raw, base64.b32encode, 5, 8) | _cores(raw, base64.b85encode, 4, 5)
                | _cores(raw, base64.a85encode, 4, 5) | _cores(raw[::-1], base64.b64encode, 3, 4),
        "hex": {raw.hex(), raw[::-1].hex()},
        "codes": {normal},
    }


_HEX_PREFIX = re.compile(r"0x|\\x|%|\\u00", re.IGNORECASE)
_NOT_HEX = re.compile(r"[^0-9a-f]+")
_NUM = re.compile(r"\d+")


def views(text: str) -> dict[str, str]:
    """view name -> `text` seen that way (normalised, blobs joined, hex digits only, decimal codes decoded)."""
    blob = _SPACE.sub("", text).replace("\\n", "")
    codes = "".join(chr(int(number)) for number in _NUM.findall(text)
                    if len(number) <= 7 and int(number) <= 0x10FFFF)
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
        for secret in dict.fromkeys(secret_lines):
            line_needles = needles(secret)
            if line_needles and norm(secret) not in public:
                self.lines.append(secret)
                self.needles.append(line_needles)

    def find(self, text: str) -> tuple[str, str] | None:
        """(the hidden line, how it was encoded) for the first one found in `text`, or None."""
        if not self.lines or not text:
            return None
        text_views = views(text)
        for line, line_needles in zip(self.lines, self.needles):
            for view, items in line_needles.items():
                for item in items:
                    if item and item in text_views[view]:
                        return line, view
        return None
