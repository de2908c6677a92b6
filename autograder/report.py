"""`report`: what needs manual grading or review, with the reason for every flag.

Scores are read from the gradebook, so manual grades given in formgrader since `grade` ran
count (total = automatic + manual); grades.csv is rewritten with them.
"""

from __future__ import annotations

import os

from . import gradebook
from .course import Course
from .grade import export_csv, statuses
from .refused import merge
from .status import all_flags


def _current(course: Course, records: list[dict]) -> dict:
    """(assignment, student) -> score, max and manual columns, as the gradebook has them now."""
    from nbgrader.api import Gradebook, MissingEntry

    scores = {}
    with Gradebook(course.gradebook_url) as book:
        for record in records:
            assignment, student = record["assignment"], record["student"]
            try:
                submission = book.find_submission(assignment, student)
            except MissingEntry:
                continue
            scores[assignment, student] = {"score": submission.score, "max_score": submission.max_score,
                                           **gradebook.manual_columns(book, assignment, student)}
    return scores


def report(course: Course, out=print) -> int:
    """Print each submission that needs manual grading or review, with why; rewrite grades.csv."""
    records = merge(course, statuses(course))
    if not records:
        out("nothing graded yet (run `python -m autograder grade`)")
        return 0
    now = _current(course, records)
    unsandboxed = [record for record in records if not record.get("sandboxed", True)]
    if unsandboxed:
        out(f"WARNING: {len(unsandboxed)} submissions were graded WITHOUT the sandbox (--unsafe-no-sandbox)")
    n_review = n_manual = 0
    for record in records:
        flags = all_flags(record)
        in_gradebook = now.get((record["assignment"], record["student"]))
        manual = (in_gradebook["ungraded"].split() if in_gradebook else
                  [cell_id for cell_id, cell in record.get("cells", {}).items() if cell.get("needs_manual_grade")])
        if not flags and not manual and record.get("state") == "ok":
            continue
        score = in_gradebook["score"] if in_gradebook else record.get("score")
        max_score = in_gradebook["max_score"] if in_gradebook else record.get("max_score", "-")
        split = (f" (automatic {in_gradebook['auto_score']:g} + manual {in_gradebook['manual_score']:g})"
                 if in_gradebook else "")
        out(f"{record['student']} / {record['assignment']}: state {record.get('state')}, score "
            f"{'-' if score is None else f'{score:g}'} of {max_score}{split}")
        if manual:
            n_manual += 1
            out(f"  manual grading: {', '.join(manual)}")
        for flag in flags:
            out(f"  review: {flag}")
        n_review += bool(flags)
    out(f"{len(records)} graded submissions; {n_manual} need manual grading, {n_review} flagged for review")
    n_rows = export_csv(course)
    out(f"{n_rows} rows in {os.path.join(course.work, 'grades.csv')} (manual grades included)")
    return 0
