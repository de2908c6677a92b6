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
    """Where one submission's status record lives."""
    return os.path.join(course.status, assignment, f"{student}.json")


def load(record_path: str) -> Status:
    """The record at `record_path` (OSError if there is none, ValueError if it is not JSON)."""
    with open(record_path) as record_file:
        return json.load(record_file)


def save(record_path: str, record: Status | NotebookStatus) -> None:
    """Write a record atomically (a reader never sees half of one)."""
    write_json(record_path, record)


def load_all(course) -> list[Status]:
    """Every readable record, by assignment then student."""
    records = []
    if os.path.isdir(course.status):
        for assignment in sorted(os.listdir(course.status)):
            folder = os.path.join(course.status, assignment)
            for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
                if name.endswith(".json"):
                    try:
                        records.append(load(os.path.join(folder, name)))
                    except ValueError:
                        pass
    return records


def all_flags(record: Status) -> list[str]:
    """The record's flags and its notebooks' (prefixed with the notebook), unsandboxed first, once each."""
    flags = list(record.get("flags", []))
    for notebook, notebook_record in record.get("notebooks", {}).items():
        flags += [f"{notebook}: {flag}" for flag in notebook_record.get("flags", [])]
    if not record.get("sandboxed", True):
        flags.insert(0, "graded WITHOUT the sandbox")
    return list(dict.fromkeys(flags))
