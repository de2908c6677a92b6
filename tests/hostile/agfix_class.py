"""A small class on the fixture course for the instructor-side tests (PostgreSQL, shards, formgrader).

Two assignments (toy, and toy2, a copy of it under another name) so that one student's work can
land on two shards at once, a few students with different outcomes, and config files that give
each grading run its own work folder, its own sandbox uids and the one shared instructor secret.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess

import agfix_cases
import agfix_course
import nbformat
from autograder_run import cli, config_text  # noqa: F401  (cli: this module's callers use agfix_class.cli)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UID_BASE = 63500  # this suite's sandbox uids: UID_BASE .. UID_BASE+49


# student -> (what, scaled_sum source, softmax_rows source)
STUDENTS = {
    "ada": ("honest", agfix_cases.GOOD_SUM, agfix_cases.GOOD_SOFTMAX),
    "bo": ("wrong scaled_sum", agfix_cases.BAD_SUM, agfix_cases.GOOD_SOFTMAX),
    "cy": ("softmax_rows missing", agfix_cases.GOOD_SUM, "def softmax_rows(x):\n    raise NotImplementedError()\n"),
}


def build(root: str, assignments=("toy", "toy2")) -> str:
    """The fixture course under root with the given assignments released; returns its base config."""
    cfg = agfix_course.build(root)
    for a in assignments:
        if a != "toy":
            os.makedirs(os.path.join(root, "solutions", a), exist_ok=True)
            shutil.copy(os.path.join(root, "solutions", "toy", "toy.ipynb"),
                        os.path.join(root, "solutions", a, f"{a}.ipynb"))
    if "toy" not in assignments:
        shutil.rmtree(os.path.join(root, "solutions", "toy"))
    with open(os.path.join(root, "secret"), "wb") as f:
        f.write(b"agfix-class-secret-0123456789abcdef")
    return cfg


def run_config(root: str, name: str, uid_offset: int) -> tuple[str, str]:
    """A config for one grading run with its own work folder root/<name>; returns (config, work)."""
    work = os.path.join(root, name)
    os.makedirs(work, exist_ok=True)
    path = os.path.join(root, f"nbgrader_config_{name}.py")
    with open(path, "w") as f:
        f.write(config_text(work, base=os.path.join(root, "nbgrader_config.py"),
                            Autograder__sandbox_uid_base=UID_BASE + uid_offset,
                            Autograder__secret_file=os.path.join(root, "secret")))
    return path, work


def write_submissions(root: str, dest: str, assignments=("toy", "toy2"), students=STUDENTS) -> None:
    """dest/<student>/<assignment>.ipynb for every student and assignment (collect's layout)."""
    for a in assignments:
        rel = nbformat.read(os.path.join(root, "course", a, f"{a}.ipynb"), as_version=4)
        for s, (_, sum_src, softmax_src) in students.items():
            os.makedirs(os.path.join(dest, s), exist_ok=True)
            nbformat.write(agfix_cases.notebook(rel, sum_src, softmax_src), os.path.join(dest, s, f"{a}.ipynb"))


def ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def grade_rows(path: str) -> list[tuple]:
    """The rows of a grades.csv, each as sorted (column, value) pairs, sorted: comparable across runs."""
    with open(path, newline="") as csv_file:
        return sorted(tuple(sorted(row.items())) for row in csv.DictReader(csv_file))


def cell_scores(db_url: str) -> dict[tuple[str, str, str, str], tuple]:
    """(assignment, student, notebook, cell) -> (auto score, manual score, needs manual grade) of a gradebook."""
    from nbgrader.api import Gradebook

    from autograder import gradebook

    scores = {}
    with Gradebook(gradebook.sqlalchemy_url(db_url)) as book:
        for assignment in book.assignments:
            for submission in book.assignment_submissions(assignment.name):
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        key = (assignment.name, submission.student.id, notebook.name, grade.name)
                        scores[key] = (grade.auto_score, grade.manual_score, grade.needs_manual_grade)
    return scores


def assert_same_grades_as_one_machine(shard_works: list[str], one_work: str, db_url: str) -> None:
    """The shards' grades.csv rows together, and their shared gradebook's cell scores, are the one-machine run's."""
    merged = sorted(row for work in shard_works for row in grade_rows(os.path.join(work, "grades.csv")))
    assert merged == grade_rows(os.path.join(one_work, "grades.csv"))
    assert cell_scores(db_url) == cell_scores("sqlite:///" + os.path.join(one_work, "gradebook.db"))
