"""`stats` on a class graded for real: one day of the real course (02_attention) through the whole pipeline.

Students: the official solution, the untouched release, and three who hand in the solution with planted
mistakes of tests/mutants/d02_attention.py (grouped as tests/real_course.py groups them). Graded with the
sandbox and trusted verdicts on; then `stats`' numbers are compared with grades.csv (numpy), and every test
cell a student failed must show failure messages counting exactly the students who failed it.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile

import nbformat
import numpy as np
import pytest
from autograder_run import cli as autograder_cli
from autograder_run import config_text
from real_course import REPO, as_student, mutants, pack

from autograder.sandbox import bwrap_problem

DAY = "02_attention"
GROUPS = 3  # mutant students
UID_BASE = int(os.environ.get("STATS_REAL_UID_BASE", "62500"))
_PROBLEM = bwrap_problem()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(_PROBLEM is not None, reason=f"needs bubblewrap: {_PROBLEM}")]


def cli(cfg, *args):
    r = autograder_cli(cfg, *args, timeout=3600)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_stats_of_a_really_graded_day():
    root = tempfile.mkdtemp(prefix="agstats-real-")
    try:
        _check(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _check(root):
    os.makedirs(os.path.join(root, "solutions"))
    os.symlink(os.path.join(REPO, "solutions", DAY), os.path.join(root, "solutions", DAY))
    shutil.copytree(os.path.join(REPO, "course", DAY), os.path.join(root, "course", DAY))
    cfg = os.path.join(root, "nbgrader_config.py")
    with open(cfg, "w") as f:
        f.write(config_text(os.path.join(root, "work"), CourseDirectory__root=root,
                            Autograder__sandbox_uid_base=UID_BASE))
    cli(cfg, "release", DAY)
    release = nbformat.read(os.path.join(root, "course", DAY, f"{DAY}.ipynb"), as_version=4)
    solution = nbformat.read(os.path.join(REPO, "solutions", DAY, f"{DAY}.ipynb"), as_version=4)
    students = {"solution": [], "untouched": None}
    for k, group in enumerate(pack(mutants(DAY))[:GROUPS]):
        students[f"mut{k}"] = group
    test_cells = [c.metadata["nbgrader"]["grade_id"] for c in release.cells
                  if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    failed_by = {cell: set() for cell in test_cells}  # who must fail each test cell
    incoming = os.path.join(root, "incoming")
    for student, group in students.items():
        nb = release if group is None else as_student(release, solution, group)
        os.makedirs(os.path.join(incoming, student))
        nbformat.write(nb, os.path.join(incoming, student, f"{DAY}.ipynb"))
        for cell in test_cells if group is None else set().union(*(m.fails for m in group)) if group else ():
            failed_by[cell].add(student)
    cli(cfg, "collect", incoming)
    cli(cfg, "grade", "--workers", "2")
    cli(cfg, "stats")
    work = os.path.join(root, "work")
    stats = list(csv.DictReader(open(os.path.join(work, "stats.csv"))))
    grades = [r for r in csv.DictReader(open(os.path.join(work, "grades.csv"))) if r["score"]]
    scores = np.array([float(r["score"]) for r in grades])
    day = next(r for r in stats if r["level"] == "day")
    assert int(day["n"]) == len(students) == len(scores)
    assert abs(float(day["mean"]) - scores.mean()) < 1e-6 and abs(float(day["median"]) - np.median(scores)) < 1e-6
    assert abs(float(day["full_marks_share"]) - np.mean(scores >= float(grades[0]["max_score"]))) < 1e-6
    counted = {}
    for r in stats:
        if r["level"] == "failure":
            counted[r["exercise"]] = counted.get(r["exercise"], 0) + int(r["count"])
    expected = {cell: len(who) for cell, who in failed_by.items() if who}
    assert counted == expected, (counted, expected)
    messages = [r["message"] for r in stats if r["level"] == "failure"]
    assert any(m.startswith("NotImplementedError") for m in messages)  # the untouched release
