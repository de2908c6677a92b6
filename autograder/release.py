"""`release`: nbgrader generate_assignment --force for every assignment in the source folder."""

from __future__ import annotations

import sys

from .course import Course


def release(course: Course, assignments: list[str] | None = None) -> int:
    import os

    os.makedirs(course.work, exist_ok=True)
    api = course.api()
    names = assignments or course.assignments()
    if not names:
        print(f"no assignments under {course.source}", file=sys.stderr)
        return 1
    bad = 0
    for a in names:
        r = api.generate_assignment(a, force=True)
        ok = bool(r.get("success"))
        bad += not ok
        print(f"{'released' if ok else 'FAILED  '} {a}" + ("" if ok else f": {(r.get('error') or r.get('log') or '').strip().splitlines()[-1:]}"))
    return 1 if bad else 0
