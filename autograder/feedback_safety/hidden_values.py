"""The trusted check's message as the student reads it: which property broke and where, never a hidden value.

The verdict compares the student's answers with the reference on hidden cases, and its message names values
(`got 2.47, expected -1.63`, `should be 3.115`) that would tell the student a hidden input or expected output.
`withhold_values` keeps the words, shapes, counts and positions and replaces every such value with "…"; the
instructor's record (the verdict's `detail` in the status file) keeps the full message.
"""

from __future__ import annotations

import re

WITHHELD = "…"
_VALUE_AFTER = re.compile(r"\b(got|expected|should be|gives)\s+"
                          r"(\[[^\]]*\]|\([^)]*\)|'[^']*'|\"[^\"]*\"|-?\d[^\s;,)]*|True|False|None|nan|inf)")
_DECIMAL = re.compile(r"(?<![\w.])-?\d+\.\d+(?:e[-+]?\d+)?|(?<![\w.])-?\d+e[-+]?\d+|\b(?:nan|inf)\b")


def withhold_values(message: str) -> str:
    """`message` with the values of the hidden cases replaced by '…' (positions, counts and shapes stay)."""
    text = _VALUE_AFTER.sub(lambda m: f"{m.group(1)} {WITHHELD}", message)
    return _DECIMAL.sub(WITHHELD, text)
