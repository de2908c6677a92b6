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
    with Gradebook(course.gradebook_url) as book:
        assignments = sorted(assignment.name for assignment in book.assignments)
        for assignment in book.assignments:
            maxima[assignment.name] = float(assignment.max_score or 0)
            for submission in book.assignment_submissions(assignment.name):
                scores[assignment.name, submission.student.id] = float(submission.score or 0)
    return assignments, maxima, scores


def number(value: float | None) -> str:
    """A score as the LMSs read it: plain decimal, no exponent, empty when there is none."""
    if value is None:
        return ""
    text = f"{round(value, 4):.4f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def canvas_table(mapping: list[dict], assignments, names, maxima, scores) -> list[list[str]]:
    """Canvas's grade import: its fixed columns, a Points Possible row, then one row per mapped student."""
    header = CANVAS_FIXED + [names[assignment] for assignment in assignments]
    points = ["    " + CANVAS_POINTS, "", "", "", ""] + [number(maxima[assignment]) for assignment in assignments]
    rows = [[person["name"], person["canvas_id"], person["sis_user_id"], person["sis_login_id"], person["section"]]
            + [number(scores.get((assignment, person["student_id"]))) for assignment in assignments]
            for person in mapping]
    return [header, points] + rows


def moodle_table(mapping: list[dict], assignments, names, scores) -> list[list[str]]:
    """Moodle's grade import: names, the identifier the mapping uses, then one column per assignment."""
    key = mapping[0]["lms_key"]
    header = ["First name", "Last name", MOODLE_ID_HEADERS[key]] + [names[assignment] for assignment in assignments]
    rows = [[person["first_name"], person["last_name"], person[key]]
            + [number(scores.get((assignment, person["student_id"]))) for assignment in assignments]
            for person in mapping]
    return [header] + rows


def plain_table(assignments, names, scores) -> list[list[str]]:
    """A plain CSV: student_id, then one column per assignment."""
    people = sorted({student for _, student in scores})
    return [["student_id"] + [names[assignment] for assignment in assignments]] + [
        [student] + [number(scores.get((assignment, student))) for assignment in assignments] for student in people]


def export(course: Course, fmt: str, mapping_path: str | None = None, columns_path: str | None = None,
           out: str | None = None) -> int:
    """Write the gradebook's totals as an LMS import (canvas, moodle) or a plain CSV; 2 on a mapping error."""
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
            unmapped = sorted({student for _, student in scores} - {person["student_id"] for person in mapping})
            if unmapped:
                raise MappingError(f"student mapping {mapping_path}: no row for {len(unmapped)} graded student(s): "
                                   f"{', '.join(unmapped[:10])}{' ...' if len(unmapped) > 10 else ''}")
            table = (canvas_table(mapping, assignments, names, maxima, scores) if fmt == "canvas"
                     else moodle_table(mapping, assignments, names, scores))
    except MappingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    path = out or os.path.join(course.work, f"export-{fmt}.csv")
    write_atomic(path, lambda csv_file: csv.writer(csv_file, quoting=csv.QUOTE_MINIMAL).writerows(table), newline="",
                 encoding="utf-8")
    print(f"{len(table) - (2 if fmt == 'canvas' else 1)} students x {len(assignments)} assignments: {path}")
    return 0
