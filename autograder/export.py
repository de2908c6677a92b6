"""`export --format canvas|moodle|csv`: the gradebook's totals (manual grades included) as an LMS grade import.

- canvas: Canvas's gradebook import CSV: Student, ID, SIS User ID, SIS Login ID, Section, then one column per
  assignment (named as in Canvas's export, "Name (assignment id)", via the column mapping; a new name makes
  Canvas create the assignment), and the "Points Possible" row of Canvas's own export.
- moodle: Moodle's CSV grade import: First name, Last name, the identifying column (ID number, Email address or
  Username, as in Moodle's export), then one column per grade item; mapped to the grade items at import.
- csv: student_id and one column per assignment, no mapping needed.

A student with no submission for an assignment gets an empty cell (both LMSs leave the grade alone), not 0.
The LMS's students come from the instructor's mapping file (autograder/lms_mapping.py).
"""

from __future__ import annotations

import csv
import os
import sys

from .atomic import write_atomic
from .course import Course
from .lms_mapping import MappingError, columns, students

CANVAS_FIXED = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CANVAS_POINTS = "Points Possible"
MOODLE_ID_HEADERS = {"idnumber": "ID number", "email": "Email address", "username": "Username"}


def totals(course: Course) -> tuple[list[str], dict[str, float], dict[tuple[str, str], float]]:
    """(assignments, assignment -> max score, (assignment, student) -> score) from the gradebook."""
    from nbgrader.api import Gradebook

    scores, maxima = {}, {}
    with Gradebook(course.gradebook_url) as gb:
        assignments = sorted(a.name for a in gb.assignments)
        for a in gb.assignments:
            maxima[a.name] = float(a.max_score or 0)
            for sub in gb.assignment_submissions(a.name):
                scores[a.name, sub.student.id] = float(sub.score or 0)
    return assignments, maxima, scores


def number(value: float | None) -> str:
    """A score as the LMSs read it: plain decimal, no exponent, empty when there is none."""
    if value is None:
        return ""
    text = f"{round(value, 4):.4f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def canvas_table(mapping: list[dict], assignments, names, maxima, scores) -> list[list[str]]:
    header = CANVAS_FIXED + [names[a] for a in assignments]
    points = ["    " + CANVAS_POINTS, "", "", "", ""] + [number(maxima[a]) for a in assignments]
    rows = [[m["name"], m["canvas_id"], m["sis_user_id"], m["sis_login_id"], m["section"]]
            + [number(scores.get((a, m["student_id"]))) for a in assignments] for m in mapping]
    return [header, points] + rows


def moodle_table(mapping: list[dict], assignments, names, scores) -> list[list[str]]:
    key = mapping[0]["lms_key"]
    header = ["First name", "Last name", MOODLE_ID_HEADERS[key]] + [names[a] for a in assignments]
    rows = [[m["first_name"], m["last_name"], m[key]] + [number(scores.get((a, m["student_id"]))) for a in assignments]
            for m in mapping]
    return [header] + rows


def plain_table(assignments, names, scores) -> list[list[str]]:
    people = sorted({s for _, s in scores})
    return [["student_id"] + [names[a] for a in assignments]] + [
        [s] + [number(scores.get((a, s))) for a in assignments] for s in people]


def export(course: Course, fmt: str, mapping_path: str | None = None, columns_path: str | None = None,
           out: str | None = None) -> int:
    assignments, maxima, scores = totals(course)
    if not assignments:
        print("error: the gradebook has no assignments (run `python -m autograder release` and `grade`)",
              file=sys.stderr)
        return 2
    try:
        names = columns(columns_path, assignments)
        if fmt == "csv":
            table = plain_table(assignments, names, scores)
        else:
            if not mapping_path:
                raise MappingError(f"--format {fmt} needs --mapping FILE: a CSV mapping our student ids to the LMS's")
            mapping = students(mapping_path, fmt)
            unmapped = sorted({s for _, s in scores} - {m["student_id"] for m in mapping})
            if unmapped:
                raise MappingError(f"student mapping {mapping_path}: no row for {len(unmapped)} graded student(s): "
                                   f"{', '.join(unmapped[:10])}{' ...' if len(unmapped) > 10 else ''}")
            table = (canvas_table(mapping, assignments, names, maxima, scores) if fmt == "canvas"
                     else moodle_table(mapping, assignments, names, scores))
    except MappingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    path = out or os.path.join(course.work, f"export-{fmt}.csv")
    write_atomic(path, lambda f: csv.writer(f, quoting=csv.QUOTE_MINIMAL).writerows(table), newline="",
                 encoding="utf-8")
    print(f"{len(table) - (2 if fmt == 'canvas' else 1)} students x {len(assignments)} assignments: {path}")
    return 0
