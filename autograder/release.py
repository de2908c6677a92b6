"""`release`: nbgrader generate_assignment --force for every assignment in the source folder."""

from __future__ import annotations

import os
import sys

from .course import Course


def generate(api, assignment: str) -> dict | None:
    """nbgrader generate_assignment --force of one assignment: None, or nbgrader's answer when it failed
    (its "error" and "log")."""
    r = api.generate_assignment(assignment, force=True)
    return None if r.get("success") else r


def release(course: Course, assignments: list[str] | None = None) -> int:
    os.makedirs(course.work, exist_ok=True)
    api = course.api()
    names = assignments or course.assignments()
    if not names:
        print(f"no assignments under {course.source}", file=sys.stderr)
        return 1
    bad = 0
    for a in names:
        problem = generate(api, a)
        bad += problem is not None
        print(f"{'released' if problem is None else 'FAILED  '} {a}"
              + ("" if problem is None else f": {(problem.get('error') or problem.get('log') or '').strip().splitlines()[-1:]}"))
    return 1 if bad else 0
