"""The grading status record: one JSON file per (assignment, student) under WORK/status/.

What grading found, for the report, feedback and the next run: the state, flags (things an
instructor should look at, shown in grades.csv) and notes (for the record), and one entry per
notebook (its own state, flags and notes, plus what the sandboxed run measured). `execute` writes
a notebook's entry, `worker` the record, `grade` reads them all, `refused` overlays refusals.
"""

from __future__ import annotations

import json
import os
from typing import Literal, TypedDict

from .atomic import write_json

State = Literal["ok", "partial", "failed", "missing", "broken", "refused"]
DONE: tuple[State, ...] = ("ok", "partial")  # graded: the score counts and the next run may skip it


class NotebookStatus(TypedDict, total=False):
    state: State
    flags: list[str]
    notes: list[str]
    notebook: str  # the rest comes from SandboxedExecute
    sandboxed: bool
    run: dict
    verdict: dict


class Status(TypedDict, total=False):
    student: str
    assignment: str
    state: State
    hash: str | None  # submission_hash of what was graded
    sandboxed: bool
    notebooks: dict[str, NotebookStatus]
    flags: list[str]
    notes: list[str]
    seconds: float
    score: float
    max_score: float
    needs_manual_grade: bool
    cells: dict[str, dict]


def new(student: str, assignment: str, *, hash: str | None, sandboxed: bool, **more) -> Status:
    """A record with no findings yet (`state` is set when grading ends, unless given)."""
    return Status(student=student, assignment=assignment, hash=hash, notebooks={}, flags=[], notes=[],
                  sandboxed=sandboxed, **more)


def new_notebook(state: State = "ok") -> NotebookStatus:
    return NotebookStatus(state=state, flags=[], notes=[])


def path(course, assignment: str, student: str) -> str:
    return os.path.join(course.status, assignment, f"{student}.json")


def load(p: str) -> Status:
    """The record at `p` (OSError if there is none, ValueError if it is not JSON)."""
    with open(p) as f:
        return json.load(f)


def save(p: str, st: Status | NotebookStatus) -> None:
    write_json(p, st)


def load_all(course) -> list[Status]:
    """Every readable record, by assignment then student."""
    out = []
    if os.path.isdir(course.status):
        for a in sorted(os.listdir(course.status)):
            d = os.path.join(course.status, a)
            for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
                if f.endswith(".json"):
                    try:
                        out.append(load(os.path.join(d, f)))
                    except ValueError:
                        pass
    return out


def all_flags(st: Status) -> list[str]:
    """The record's flags and its notebooks' (prefixed with the notebook), unsandboxed first, once each."""
    out = list(st.get("flags", []))
    for nb, e in st.get("notebooks", {}).items():
        out += [f"{nb}: {f}" for f in e.get("flags", [])]
    if not st.get("sandboxed", True):
        out.insert(0, "graded WITHOUT the sandbox")
    return list(dict.fromkeys(out))
