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
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in release_nb.cells
            if is_solution_cell(c) and c.metadata["nbgrader"].get("grade_id")}


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
    entries = [(s, fn) for s, fns in sorted(work.items()) for fn in fns if len(fn.tokens) >= min_tokens]
    holders: dict[int, set[str]] = defaultdict(set)
    for s, fn in entries:
        for g in fn.grams:
            holders[g].add(s)
    limit = max(5, int(max_common * len(work)))
    rare = [frozenset(g for g in fn.grams if len(holders[g]) <= limit) for _, fn in entries]
    postings: dict[int, list[int]] = defaultdict(list)
    for i, grams in enumerate(rare):
        if len(grams) >= MIN_FINGERPRINTS:
            for g in grams:
                postings[g].append(i)
    shared: dict[tuple[int, int], int] = defaultdict(int)
    for ids in postings.values():  # each list holds at most `limit` students' functions
        for x in range(len(ids)):
            for y in range(x + 1, len(ids)):
                if entries[ids[x]][0] != entries[ids[y]][0]:
                    shared[ids[x], ids[y]] += 1
    found = []
    for (i, j), n in shared.items():
        score = 2 * n / (len(rare[i]) + len(rare[j]))
        if score >= threshold:
            (sa, fa), (sb, fb) = entries[i], entries[j]
            found.append((sa, fa.name, sb, fb.name, score))
    return sorted(found, key=lambda m: (-m[4], m[0], m[2], m[1]))


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
                nb = nbformat.read(path, as_version=4)
            except Exception as e:  # noqa: BLE001 (a broken notebook is reported, not fatal)
                notes.append(f"{student}/{assignment}/{nb_id}.ipynb skipped: {type(e).__name__}: {e}")
                continue
            work[student].extend(student_functions(nb, stubs, prefix=f"{nb_id}:"))
    return dict(work), notes


def similarity_report(course, assignment: str | None = None, threshold: float = MATCH_STUDENT,
                      out: str | None = None) -> int:
    """Write similarity.csv (every pair above the threshold) and print the pairs of students."""
    if not 0.0 < threshold <= 1.0:
        print(f"--threshold must be in (0, 1], got {threshold}", file=sys.stderr)
        return 2
    assignments = [assignment] if assignment else course.assignments()
    unknown = [a for a in assignments if a not in course.assignments()]
    if unknown:
        print(f"unknown assignment {unknown[0]!r}; known: {', '.join(course.assignments())}", file=sys.stderr)
        return 2
    out = out or os.path.join(course.work, "similarity.csv")
    rows: list[Match] = []
    for a in assignments:
        work, notes = load_assignment(course, a)
        for note in notes:
            print(f"note: {note}")
        rows += [Match(a, *m) for m in compare_class(work, threshold)]
        print(f"{a}: {len(work)} students, {sum(len(f) for f in work.values())} functions compared")

    def write(f) -> None:
        w = csv.writer(f)
        w.writerow(["assignment", "student_a", "function_a", "student_b", "function_b", "similarity"])
        for m in rows:
            w.writerow([m.assignment, m.student_a, m.function_a, m.student_b, m.function_b, f"{m.score:.3f}"])
    write_atomic(out, write, newline="")
    pairs: dict[tuple[str, str, str], list[Match]] = defaultdict(list)
    for m in rows:
        pairs[(m.assignment, m.student_a, m.student_b)].append(m)
    for (a, sa, sb), ms in sorted(pairs.items(), key=lambda kv: -max(m.score for m in kv[1])):
        funcs = ", ".join(f"{m.function_a}" + (f"~{m.function_b}" if m.function_b != m.function_a else "") + f" {m.score:.2f}"
                          for m in ms)
        print(f"{a}: {sa} ~ {sb}: {len(ms)} function(s): {funcs}")
    print(f"{len(pairs)} pair(s) of students at similarity >= {threshold} ({len(rows)} functions); details in {out}"
          f" (k={KGRAM}-token fingerprints, functions of {MIN_TOKENS}+ normalised tokens)")
    return 0
