"""`release`: nbgrader generate_assignment --force for every assignment in the source folder."""

from __future__ import annotations

import os
import sys

from .course import Course


def generate(api, assignment: str) -> dict | None:
    """nbgrader generate_assignment --force of one assignment: None, or nbgrader's answer when it failed
    (its "error" and "log")."""
    answer = api.generate_assignment(assignment, force=True)
    return None if answer.get("success") else answer


def release(course: Course, assignments: list[str] | None = None) -> int:
    """Generate every assignment (or those named) into release/; 1 if any failed."""
    os.makedirs(course.work, exist_ok=True)
    api = course.api()
    names = assignments or course.assignments()
    if not names:
        print(f"no assignments under {course.source}", file=sys.stderr)
        return 1
    bad = 0
    for assignment in names:
        problem = generate(api, assignment)
        bad += problem is not None
        if problem is None:
            print(f"released {assignment}")
        else:
            last_line = (problem.get("error") or problem.get("log") or "").strip().splitlines()[-1:]
            print(f"FAILED   {assignment}: {last_line}")
    return 1 if bad else 0
