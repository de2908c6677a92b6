"""`grade`: every collected submission, N worker processes, one CSV at the end.

The route of a result (imports do not show it; each step hands the next one plain data, one way):

1. grade (this module): one long-lived `python -m autograder.worker --serve` process per slot
   (worker_pool.ServedWorker), which grades that slot's (student, assignment) jobs one after another.
2. worker.grade_one: precheck and stage the notebook, then nbgrader autograde with SandboxedExecute.
3. execute.SandboxedExecute: sandbox run of the student's cells and the VISIBLE tests (hidden blocks
   stripped), answer signed on fd 3 (sandbox.Sandbox.run -> SandboxResult, `forged` if unsigned).
4. verdict.trusted_verdict: another sandbox calls the student's functions on the grader's cases; only
   the signed raw answers come back and are compared here with the reference (`judge`).
5. SandboxedExecute._apply: a test cell keeps its points only if its visible part and every governing
   verdict passed; flags and verdicts go to the notebook's status file (staging/<tag>.status/).
6. nbgrader's SaveAutoGrades writes the cell scores into the gradebook; feedback is generated, scrubbed.
7. worker._gather: the status record (status/<A>/<S>.json, written last: the "done" marker) folds in
   the notebook status files and the gradebook scores.
8. export_csv (here): grades.csv from the gradebook scores and the status records' state and flags.

Crash-safe: the gradebook is backed up first; each (student, assignment) is graded by a worker
process with --force and is "done" only when its status file is written, so a killed run
re-run picks up exactly what is missing. Unchanged, already graded submissions are skipped
unless --regrade; seeds come from the instructor secret, so a regrade gives identical grades.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import os
import queue
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from . import gradebook, status
from .atomic import write_atomic
from .course import Course
from .sandbox import bwrap_problem
from .shard import select as select_shard
from .status import all_flags  # noqa: F401 (part of grade's interface)
from .worker import submission_hash
from .worker_pool import ServedWorker


def backup_gradebook(course: Course) -> str | None:
    return gradebook.backup(course)  # SQLite copy, pg_dump, or a JSON export (autograder/gradebook.py)


def submissions(course: Course, assignment: str | None = None) -> list[tuple[str, str]]:
    pairs = []
    if not os.path.isdir(course.submitted):
        return pairs
    wanted = [assignment] if assignment else course.assignments()
    for student in sorted(os.listdir(course.submitted)):
        for name in wanted:
            if os.path.isdir(os.path.join(course.submitted, student, name)):
                pairs.append((name, student))
    return pairs


def _ensure_in_gradebook(course: Course, assignments: set[str]) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    missing = []
    if gradebook.exists(course):
        with Gradebook(course.gradebook_url) as gb:
            for name in assignments:
                try:
                    gb.find_assignment(name)
                except MissingEntry:
                    missing.append(name)
    else:
        missing = sorted(assignments)
    if missing:
        from .release import release

        release(course, missing)


def _is_done(course: Course, assignment: str, student: str) -> bool:
    try:
        record = status.load(status.path(course, assignment, student))
    except (OSError, ValueError):
        return False
    return (record.get("hash") == submission_hash(course, assignment, student) and record.get("state") in status.DONE
            and "score" in record)


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
    work_digest = hashlib.sha256(course.work.encode()).hexdigest()[:10]
    scratch_base = os.path.join(tempfile.gettempdir(), "autograder-" + work_digest)
    shutil.rmtree(scratch_base, ignore_errors=True)  # leftovers of a killed run (we hold the lock)
    os.makedirs(scratch_base, mode=0o711)
    todo = [(name, student) for name, student in submissions(course, assignment) if not students or student in students]
    todo = select_shard(todo, shard)  # --shard K/N: this machine's share (autograder/shard.py)
    _ensure_in_gradebook(course, {name for name, _ in todo})
    gradebook.ensure_students(course, {student for _, student in todo})
    backup = backup_gradebook(course)
    if backup and not quiet:
        print(f"gradebook backed up to {backup}")
    jobs = [(name, student) for name, student in todo if regrade or not _is_done(course, name, student)]
    if not quiet:
        print(f"{len(todo)} submissions, {len(jobs)} to grade with {workers} worker(s)"
              + (" WITHOUT SANDBOX" if unsafe else ""))
    env = {**os.environ, "PYTHONPATH": _pythonpath(), "AUTOGRADER_SCRATCH": scratch_base,
           "AUTOGRADER_PARENT": str(os.getpid())}
    slots: queue.Queue = queue.Queue()
    for k in range(max(1, workers)):
        slots.put(ServedWorker(k, course.config_path, unsafe, course.root, env))
    t0 = time.monotonic()

    def run(job):
        assignment_id, student_id = job
        worker = slots.get()
        try:
            for _attempt in range(course.settings.retries + 1):
                ok, summary, error = worker.grade(assignment_id, student_id)
                if ok:
                    break
            if not ok:
                _write_failed(course, assignment_id, student_id, error, unsafe)
            if not quiet:
                print(summary or f"{student_id} {assignment_id}: worker failed", flush=True)
        finally:
            slots.put(worker)

    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            list(pool.map(run, jobs))
    finally:
        while not slots.empty():
            slots.get().close()
    n_rows = export_csv(course)
    shutil.rmtree(scratch_base, ignore_errors=True)
    if not quiet:
        grades_csv = os.path.join(course.work, "grades.csv")
        print(f"graded {len(jobs)} in {time.monotonic() - t0:.1f} s; {n_rows} rows in {grades_csv}")
        print("run `python -m autograder report` for what needs manual grading or review")
    return 0


def _no_workers_left(course: Course, wait: float = 30.0) -> bool:
    """True once no worker of an earlier run holds WORK/.workers.lock (they die with their run;
    this waits out the last second of their dying)."""
    with open(os.path.join(course.work, ".workers.lock"), "a") as lock_file:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(lock_file, fcntl.LOCK_UN)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.1)


def _pythonpath() -> str:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.pathsep.join([here] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


def _write_failed(course: Course, assignment: str, student: str, stderr: str, unsafe: bool) -> None:
    tail = (stderr or "").strip().splitlines()[-3:]
    record = status.new(student, assignment, hash=None, sandboxed=not unsafe, state="failed")
    record["flags"].append("the grading worker crashed (not counted as graded; rerun grade): " + " / ".join(tail)[:500])
    status.save(status.path(course, assignment, student), record)


def statuses(course: Course) -> list[status.Status]:
    return status.load_all(course)


def export_csv(course: Course) -> int:
    """grades.csv: one row per graded submission (scores from the gradebook, manual grades included),
    and one per submission refused at collect (state "refused", the reason in flags)."""
    from nbgrader.api import Gradebook, MissingEntry

    from .refused import merge

    rows = []
    with Gradebook(course.gradebook_url) as gb:
        for record in merge(course, statuses(course)):
            name, student = record["assignment"], record["student"]
            try:
                submission = gb.find_submission(name, student)
                score, max_score, manual = submission.score, submission.max_score, submission.needs_manual_grade
            except MissingEntry:
                score, max_score, manual = None, None, None
            flags = all_flags(record)
            rows.append({"assignment": name, "student_id": student, "score": score, "max_score": max_score,
                         "needs_manual_grade": manual, "state": record.get("state"),
                         "sandboxed": record.get("sandboxed", True), "n_flags": len(flags), "flags": " | ".join(flags),
                         **gradebook.manual_columns(gb, name, student)})
    path = os.path.join(course.work, "grades.csv")

    def write(out_file) -> None:
        writer = csv.DictWriter(out_file, fieldnames=["assignment", "student_id", "score", "max_score",
                                                      "needs_manual_grade", "state", "sandboxed", "n_flags", "flags"]
                                + gradebook.MANUAL_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    write_atomic(path, write, newline="")
    return len(rows)
