"""`feedback`: regenerate the students' feedback from the gradebook, e.g. after manual grading.

Uses the very configuration a grading worker uses (its GenerateFeedback preprocessors: hidden
tests cut, student HTML made inert where the worker does so) and the worker's last check,
which withholds a feedback file that still shows a hidden-test line. No student code runs.
"""

from __future__ import annotations

import os
import sys
import tempfile

from . import status
from .course import Course
from .feedback_safety.final_audit import audit_feedback
from .grade import export_csv, statuses
from .worker import _last_error, _overrides


def feedback(course: Course, assignment: str | None = None, students: list[str] | None = None,
             quiet: bool = False) -> int:
    """Regenerate the feedback of every graded submission (or those of one assignment or some students)."""
    todo = [record for record in statuses(course) if record.get("state") in status.DONE
            and (not assignment or record["assignment"] == assignment)
            and (not students or record["student"] in students)]
    if not todo:
        print("no graded submissions to give feedback on (run `python -m autograder grade` first)", file=sys.stderr)
        return 1
    bad = 0
    with tempfile.TemporaryDirectory(prefix="autograder-feedback-") as tmp:
        for record in todo:
            name, student = record["assignment"], record["student"]
            api = course.api(_overrides(course, course.submitted, tmp, name, 0, not record.get("sandboxed", True)))
            answer = api.generate_feedback(name, student, force=True)
            if not answer.get("success"):
                bad += 1
                print(f"FAILED  {student} {name}: {_last_error(answer)}", file=sys.stderr)
                continue
            record["flags"] = [flag for flag in record.get("flags", []) if not flag.startswith("feedback ")]
            audit_feedback(course, name, student, record, os.path.join(course.autograded, student, name))
            _rewrite_status(course, record)
            if not quiet:
                withheld = [flag for flag in record["flags"] if flag.startswith("feedback ")]
                print(f"feedback {student} {name}" + (f": {withheld[0]}" if withheld else ""))
    export_csv(course)
    return 1 if bad else 0


def _rewrite_status(course: Course, record: dict) -> None:
    """Save a status record (its feedback flags updated) where it was read from."""
    status.save(status.path(course, record["assignment"], record["student"]), record)
