"""Longest files first: the order `./run test` hands test files to its two xdist workers.

With `--dist loadfile --no-loadscope-reorder` each worker takes the next whole file in collection order when it
is almost done with its own. Left to itself xdist orders the files by their number of tests, so a 570 s half of
the real course could start late and run alone at the end; starting the longest files first (the two real-course
halves on the two workers at once, then the other long ones) leaves only short files for the end.
"""

from __future__ import annotations

import os

# seconds of each long file in the last clean-clone run (pytest --durations, quiet 2-core machine)
LONG_FILES = {
    "test_real_course_a.py": 574, "test_real_course_b.py": 565, "test_course_env.py": 250, "test_sandbox.py": 139,
    "test_autograder_hostile.py": 138, "test_postgres.py": 85, "test_slurm.py": 79, "test_stats_real.py": 54,
    "test_verdict_seeds.py": 300,
}


def file_weight(path: str) -> int:
    return LONG_FILES.get(os.path.basename(path), 0)


def longest_files_first(items: list) -> None:
    """In place: items of the long files first, longest first; the other files keep their order after them."""
    items.sort(key=lambda item: -file_weight(str(item.path)))
