"""Longest files first: the order `./run test` hands test files to its two xdist workers.

With `--dist loadfile --no-loadscope-reorder` each worker takes the next whole file in collection order when it
is almost done with its own. Left to itself xdist orders the files by their number of tests, so a 570 s half of
the real course could start late and run alone at the end; starting the longest files first (the two real-course
halves on the two workers at once, then the other long ones) leaves only short files for the end.
"""

from __future__ import annotations

import os

# seconds of each long file in the last clean-clone run (pytest's durations summed per file, quiet 2-core machine,
# 2026-12-04 at 6a47add). test_notebooks.py was missing here: it started last and ran alone for its final 157 s.
LONG_FILES = {
    "test_real_course_a.py": 595, "test_real_course_b.py": 626, "test_verdict_seeds.py": 588,
    "test_notebooks.py": 355, "test_course_env.py": 185, "test_sandbox.py": 179, "test_formgrader.py": 121,
    "test_autograder_hostile.py": 120, "test_postgres.py": 97, "test_train_slow.py": 66, "test_slurm.py": 61,
    "test_feedback.py": 55, "test_stats_real.py": 32,
}


def file_weight(path: str) -> int:
    return LONG_FILES.get(os.path.basename(path), 0)


def longest_files_first(items: list) -> None:
    """In place: items of the long files first, longest first; the other files keep their order after them."""
    items.sort(key=lambda item: -file_weight(str(item.path)))
