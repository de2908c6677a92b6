"""Notebooks that collect refused (with the reason), kept in work/refused.json so that grades.csv and the
report show them: a refusal is never only a line on stdout."""

from __future__ import annotations

import json
import os

from .atomic import write_json
from .course import Course
from .status import Status


def _path(course: Course) -> str:
    return os.path.join(course.work, "refused.json")


def load(course: Course) -> dict[tuple[str, str], list[str]]:
    """(student, assignment) -> reasons."""
    try:
        raw = json.load(open(_path(course)))
    except (OSError, ValueError):
        return {}
    return {(s, a): list(r) for s, per in raw.items() for a, r in per.items() if r}


def update(course: Course, refused: dict[tuple[str, str], list[str]], collected: set[tuple[str, str]]) -> None:
    """This collect's verdicts: refusals recorded, pairs collected cleanly forgotten."""
    cur = load(course)
    for key in collected:
        cur.pop(key, None)
    cur.update(refused)
    out: dict = {}
    for (s, a), reasons in sorted(cur.items()):
        out.setdefault(s, {})[a] = reasons
    write_json(_path(course), out)


def merge(course: Course, sts: list[Status]) -> list[Status]:
    """Grading statuses with refusals applied: state "refused" and the reasons as flags; a refused
    submission that was never graded gets a status of its own."""
    ref = load(course)
    out = []
    for st in sts:
        key = (st.get("student"), st.get("assignment"))
        if key in ref:
            shown = " ".join(f for e in st.get("notebooks", {}).values() for f in e.get("flags", []))
            new = [f"refused at collect: {r}" for r in ref.pop(key) if f"refused at collect: {r}" not in shown]
            st = {**st, "state": "refused", "flags": new + list(st.get("flags", []))}
        out.append(st)
    for (s, a), reasons in sorted(ref.items()):
        out.append(Status(student=s, assignment=a, state="refused", notebooks={}, notes=[],
                          flags=[f"refused at collect: {r}" for r in reasons]))
    return out
