"""`grade --shard K/N`: this machine's share of the (student, assignment) pairs.

A pair belongs to shard K of N when sha256("assignment/student") mod N == K - 1: the same
on every machine and every run (no ordering, no Python hash seed), so N machines that share
one PostgreSQL gradebook grade every pair exactly once, and a rerun of one shard takes
exactly its own pairs again.
"""

from __future__ import annotations

import hashlib
import re


def parse(spec: str) -> tuple[int, int]:
    """'K/N' -> (K, N) with 1 <= K <= N; a ValueError that says what is wrong otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec or "")
    if not match:
        raise ValueError(f"--shard wants K/N (e.g. 2/8: the second of eight shards), got {spec!r}")
    number, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= number <= count:
        raise ValueError(f"--shard {spec}: K must be between 1 and N (shards are numbered 1..N)")
    return number, count


def shard_of(assignment: str, student: str, count: int) -> int:
    """1-based shard number of one pair among `count` shards."""
    digest = hashlib.sha256(f"{assignment}/{student}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def select(pairs: list[tuple[str, str]], spec: str | None) -> list[tuple[str, str]]:
    """The (assignment, student) pairs of shard `spec` ('K/N'); all of them when spec is None."""
    if not spec:
        return list(pairs)
    number, count = parse(spec)
    return [(assignment, student) for assignment, student in pairs if shard_of(assignment, student, count) == number]
