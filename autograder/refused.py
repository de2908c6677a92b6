"""Notebooks that collect refused (with the reason), kept in work/refused.json so that grades.csv and the
report show them: a refusal is never only a line on stdout."""

from __future__ import annotations

import json
import os

from .atomic import write_json
from .course import Course
from .status import Status


def _path(course: Course) -> str:
    """Where the refusals live: work/refused.json."""
    return os.path.join(course.work, "refused.json")


def load(course: Course) -> dict[tuple[str, str], list[str]]:
    """(student, assignment) -> reasons."""
    try:
        raw = json.load(open(_path(course)))
    except (OSError, ValueError):
        return {}
    return {(student, assignment): list(reasons)
            for student, per_assignment in raw.items() for assignment, reasons in per_assignment.items() if reasons}


def update(course: Course, refused: dict[tuple[str, str], list[str]], collected: set[tuple[str, str]]) -> None:
    """This collect's verdicts: refusals recorded, pairs collected cleanly forgotten."""
    current = load(course)
    for key in collected:
        current.pop(key, None)
    current.update(refused)
    by_student: dict = {}
    for (student, assignment), reasons in sorted(current.items()):
        by_student.setdefault(student, {})[assignment] = reasons
    write_json(_path(course), by_student)


def merge(course: Course, records: list[Status]) -> list[Status]:
    """Grading statuses with refusals applied: state "refused" and the reasons as flags; a refused
    submission that was never graded gets a status of its own."""
    refusals = load(course)
    merged = []
    for record in records:
        key = (record.get("student"), record.get("assignment"))
        if key in refusals:
            shown = " ".join(flag for notebook in record.get("notebooks", {}).values()
                             for flag in notebook.get("flags", []))
            new = [f"refused at collect: {reason}" for reason in refusals.pop(key)
                   if f"refused at collect: {reason}" not in shown]
            record = {**record, "state": "refused", "flags": new + list(record.get("flags", []))}
        merged.append(record)
    for (student, assignment), reasons in sorted(refusals.items()):
        merged.append(Status(student=student, assignment=assignment, state="refused", notebooks={}, notes=[],
                             flags=[f"refused at collect: {reason}" for reason in reasons]))
    return merged
