"""A notebook without its code cells' outputs, streamed: grading re-runs every cell, so outputs are not
needed, and a notebook that is big only because of its images (e.g. 56 MB of PNGs) fits the cap again.

Works on any buffer (bytes or an mmap of the file), so a 500 MB file is never read into memory: only the
kept JSON (at most `limit` bytes) is built. The JSON is tokenised just enough to know where each cell's
"outputs" value starts and ends; everything else is copied byte for byte.
"""

from __future__ import annotations

import mmap
import os
import re

_WS = re.compile(rb"[ \t\r\n]*")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_STRING_RUN = re.compile(rb'(?:"[^"\\]*(?:\\.[^"\\]*)*"[ \t\r\n]*,[ \t\r\n]*)+', re.DOTALL)  # "a", "b", ...
_SCALAR = re.compile(rb"(?:true|false|null|-?[0-9][0-9eE.+-]*)")


class TooBig(ValueError):
    """Still over the cap without outputs."""


def strip_outputs(buf, limit: int) -> bytes:
    """The notebook JSON in `buf` with every cell's "outputs" replaced by [] (ValueError if not JSON
    we understand, TooBig if the rest is over `limit` bytes)."""
    kept: list[bytes] = []
    size = 0
    start = 0  # first byte not yet copied
    pos = 0
    n = len(buf)
    # stack of containers: ["obj", last_key] or ["arr", index]
    stack: list[list] = []
    expect_key = False

    def flush(upto: int) -> None:
        nonlocal size
        if upto > start:
            size_new = size + (upto - start)
            if size_new > limit:
                raise TooBig(f"over {limit >> 20} MB without outputs")
            kept.append(bytes(buf[start:upto]))
            size = size_new

    def skip_value(p: int) -> int:
        """End of the JSON value that starts at p."""
        depth = 0
        while True:
            p = _WS.match(buf, p).end()
            if p >= n:
                raise ValueError("truncated JSON")
            c = buf[p:p + 1]
            if c == b'"':
                m = _STRING.match(buf, p)
                if not m:
                    raise ValueError(f"unterminated string at byte {p}")
                p = m.end()
            elif c in b"[{":
                depth += 1
                p += 1
            elif c in b"]}":
                depth -= 1
                p += 1
            elif c in b",:":
                p += 1
            else:
                m = _SCALAR.match(buf, p)
                if not m:
                    raise ValueError(f"unexpected byte {c!r} at {p}")
                p = m.end()
            if depth <= 0:
                return p

    while True:
        pos = _WS.match(buf, pos).end()
        if pos >= n:
            break
        c = buf[pos:pos + 1]
        if c in b"{[":
            stack.append(["obj", None] if c == b"{" else ["arr", 0])
            expect_key = c == b"{"
            pos += 1
        elif c in b"}]":
            if not stack or stack[-1][0] != ("obj" if c == b"}" else "arr"):
                raise ValueError(f"unbalanced {c!r} at byte {pos}")
            stack.pop()
            pos += 1
            if not stack and _WS.match(buf, pos).end() < n:
                raise ValueError(f"more after the notebook's end at byte {pos}")
        elif c == b",":
            if stack and stack[-1][0] == "obj":
                expect_key = True
            pos += 1
        elif c == b":":
            pos += 1
            # the value of key "outputs" in a cell: top object > "cells" array > cell object
            if (len(stack) == 3 and stack[-1][1] == b'"outputs"' and stack[0][1] == b'"cells"'
                    and stack[1][0] == "arr"):
                value_start = _WS.match(buf, pos).end()
                end = skip_value(value_start)
                flush(value_start)
                kept.append(b"[]")
                size += 2
                start = pos = end
        elif c == b'"':
            if stack and stack[-1][0] == "arr":  # a list of strings (a cell's source lines) in one step
                run = _STRING_RUN.match(buf, pos)
                if run:
                    pos = run.end()
                    if buf[pos:pos + 1] != b'"':
                        continue
            m = _STRING.match(buf, pos)
            if not m:
                raise ValueError(f"unterminated string at byte {pos}")
            if size + (m.end() - start) > limit:  # already over: stop reading
                raise TooBig(f"over {limit >> 20} MB without outputs")
            if expect_key and stack and stack[-1][0] == "obj":
                stack[-1][1] = m.group(0) if m.end() - pos < 64 else None
                expect_key = False
            pos = m.end()
        else:
            m = _SCALAR.match(buf, pos)
            if not m:
                raise ValueError(f"not JSON: unexpected byte {c!r} at {pos}")
            pos = m.end()
    if stack:
        raise ValueError("truncated JSON")
    flush(n)
    return b"".join(kept)


def strip_file(path: str, limit: int) -> bytes:
    """strip_outputs on a file, through mmap (the file is never read whole into memory)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return b""
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return strip_outputs(m, limit)
