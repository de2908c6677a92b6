"""`grade`: every collected submission, N worker processes, one CSV at the end.

Crash-safe: the gradebook is backed up first; each (student, assignment) is graded by its own
process with --force and is "done" only when its status file is written, so a killed run
re-run picks up exactly what is missing. Unchanged, already graded submissions are skipped
unless --regrade; seeds come from the instructor secret, so a regrade gives identical grades.
"""

from __future__ import annotations

import csv
import fcntl
import functools
import hashlib
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from . import deathsig, gradebook, status
from .atomic import write_atomic
from .course import Course
from .sandbox import bwrap_problem
from .shard import select as select_shard
from .status import all_flags  # noqa: F401 (part of grade's interface)
from .worker import submission_hash


def backup_gradebook(course: Course) -> str | None:
    return gradebook.backup(course)  # SQLite copy, pg_dump, or a JSON export (autograder/gradebook.py)


def submissions(course: Course, assignment: str | None = None) -> list[tuple[str, str]]:
    out = []
    if not os.path.isdir(course.submitted):
        return out
    wanted = [assignment] if assignment else course.assignments()
    for student in sorted(os.listdir(course.submitted)):
        for a in wanted:
            if os.path.isdir(os.path.join(course.submitted, student, a)):
                out.append((a, student))
    return out


def _ensure_in_gradebook(course: Course, assignments: set[str]) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    missing = []
    if gradebook.exists(course):
        with Gradebook(course.gradebook_url) as gb:
            for a in assignments:
                try:
                    gb.find_assignment(a)
                except MissingEntry:
                    missing.append(a)
    else:
        missing = sorted(assignments)
    if missing:
        from .release import release

        release(course, missing)


def _is_done(course: Course, a: str, s: str) -> bool:
    try:
        st = status.load(status.path(course, a, s))
    except (OSError, ValueError):
        return False
    return st.get("hash") == submission_hash(course, a, s) and st.get("state") in status.DONE and "score" in st


def grade(course: Course, assignment: str | None = None, workers: int = 1, unsafe: bool = False,
          regrade: bool = False, quiet: bool = False, students: list[str] | None = None,
          shard: str | None = None) -> int:
    problem = None if unsafe else bwrap_problem()
    if problem:
        print(f"error: the sandbox cannot start: {problem}.\nRefusing to run student code unsandboxed; "
              "pass --unsafe-no-sandbox to do it anyway (the report will say so).", file=sys.stderr)
        return 2
    if assignment and assignment not in course.assignments():
        print(f"error: no assignment {assignment!r} in {course.source}", file=sys.stderr)
        return 2
    os.makedirs(course.work, exist_ok=True)
    lock = open(os.path.join(course.work, ".grade.lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("error: another grading run is in progress", file=sys.stderr)
        return 2
    if not _no_workers_left(course):
        print("error: workers of an earlier grading run of this course are still running", file=sys.stderr)
        return 2
    scratch_base = os.path.join(tempfile.gettempdir(), "autograder-" + hashlib.sha256(course.work.encode()).hexdigest()[:10])
    shutil.rmtree(scratch_base, ignore_errors=True)  # leftovers of a killed run (we hold the lock)
    os.makedirs(scratch_base, mode=0o711)
    todo = [(a, s) for a, s in submissions(course, assignment) if not students or s in students]
    todo = select_shard(todo, shard)  # --shard K/N: this machine's share (autograder/shard.py)
    _ensure_in_gradebook(course, {a for a, _ in todo})
    gradebook.ensure_students(course, {s for _, s in todo})
    backup = backup_gradebook(course)
    if backup and not quiet:
        print(f"gradebook backed up to {backup}")
    jobs = [(a, s) for a, s in todo if regrade or not _is_done(course, a, s)]
    if not quiet:
        print(f"{len(todo)} submissions, {len(jobs)} to grade with {workers} worker(s)"
              + (" WITHOUT SANDBOX" if unsafe else ""))
    slots: queue.Queue = queue.Queue()
    for k in range(max(1, workers)):
        slots.put(k)
    t0 = time.monotonic()

    def run(job):
        a, s = job
        slot = slots.get()
        try:
            cmd = [sys.executable, "-m", "autograder.worker", "--assignment", a, "--student", s, "--slot", str(slot)]
            if course.config_path:
                cmd += ["--config", os.path.abspath(course.config_path)]
            if unsafe:
                cmd.append("--unsafe")
            for attempt in range(course.settings.retries + 1):
                r = subprocess.run(cmd, capture_output=True, text=True, cwd=course.root,
                                   preexec_fn=functools.partial(deathsig.arm, os.getpid()),
                                   env={**os.environ, "PYTHONPATH": _pythonpath(), "AUTOGRADER_SCRATCH": scratch_base,
                                        "AUTOGRADER_PARENT": str(os.getpid())})
                if r.returncode == 0:
                    break
            if r.returncode != 0:
                _write_failed(course, a, s, r.stderr, unsafe)
            if not quiet:
                line = r.stdout.strip().splitlines()[-1:] or [f"{s} {a}: worker failed"]
                print(line[0], flush=True)
        finally:
            slots.put(slot)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(run, jobs))
    n = export_csv(course)
    shutil.rmtree(scratch_base, ignore_errors=True)
    if not quiet:
        print(f"graded {len(jobs)} in {time.monotonic() - t0:.1f} s; {n} rows in {os.path.join(course.work, 'grades.csv')}")
        print("run `python -m autograder report` for what needs manual grading or review")
    return 0


def _no_workers_left(course: Course, wait: float = 30.0) -> bool:
    """True once no worker of an earlier run holds WORK/.workers.lock (they die with their run;
    this waits out the last second of their dying)."""
    with open(os.path.join(course.work, ".workers.lock"), "a") as f:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(f, fcntl.LOCK_UN)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.1)


def _pythonpath() -> str:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.pathsep.join([here] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


def _write_failed(course: Course, a: str, s: str, stderr: str, unsafe: bool) -> None:
    tail = (stderr or "").strip().splitlines()[-3:]
    st = status.new(s, a, hash=None, sandboxed=not unsafe, state="failed")
    st["flags"].append("the grading worker crashed (not counted as graded; rerun grade): " + " / ".join(tail)[:500])
    status.save(status.path(course, a, s), st)


def statuses(course: Course) -> list[status.Status]:
    return status.load_all(course)


def export_csv(course: Course) -> int:
    """grades.csv: one row per graded submission (scores from the gradebook, manual grades included),
    and one per submission refused at collect (state "refused", the reason in flags)."""
    from nbgrader.api import Gradebook, MissingEntry

    from .refused import merge

    rows = []
    with Gradebook(course.gradebook_url) as gb:
        for st in merge(course, statuses(course)):
            a, s = st["assignment"], st["student"]
            try:
                sub = gb.find_submission(a, s)
                score, mx, manual = sub.score, sub.max_score, sub.needs_manual_grade
            except MissingEntry:
                score, mx, manual = None, None, None
            flags = all_flags(st)
            rows.append({"assignment": a, "student_id": s, "score": score, "max_score": mx,
                         "needs_manual_grade": manual, "state": st.get("state"), "sandboxed": st.get("sandboxed", True),
                         "n_flags": len(flags), "flags": " | ".join(flags), **gradebook.manual_columns(gb, a, s)})
    path = os.path.join(course.work, "grades.csv")

    def write(f) -> None:
        w = csv.DictWriter(f, fieldnames=["assignment", "student_id", "score", "max_score", "needs_manual_grade",
                                          "state", "sandboxed", "n_flags", "flags"] + gradebook.MANUAL_FIELDS)
        w.writeheader()
        w.writerows(rows)
    write_atomic(path, write, newline="")
    return len(rows)
