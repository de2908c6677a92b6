"""`python -m autograder export`: each format parsed against its documented header rules, scores checked against
the gradebook read with plain SQL, missing submissions empty (not 0), and bad mapping files named.

Rules checked (Canvas Instructor Guide, "How do I import grades in the Gradebook?", and Canvas's own gradebook
export; Moodle docs, "Import grades" / CSV import): RFC 4180 CSV in UTF-8 with a mandatory header row;
Canvas: the columns Student, ID, SIS User ID, SIS Login ID, Section first, then one column per assignment,
an optional "Points Possible" row right after the header, ID numeric, grades numeric or empty; Moodle: one column
identifying the user (ID number, Email address or Username) whose values are unique, then grade item columns
with unique names, grades numeric or empty (an empty cell leaves the grade alone).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import sqlite3
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "hostile"))

import synthetic_class  # noqa: E402

REPO = synthetic_class.REPO
DAYS = ["02_attention", "05_label_smoothing", "07_rope"]
TOTALS_SQL = """
SELECT a.name, sa.student_id, SUM(COALESCE(g.manual_score, g.auto_score, 0))
FROM grade g JOIN submitted_notebook sn ON g.notebook_id = sn.id
JOIN submitted_assignment sa ON sn.assignment_id = sa.id JOIN assignment a ON sa.assignment_id = a.id
GROUP BY a.name, sa.student_id
"""
MAX_SQL = """SELECT a.name, SUM(gc.max_score) FROM grade_cells gc JOIN base_cell bc ON gc.id = bc.id
JOIN notebook n ON bc.notebook_id = n.id JOIN assignment a ON n.assignment_id = a.id GROUP BY a.name"""


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    root = tmp_path_factory.mktemp("export-class")
    config, _ = synthetic_class.build(str(root), n_students=7, seed=5, only_days=DAYS)
    db = sqlite3.connect(str(root / "work" / "gradebook.db"))
    totals = {(a, s): total for a, s, total in db.execute(TOTALS_SQL)}
    maxima = dict(db.execute(MAX_SQL))
    db.close()
    students = [f"student{k:02d}" for k in range(7)]
    assert any((a, s) not in totals for a in DAYS for s in students), "the class should miss a submission"
    return {"root": root, "config": config, "totals": totals, "maxima": maxima, "students": students}


def cli(klass, *args, in_process=True):
    """`python -m autograder export ARGS`: in this process (fast), or as a real command."""
    argv = ["--config", klass["config"], "export", *args]
    if not in_process:
        return subprocess.run([sys.executable, "-m", "autograder", *argv], cwd=REPO, capture_output=True, text=True,
                              timeout=300)
    from autograder.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def write(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return str(path)


def canvas_mapping(klass, path):
    rows = [["student_id", "name", "canvas_id", "sis_user_id", "sis_login_id", "section"]]
    for k, s in enumerate(klass["students"] + ["student99"]):  # student99 is enrolled but handed nothing in
        rows.append([s, f'Lovelace{k}, "Ada" {k}', str(1000 + k), f"SIS{k:04d}", f"login{k}", "Section A"])
    return write(path, rows)


def read(path):
    with open(path, newline="", encoding="utf-8") as f:
        raw = f.read()
    assert "\r\n" in raw or raw.count("\n") >= 1
    return list(csv.reader(raw.splitlines()))


def is_grade(cell: str) -> bool:
    if cell == "":
        return True
    try:
        float(cell)
    except ValueError:
        return False
    return "e" not in cell.lower()


def test_canvas_follows_the_import_rules_and_carries_the_gradebook(klass, tmp_path):
    mapping = canvas_mapping(klass, tmp_path / "roster.csv")
    columns = write(tmp_path / "columns.csv", [["assignment", "column"], ["02_attention", "Attention (4711)"]])
    out = tmp_path / "canvas.csv"
    r = cli(klass, "--format", "canvas", "--mapping", mapping, "--columns", columns, "--out", str(out),
            in_process=False)
    assert r.returncode == 0, r.stdout + r.stderr
    table = read(out)
    header, points, body = table[0], table[1], table[2:]
    assert header[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert header[5:] == ["Attention (4711)", "05_label_smoothing", "07_rope"]
    assert len(set(header)) == len(header) and all(len(row) == len(header) for row in table)
    assert points[0].strip() == "Points Possible" and points[1:5] == ["", "", "", ""]
    assert [float(p) for p in points[5:]] == pytest.approx([klass["maxima"][d] for d in DAYS])
    roster = {row[0]: row for row in csv.reader(open(mapping))}
    assert len(body) == len(klass["students"]) + 1
    for row in body:
        assert row[1].isdigit() and all(is_grade(c) for c in row[5:]), row
        student = next(s for s, m in roster.items() if m[2] == row[1])
        assert row[0] == roster[student][1] and row[2:5] == roster[student][3:6]  # the name with its comma and quotes
        for day, cell in zip(DAYS, row[5:]):
            expected = klass["totals"].get((day, student))
            if expected is None:
                assert cell == "", (student, day, cell)  # missing: empty, never 0
            else:
                assert cell != "" and float(cell) == pytest.approx(expected), (student, day, cell)


def test_moodle_follows_the_import_rules(klass, tmp_path):
    rows = [["student_id", "first_name", "last_name", "email"]]
    rows += [[s, f"First{k}", f"Last{k}", f"{s}@uni.example"] for k, s in enumerate(klass["students"])]
    out = tmp_path / "moodle.csv"
    r = cli(klass, "--format", "moodle", "--mapping", write(tmp_path / "m.csv", rows), "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    header, *body = read(out)
    assert header == ["First name", "Last name", "Email address"] + DAYS
    ids = [row[2] for row in body]
    assert len(set(ids)) == len(ids) == len(klass["students"]) and all(ids)
    for row in body:
        student = row[2].split("@")[0]
        assert all(is_grade(c) for c in row[3:])
        for day, cell in zip(DAYS, row[3:]):
            expected = klass["totals"].get((day, student))
            assert (cell == "") if expected is None else float(cell) == pytest.approx(expected), (student, day, cell)


def test_plain_csv_needs_no_mapping(klass, tmp_path):
    out = tmp_path / "plain.csv"
    r = cli(klass, "--format", "csv", "--out", str(out))
    assert r.returncode == 0, r.stderr
    header, *body = read(out)
    assert header == ["student_id"] + DAYS
    got = {(day, row[0]): cell for row in body for day, cell in zip(DAYS, row[1:])}
    for (day, student), cell in got.items():
        expected = klass["totals"].get((day, student))
        assert (cell == "") if expected is None else float(cell) == pytest.approx(expected)
    assert {k for k, v in got.items() if v != ""} == set(klass["totals"])


BAD_MAPPINGS = [
    ("no_file", None, "no such file"),
    ("missing_column", [["student_id", "name"], ["student00", "A"]], "missing column(s) canvas_id"),
    ("duplicate_student", [["student_id", "name", "canvas_id"], ["student00", "A", "1"], ["student00", "B", "2"]],
     "line 3: student_id 'student00' again (first on line 2)"),
    ("duplicate_lms_id", [["student_id", "name", "canvas_id"], ["student00", "A", "1"], ["student01", "B", "1"]],
     "line 3: canvas_id '1' again"),
    ("not_numeric", [["student_id", "name", "canvas_id"], ["student00", "A", "abc"]],
     "line 2: canvas_id 'abc' is not a number"),
    ("empty_id", [["student_id", "name", "canvas_id"], ["", "A", "1"]], "line 2: empty student_id"),
    ("unmapped", [["student_id", "name", "canvas_id"], ["student00", "A", "1"]],
     "no row for 6 graded student(s): student01"),
    ("extra_field", [["student_id", "name", "canvas_id"], ["student00", "A", "1", "oops"]], "line 2: more fields"),
]


@pytest.mark.parametrize("case,rows,message", BAD_MAPPINGS, ids=[c[0] for c in BAD_MAPPINGS])
def test_a_bad_mapping_file_is_named_with_the_problem(klass, tmp_path, case, rows, message):
    path = str(tmp_path / f"{case}.csv")
    if rows is not None:
        write(path, rows)
    out = tmp_path / "never.csv"
    r = cli(klass, "--format", "canvas", "--mapping", path, "--out", str(out))
    assert r.returncode == 2 and message in r.stderr and path in r.stderr, r.stderr
    assert not out.exists()


def test_other_bad_inputs(klass, tmp_path):
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("student_id,name,canvas_id\nstudent00,Zoë,1\n".encode("latin-1"))
    r = cli(klass, "--format", "canvas", "--mapping", str(latin))
    assert r.returncode == 2 and "not UTF-8" in r.stderr
    no_id = write(tmp_path / "noid.csv", [["student_id", "first_name"], ["student00", "A"]])
    r = cli(klass, "--format", "moodle", "--mapping", no_id)
    assert r.returncode == 2 and "identifying the user" in r.stderr
    r = cli(klass, "--format", "canvas")
    assert r.returncode == 2 and "needs --mapping" in r.stderr
    columns = write(tmp_path / "cols.csv", [["assignment", "column"], ["99_nope", "X"]])
    r = cli(klass, "--format", "csv", "--columns", columns)
    assert r.returncode == 2 and "no assignment '99_nope'" in r.stderr
    columns = write(tmp_path / "cols2.csv", [["assignment", "column"], ["02_attention", "07_rope"]])
    r = cli(klass, "--format", "csv", "--columns", columns)
    assert r.returncode == 2 and "two assignments map to the column '07_rope'" in r.stderr
