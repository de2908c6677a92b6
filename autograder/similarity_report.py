"""`python -m autograder similarity`: which students of an assignment wrote the same functions.

As MOSS and JPlag do: every function of every student's solution cells is normalised
(autograder.similarity), code the release gives (the stub's own statements, the signature) is left
out, and an index of k-gram fingerprints counts, for the pairs of functions that share any, how
many they share. Passages that more than `max_common` of the class wrote are common knowledge
and count for nothing (MOSS's -m), so a class converging on the canonical answer is not flagged.
"""

from __future__ import annotations

import csv
import os
import sys
from collections import defaultdict
from dataclasses import dataclass

import nbformat

from .atomic import write_atomic
from .inside.cells import is_solution_cell
from .similarity import KGRAM, MATCH_STUDENT, MIN_TOKENS, Function, functions, given_statements, kgrams

MIN_FINGERPRINTS = 10  # a function with fewer uncommon fingerprints has nothing distinctive to compare


@dataclass(frozen=True)
class Match:
    assignment: str
    student_a: str
    function_a: str
    student_b: str
    function_b: str
    score: float


def solution_cells(release_nb) -> dict[str, str]:
    """{grade_id: stub source} of the code cells students write (nbgrader solution cells)."""
    return {cell.metadata["nbgrader"]["grade_id"]: cell.source for cell in release_nb.cells
            if is_solution_cell(cell) and cell.metadata["nbgrader"].get("grade_id")}


def student_functions(submitted_nb, stubs: dict[str, str], prefix: str = "") -> list[Function]:
    """The normalised functions of a submission's solution cells, without what the stubs give."""
    found = []
    for cell in submitted_nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type != "code" or gid not in stubs or cell.source == stubs[gid]:
            continue
        for fn in functions(cell.source, given_statements(stubs[gid])):
            fn.name = prefix + fn.name
            fn.grams = kgrams(fn.tokens)
            found.append(fn)
    return found


def compare_class(work: dict[str, list[Function]], threshold: float = MATCH_STUDENT, max_common: float = 0.05,
                  min_tokens: int = MIN_TOKENS) -> list[tuple[str, str, str, str, float]]:
    """(student a, function a, student b, function b, score) for every pair of functions of two
    different students scoring at least `threshold`, best first.

    score: the share of fingerprints two functions have in common (2|A & B| / (|A| + |B|)), leaving
    out passages more than max(5, max_common * students) students wrote (common knowledge: the
    canonical way to write a loop is no evidence that two students worked together)."""
    entries = [(student, fn) for student, fns in sorted(work.items()) for fn in fns if len(fn.tokens) >= min_tokens]
    holders: dict[int, set[str]] = defaultdict(set)
    for student, fn in entries:
        for gram in fn.grams:
            holders[gram].add(student)
    limit = max(5, int(max_common * len(work)))
    rare = [frozenset(gram for gram in fn.grams if len(holders[gram]) <= limit) for _, fn in entries]
    postings: dict[int, list[int]] = defaultdict(list)
    for entry, grams in enumerate(rare):
        if len(grams) >= MIN_FINGERPRINTS:
            for gram in grams:
                postings[gram].append(entry)
    shared: dict[tuple[int, int], int] = defaultdict(int)
    for ids in postings.values():  # each list holds at most `limit` students' functions
        for first in range(len(ids)):
            for second in range(first + 1, len(ids)):
                if entries[ids[first]][0] != entries[ids[second]][0]:
                    shared[ids[first], ids[second]] += 1
    found = []
    for (first, second), n_shared in shared.items():
        score = 2 * n_shared / (len(rare[first]) + len(rare[second]))
        if score >= threshold:
            (student_a, function_a), (student_b, function_b) = entries[first], entries[second]
            found.append((student_a, function_a.name, student_b, function_b.name, score))
    return sorted(found, key=lambda match: (-match[4], match[0], match[2], match[1]))


def load_assignment(course, assignment: str) -> tuple[dict[str, list[Function]], list[str]]:
    """{student: normalised functions} of one assignment's submissions, and notes on what was skipped."""
    notes = []
    work: dict[str, list[Function]] = defaultdict(list)
    for nb_id in course.notebooks(assignment):
        release_path = os.path.join(course.release, assignment, f"{nb_id}.ipynb")
        if not os.path.exists(release_path):
            release_path = os.path.join(course.source, assignment, f"{nb_id}.ipynb")
        stubs = solution_cells(nbformat.read(release_path, as_version=4))
        for student in sorted(os.listdir(course.submitted)) if os.path.isdir(course.submitted) else []:
            path = os.path.join(course.submitted, student, assignment, f"{nb_id}.ipynb")
            if not os.path.isfile(path):
                continue
            try:
                submitted = nbformat.read(path, as_version=4)
            except Exception as error:  # noqa: BLE001 (a broken notebook is reported, not fatal)
                notes.append(f"{student}/{assignment}/{nb_id}.ipynb skipped: {type(error).__name__}: {error}")
                continue
            work[student].extend(student_functions(submitted, stubs, prefix=f"{nb_id}:"))
    return dict(work), notes


def similarity_report(course, assignment: str | None = None, threshold: float = MATCH_STUDENT,
                      out: str | None = None) -> int:
    """Write similarity.csv (every pair above the threshold) and print the pairs of students."""
    if not 0.0 < threshold <= 1.0:
        print(f"--threshold must be in (0, 1], got {threshold}", file=sys.stderr)
        return 2
    assignments = [assignment] if assignment else course.assignments()
    unknown = [name for name in assignments if name not in course.assignments()]
    if unknown:
        print(f"unknown assignment {unknown[0]!r}; known: {', '.join(course.assignments())}", file=sys.stderr)
        return 2
    out = out or os.path.join(course.work, "similarity.csv")
    rows: list[Match] = []
    for name in assignments:
        work, notes = load_assignment(course, name)
        for note in notes:
            print(f"note: {note}")
        rows += [Match(name, *match) for match in compare_class(work, threshold)]
        print(f"{name}: {len(work)} students, {sum(len(fns) for fns in work.values())} functions compared")

    def write(csv_file) -> None:
        writer = csv.writer(csv_file)
        writer.writerow(["assignment", "student_a", "function_a", "student_b", "function_b", "similarity"])
        for match in rows:
            writer.writerow([match.assignment, match.student_a, match.function_a, match.student_b, match.function_b,
                             f"{match.score:.3f}"])
    write_atomic(out, write, newline="")
    pairs: dict[tuple[str, str, str], list[Match]] = defaultdict(list)
    for match in rows:
        pairs[(match.assignment, match.student_a, match.student_b)].append(match)
    by_best_score = sorted(pairs.items(), key=lambda item: -max(match.score for match in item[1]))
    for (name, student_a, student_b), matches in by_best_score:
        funcs = ", ".join(match.function_a + (f"~{match.function_b}" if match.function_b != match.function_a else "")
                          + f" {match.score:.2f}" for match in matches)
        print(f"{name}: {student_a} ~ {student_b}: {len(matches)} function(s): {funcs}")
    print(f"{len(pairs)} pair(s) of students at similarity >= {threshold} ({len(rows)} functions); details in {out}"
          f" (k={KGRAM}-token fingerprints, functions of {MIN_TOKENS}+ normalised tokens)")
    return 0
