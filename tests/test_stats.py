"""`python -m autograder stats` against an independent computation, and its page in Debian's chromium.

The class (tests/hostile/synthetic_class.py) has the real course's days and graded cells with seeded random
scores written straight into a gradebook: grading a dozen students through the whole course would take many
minutes. Day numbers are recomputed with numpy from grades.csv, exercise numbers from the SQLite gradebook
read with plain SQL, and failure counts are the messages the builder planted.
"""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
from collections import Counter, defaultdict

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # the class is written through nbgrader's ORM: a minute or more on a busy machine

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "hostile"))

import synthetic_class  # noqa: E402

REPO = synthetic_class.REPO
GRADES_SQL = """
SELECT a.name, n.name, bc.name, gc.max_score, sa.student_id, g.auto_score, g.manual_score
FROM grade g JOIN base_cell bc ON g.cell_id = bc.id JOIN grade_cells gc ON gc.id = bc.id
JOIN submitted_notebook sn ON g.notebook_id = sn.id JOIN notebook n ON sn.notebook_id = n.id
JOIN submitted_assignment sa ON sn.assignment_id = sa.id JOIN assignment a ON sa.assignment_id = a.id
"""


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """The class, and `stats` run on it through the command line."""
    root = str(tmp_path_factory.mktemp("stats-class"))
    config, planted = synthetic_class.build(root, n_students=9, seed=3)
    out = os.path.join(root, "report")
    r = subprocess.run([sys.executable, "-m", "autograder", "--config", config, "stats", "--out", out], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return {"root": root, "work": os.path.join(root, "work"), "out": out, "planted": planted}


def read_stats(graded_class) -> list[dict]:
    with open(os.path.join(graded_class["out"], "stats.csv"), newline="") as f:
        return list(csv.DictReader(f))


def grades_by_day(graded_class) -> dict[str, dict[str, tuple[float, float]]]:
    """day -> student -> (score, max) from grades.csv."""
    out: dict = defaultdict(dict)
    with open(os.path.join(graded_class["work"], "grades.csv"), newline="") as f:
        for row in csv.DictReader(f):
            if row["score"]:
                out[row["assignment"]][row["student_id"]] = (float(row["score"]), float(row["max_score"]))
    return out


def cell_scores(graded_class) -> dict[tuple[str, str], dict]:
    """(day, grade id) -> {"max": points, "scores": {student: points}} straight from the gradebook's tables."""
    out: dict = {}
    db = sqlite3.connect(os.path.join(graded_class["work"], "gradebook.db"))
    for day, _notebook, cell, max_score, student, auto, manual in db.execute(GRADES_SQL):
        entry = out.setdefault((day, cell), {"max": max_score, "scores": {}})
        entry["scores"][student] = manual if manual is not None else auto if auto is not None else 0.0
    db.close()
    return out


def close(text: str, expected) -> bool:
    if expected is None:
        return text == ""
    return text != "" and abs(float(text) - expected) <= 1e-6 * max(1.0, abs(expected))


def test_day_numbers_equal_grades_csv(graded_class):
    rows = {r["assignment"]: r for r in read_stats(graded_class) if r["level"] == "day"}
    by_day = grades_by_day(graded_class)
    assert sorted(rows) == sorted(by_day) == synthetic_class.days()  # every day of the class
    for day, students in by_day.items():
        scores = np.array([s for s, _ in students.values()])
        top = max(m for _, m in students.values())
        row = rows[day]
        assert int(row["n"]) == len(scores), day
        assert close(row["mean"], scores.mean()), (day, row["mean"], scores.mean())
        assert close(row["median"], float(np.median(scores))), (day, row["median"])
        assert close(row["full_marks_share"], float(np.mean(scores >= top))), (day, row["full_marks_share"])


def test_exercise_numbers_equal_the_gradebook(graded_class):
    rows = {(r["assignment"], r["exercise"]): r for r in read_stats(graded_class) if r["level"] == "exercise"}
    cells = cell_scores(graded_class)
    totals = grades_by_day(graded_class)
    assert sorted(rows) == sorted(cells)
    checked_discrimination = 0
    for (day, cell), entry in cells.items():
        row, students = rows[day, cell], sorted(entry["scores"])
        own = np.array([entry["scores"][s] for s in students])
        rest = np.array([totals[day][s][0] for s in students]) - own
        assert int(row["n"]) == len(own) and close(row["max_score"], entry["max"]), (day, cell)
        assert close(row["mean"], own.mean()) and close(row["median"], float(np.median(own))), (day, cell, row)
        assert close(row["full_marks_share"], float(np.mean(own >= entry["max"]))), (day, cell, row)
        assert close(row["difficulty"], own.mean() / entry["max"]), (day, cell, row)
        if own.std() > 0 and rest.std() > 0:
            assert close(row["discrimination"], float(np.corrcoef(own, rest)[0, 1])), (day, cell, row)
            checked_discrimination += 1
        else:  # a constant score correlates with nothing
            assert row["discrimination"] == "", (day, cell, row)
    assert checked_discrimination > 20


def test_failure_messages_are_counted(graded_class):
    got: dict = defaultdict(Counter)
    for r in read_stats(graded_class):
        if r["level"] == "failure":
            got[r["assignment"], r["exercise"]][r["message"]] = int(r["count"])
    assert set(got) == set(graded_class["planted"])
    for key, planted in graded_class["planted"].items():
        assert got[key] == Counter(dict(planted.most_common(5))), key  # (3 messages per cell: all of them)


def test_nothing_graded_says_so(tmp_path):
    config, _ = synthetic_class.build(str(tmp_path), n_students=0, only_days=["02_attention"])
    r = subprocess.run([sys.executable, "-m", "autograder", "--config", config, "stats"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "nothing graded yet" in r.stdout


# ------------------------------------------------------------------ the page in a browser

READ_PAGE = """() => [...document.querySelectorAll('section[data-day]')].map(s => ({
    day: s.dataset.day,
    summary: Object.fromEntries([...s.querySelectorAll('tr.day-row td')].map(td => [td.dataset.field, td.textContent])),
    images: [...s.querySelectorAll('img')].map(i => i.complete && i.naturalWidth > 0),
    exercises: s.querySelectorAll('table.exercises tr[data-exercise]').length}))"""


def test_page_shows_every_day_with_the_numbers_of_grades_csv(graded_class, browser):
    page = browser.new_page()
    problems, requests = [], []
    page.on("console", lambda m: m.type in ("error", "warning") and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    path = os.path.join(graded_class["out"], "stats.html")
    page.goto("file://" + path)
    sections = page.evaluate(READ_PAGE)
    page.close()
    assert problems == [], problems
    assert all(u.startswith(("file:", "data:")) for u in requests), requests  # self-contained
    by_day = grades_by_day(graded_class)
    assert [s["day"] for s in sections] == sorted(by_day)
    for section in sections:
        scores = np.array([s for s, _ in by_day[section["day"]].values()])
        shown = section["summary"]
        assert int(shown["n"]) == len(scores)
        assert abs(float(shown["mean"]) - scores.mean()) <= 1e-3 * max(1, scores.mean()), (section["day"], shown)
        assert abs(float(shown["median"]) - float(np.median(scores))) <= 1e-3 * max(1, scores.mean()), shown
        assert section["images"] and all(section["images"]), section  # the plots decoded
        assert section["exercises"] == len(synthetic_class.graded_cells(section["day"]))
