"""The real course through the real pipeline: every notebook graded by `python -m autograder`.

The course is graded in two halves, each its own test module (test_real_course_a.py and _b.py), so that the
two xdist workers share the work: `define_tests(part)` makes one half's batch fixture and tests. The days go
to the halves by their estimated grading cost (submissions x notebook weight), so both take about as long.

One batch per half (module fixture): the repository's solutions/ as the source, a copy of course/ as the
release, and as students: "solution" (every day's solution cells filled in, as a student would hand them
in), "untouched" (the released notebooks as they are), and the planted mistakes of tests/mutants/d<day>.py
applied to the solution (several per student when they change different cells and fail disjoint tests).
Graded with the sandbox and trusted verdicts on, WORKERS grading workers per half. Then: the solution gets every
autograded point with no flag, the untouched release 0 without a crash, and each mutant student loses
exactly the points of its mutants' `fails` cells.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
import time

import nbformat
import pytest
from autograder_run import cli, config_text

from autograder.sandbox import bwrap_problem

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UID_BASE = int(os.environ.get("REAL_COURSE_UID_BASE", "62000"))  # two runs at once need two bases
ONLY_MUTANTS = os.environ.get("REAL_COURSE_ONLY_MUTANTS") == "1"  # debugging: the mutant students alone
# grading workers per half. One: each grading already runs its verdict's sandbox beside the notebook's, so the two
# halves side by side keep both cores busy; two per half were no faster on a quiet 2-core machine (2026-12-04: 181
# submissions in 858 + 828 s, 9.3 s each; with one, 878 + 776 s for 175 the day before and 730 + 678 s for the same
# 181 in that day's clean-clone run, 9.5 and 7.8 s each)
WORKERS = os.environ.get("REAL_COURSE_WORKERS", "1")
_PROBLEM = bwrap_problem()
MARKS = [pytest.mark.slow, pytest.mark.skipif(_PROBLEM is not None, reason=f"needs bubblewrap: {_PROBLEM}")]
HEAVY_DAYS = {"06_bert_vs_gpt": 2.0, "09_nanogpt_finetune": 2.0, "10_baichuan2": 1.5, "11_distributed": 2.0}
PARTS = 2


def all_days() -> list[str]:
    """Every day of solutions/ (REAL_COURSE_DAYS=01_bpe,02_attention narrows it while debugging)."""
    only = [d for d in os.environ.get("REAL_COURSE_DAYS", "").split(",") if d]
    return sorted(d for d in os.listdir(os.path.join(REPO, "solutions"))
                  if os.path.isdir(os.path.join(REPO, "solutions", d)) and (not only or d in only))


def days(part: int) -> list[str]:
    """The days of one half: the costliest day first to the half with less work so far (submissions x weight)."""
    cost = {day: (2 + len(pack(mutants(day)))) * HEAVY_DAYS.get(day, 1.0) for day in all_days()}
    loads, chosen = [0.0] * PARTS, [[] for _ in range(PARTS)]
    for day in sorted(cost, key=lambda d: (-cost[d], d)):
        lightest = loads.index(min(loads))
        loads[lightest] += cost[day]
        chosen[lightest].append(day)
    return sorted(chosen[part])


def mutants(day: str) -> list:
    if os.environ.get("REAL_COURSE_MUTANTS") == "0":  # debugging: solutions and releases only
        return []
    return importlib.import_module(f"tests.mutants.d{day}").MUTANTS


def strip_markers(src: str) -> str:
    markers = ("### BEGIN SOLUTION", "### END SOLUTION")
    return "\n".join(line for line in src.splitlines() if line.strip() not in markers)


def as_student(release_nb, solution_nb, changes: list = ()):
    """The release with the solution's answers filled in, then each mutant's `old` -> `new` applied."""
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in solution_nb.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    nb = nbformat.from_dict(json.loads(nbformat.writes(release_nb)))
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and gid in answers:
            cell.source = strip_markers(answers[gid])
    for m in changes:
        cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == m.cell)
        assert cell.source.count(m.old) == 1, f"mutant {m.why!r}: {m.old!r} must occur once in {m.cell}"
        cell.source = cell.source.replace(m.old, m.new)
    return nb


def pack(ms: list) -> list[list]:
    """Mutants grouped so that no two in a group change the same cell or fail the same test."""
    groups: list[list] = []
    for m in ms:
        for g in groups:
            if all(o.cell != m.cell and not (o.fails & m.fails) for o in g):
                g.append(m)
                break
        else:
            groups.append([m])
    return groups


def _grade(root: str, part_days: list[str]) -> dict:
    os.symlink(os.path.join(REPO, "solutions"), os.path.join(root, "solutions"))
    shutil.copytree(os.path.join(REPO, "course"), os.path.join(root, "course"))
    cfg = os.path.join(root, "nbgrader_config.py")
    with open(cfg, "w") as f:
        # the course's own config: only the folders and the sandbox uids are this test's
        f.write(config_text(os.path.join(root, "work"), CourseDirectory__root=root,
                            Autograder__sandbox_uid_base=UID_BASE))
    r = cli(cfg, "release", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    incoming = os.path.join(root, "incoming")
    expect: dict[tuple[str, str], dict] = {}  # (student, day) -> {"fails": set, "why": [...]}
    for day in part_days:
        release = nbformat.read(os.path.join(root, "course", day, f"{day}.ipynb"), as_version=4)
        solution = nbformat.read(os.path.join(REPO, "solutions", day, f"{day}.ipynb"), as_version=4)
        students = {} if ONLY_MUTANTS else {"solution": [], "untouched": None}
        for k, group in enumerate(pack(mutants(day))):
            students[f"mut{day[:2]}_{k}"] = group
        for student, group in students.items():
            nb = release if group is None else as_student(release, solution, group)
            os.makedirs(os.path.join(incoming, student), exist_ok=True)
            nbformat.write(nb, os.path.join(incoming, student, f"{day}.ipynb"))
            expect[(student, day)] = {"fails": set().union(*(m.fails for m in group)) if group else set(),
                                      "why": [m.why for m in group or []], "untouched": group is None}
    r = cli(cfg, "collect", incoming, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    t0 = time.monotonic()
    r = cli(cfg, "grade", "--workers", WORKERS, timeout=3600)
    seconds = time.monotonic() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    status = {}
    for student, day in expect:
        path = os.path.join(root, "work", "status", day, f"{student}.json")
        status[(student, day)] = json.load(open(path)) if os.path.exists(path) else None
    lines = [f"real course ({', '.join(part_days)}): {len(expect)} submissions graded in {seconds:.0f} s, "
             f"{WORKERS} workers"]
    for (student, day), st in sorted(status.items()):
        if student == "solution" and st:
            lines.append(f"  {day}: solution graded in {st.get('seconds')} s")
    print("\n".join(lines))
    return {"root": root, "expect": expect, "status": status, "seconds": seconds}


def _auto(st: dict) -> dict[str, tuple[float, float]]:
    """grade_id -> (auto score, max) of the autograded cells."""
    out = {}
    for key, c in st.get("cells", {}).items():
        if c.get("auto") is not None or not c.get("needs_manual_grade"):
            out[key.split(":", 1)[1]] = (c.get("auto") or 0.0, c.get("max") or 0.0)
    return out


def _flags(st: dict) -> list[str]:
    from autograder.grade import all_flags

    return all_flags(st)


def _test_cells(day: str) -> set[str]:
    """The grade ids of the autograded test cells of a day (from its solutions notebook)."""
    from autograder.inside.cells import is_test_cell

    nb = nbformat.read(os.path.join(REPO, "solutions", day, f"{day}.ipynb"), as_version=4)
    return {c.metadata["nbgrader"]["grade_id"] for c in nb.cells if is_test_cell(c)}


def _assert_graded(st: dict, day: str) -> None:
    """Every test cell of the day has a score in the status record (a run that graded nothing fails)."""
    missing = _test_cells(day) - set(_auto(st))
    assert _test_cells(day) and not missing, f"{day}: test cells without a score: {sorted(missing)}"


def _mutant_students(part_days: list[str]):
    out = []
    for day in part_days:
        for k, group in enumerate(pack(mutants(day))):
            out.append((f"mut{day[:2]}_{k}", day))
    return out


def define_tests(part: int) -> dict:
    """One half's module fixture `batch` and its tests, for a test module's globals()."""
    part_days = days(part)

    @pytest.fixture(scope="module")
    def batch():
        root = tempfile.mkdtemp(prefix="agreal-")
        try:
            yield _grade(root, part_days)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    @pytest.mark.parametrize("day", part_days)
    def test_solution_gets_full_marks_and_no_flags(batch, day):
        if ONLY_MUTANTS:
            pytest.skip("REAL_COURSE_ONLY_MUTANTS=1")
        st = batch["status"][("solution", day)]
        assert st is not None, f"{day}: the solution was not graded"
        _assert_graded(st, day)
        lost = {g: s for g, s in _auto(st).items() if s[0] != s[1]}
        assert not lost, (f"{day}: the official solution lost points in {lost}; flags: {_flags(st)}; "
                          f"verdict: {st.get('notebooks')}")
        assert not _flags(st), f"{day}: the official solution was flagged: {_flags(st)}"


    @pytest.mark.parametrize("day", part_days)
    def test_untouched_release_scores_zero_without_crash(batch, day):
        if ONLY_MUTANTS:
            pytest.skip("REAL_COURSE_ONLY_MUTANTS=1")
        st = batch["status"][("untouched", day)]
        assert st is not None and st.get("state") != "failed", (
            f"{day}: grading the untouched release crashed: {st and _flags(st)}")
        _assert_graded(st, day)
        assert all(a == 0 for a, _ in _auto(st).values()), f"{day}: the untouched release scored {_auto(st)}"


    @pytest.mark.parametrize("student,day", _mutant_students(part_days))
    def test_mutants_lose_exactly_their_cells(batch, student, day):
        st = batch["status"][(student, day)]
        exp = batch["expect"][(student, day)]
        assert st is not None and st.get("state") != "failed", f"{student}/{day}: grading crashed"
        _assert_graded(st, day)
        auto = _auto(st)
        absent = exp["fails"] - set(auto)
        assert exp["fails"] and not absent, (
            f"{day} mutants {exp['why']}: failing cells absent from the status: {absent}")
        wrong = {g: s for g, s in auto.items() if s[0] != (0 if g in exp["fails"] else s[1])}
        assert not wrong, (f"{day} mutants {exp['why']}: should fail exactly {sorted(exp['fails'])}; "
                           f"cells scored otherwise (auto, max): {wrong}; flags: {_flags(st)}")

    return {"batch": batch, "pytestmark": MARKS,
            "test_solution_gets_full_marks_and_no_flags": test_solution_gets_full_marks_and_no_flags,
            "test_untouched_release_scores_zero_without_crash": test_untouched_release_scores_zero_without_crash,
            "test_mutants_lose_exactly_their_cells": test_mutants_lose_exactly_their_cells}
