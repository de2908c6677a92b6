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
from .grade import export_csv, statuses
from .worker import _check_feedback, _last_error, _overrides


def feedback(course: Course, assignment: str | None = None, students: list[str] | None = None, quiet: bool = False) -> int:
    todo = [st for st in statuses(course) if st.get("state") in status.DONE
            and (not assignment or st["assignment"] == assignment) and (not students or st["student"] in students)]
    if not todo:
        print("no graded submissions to give feedback on (run `python -m autograder grade` first)", file=sys.stderr)
        return 1
    bad = 0
    with tempfile.TemporaryDirectory(prefix="autograder-feedback-") as tmp:
        for st in todo:
            a, s = st["assignment"], st["student"]
            api = course.api(_overrides(course, course.submitted, tmp, a, 0, not st.get("sandboxed", True)))
            r = api.generate_feedback(a, s, force=True)
            if not r.get("success"):
                bad += 1
                print(f"FAILED  {s} {a}: {_last_error(r)}", file=sys.stderr)
                continue
            st["flags"] = [f for f in st.get("flags", []) if not f.startswith("feedback ")]
            _check_feedback(course, a, s, st, os.path.join(course.autograded, s, a))
            _rewrite_status(course, st)
            if not quiet:
                withheld = [f for f in st["flags"] if f.startswith("feedback ")]
                print(f"feedback {s} {a}" + (f": {withheld[0]}" if withheld else ""))
    export_csv(course)
    return 1 if bad else 0


def _rewrite_status(course: Course, st: dict) -> None:
    status.save(status.path(course, st["assignment"], st["student"]), st)
