"""Grade ONE student's ONE assignment at a time, in a worker process (the unit of parallelism and retry).

`python -m autograder.worker --config C --assignment A --student S --slot K [--unsafe]` grades one;
`--serve` grades the jobs read from stdin one after another (`grade` keeps one per slot: worker_pool.py).
stages the repaired notebooks, runs nbgrader autograde (--force, so a half-written folder from
a killed run is replaced) with `SandboxedExecute`, generates scrubbed feedback, and writes
status/<A>/<S>.json last: that file is the "done" marker.
"""

from __future__ import annotations

if __name__ == "__main__":  # first thing, before any import: die with the grading run that started us
    import ctypes as _ctypes
    import os as _os

    _ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG = SIGKILL
    if _os.environ.get("AUTOGRADER_PARENT") and _os.getppid() != int(_os.environ["AUTOGRADER_PARENT"]):
        _os._exit(3)  # the grading run died before the signal was armed: orphaned already

import argparse
import glob
import hashlib
import json
import os
import shutil
import sys
import time

import nbformat
from traitlets.config import Config

from . import status as status_record
from .course import Course
from .feedback_safety.final_audit import audit_feedback
from .precheck import precheck


def submission_hash(course: Course, assignment: str, student: str) -> str:
    """Identifies what was graded: the submitted notebooks, the release and the settings."""
    digest = hashlib.sha256()
    for nb_id in course.notebooks(assignment):
        for base in (os.path.join(course.submitted, student, assignment), os.path.join(course.release, assignment)):
            path = os.path.join(base, f"{nb_id}.ipynb")
            digest.update(path.encode())
            digest.update(open(path, "rb").read() if os.path.exists(path) else b"<missing>")
    digest.update(json.dumps(course.settings.trait_values(), sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _overrides(course: Course, staging: str, status_tmp: str, assignment: str, slot: int, unsafe: bool) -> Config:
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        IgnorePattern,
        LimitOutput,
        SaveAutoGrades,
    )

    from .execute import SandboxedExecute
    from .feedback_safety.hidden_tests import ScrubHiddenTests

    config = Config()
    config.CourseDirectory.submitted_directory = staging
    config.CourseDirectory.db_url = course.gradebook_url
    config.Autograde.autograde_preprocessors = [SandboxedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                           SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    config.OverwriteCells.add_missing_cells = True
    config.SandboxedExecute.slot = slot
    config.SandboxedExecute.unsafe = unsafe
    config.SandboxedExecute.status_dir = status_tmp
    config.SandboxedExecute.release_dir = os.path.join(course.release, assignment)
    config.SandboxedExecute.secret_file = course.secret_file
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades

    config.GenerateFeedback.preprocessors = [GetGrades, ScrubHiddenTests, CSSHTMLHeaderPreprocessor]
    return config


def _zero_all(course: Course, assignment: str, student: str) -> None:
    """Every autograded cell of the submission scores 0 (manual grades untouched)."""
    from nbgrader.api import Gradebook

    with Gradebook(course.gradebook_url) as gb:
        gb.update_or_create_student(student)
        submission = gb.update_or_create_submission(assignment, student)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                if grade.auto_score is not None or grade.cell.cell_type == "code":
                    grade.auto_score = 0
                grade.needs_manual_grade = bool(grade.manual_score is None and grade.cell.cell_type == "markdown")
        gb.db.commit()


def _scores(course: Course, assignment: str, student: str) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(course.gradebook_url) as gb:
        submission = gb.find_submission(assignment, student)
        cells = {}
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                cells[f"{notebook.name}:{grade.name}"] = {
                    "score": grade.score, "max": grade.max_score, "auto": grade.auto_score,
                    "manual": grade.manual_score, "needs_manual_grade": grade.needs_manual_grade}
        return {"score": submission.score, "max_score": submission.max_score,
                "needs_manual_grade": submission.needs_manual_grade, "cells": cells}


def grade_one(course: Course, assignment: str, student: str, slot: int = 0, unsafe: bool = False) -> dict:
    """Grade one submission: stage its repaired notebooks, autograde them in the sandbox (with
    feedback), gather what each step found, and write the status record last."""
    t0 = time.monotonic()
    path = status_record.path(course, assignment, student)
    status = status_record.new(student, assignment, hash=submission_hash(course, assignment, student),
                               sandboxed=not unsafe)
    try:  # not "done" until this run writes it again: a killed run is redone, never skipped
        os.unlink(path)
    except FileNotFoundError:
        pass
    tag = f"{student}__{assignment}"
    staging = os.path.join(course.staging, tag)
    status_tmp = os.path.join(course.staging, tag + ".status")
    for folder in (staging, status_tmp):
        shutil.rmtree(folder, ignore_errors=True)
    dest = os.path.join(staging, student, assignment)
    good = _stage(course, assignment, student, status, dest)
    if good:
        _autograde(course, assignment, student, status, staging, status_tmp, slot, unsafe)
    else:
        _nothing_to_grade(course, assignment, student)
    _gather(course, assignment, student, status, status_tmp)
    status["seconds"] = round(time.monotonic() - t0, 2)
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(status_tmp, ignore_errors=True)
    status_record.save(path, status)
    return status


def _stage(course: Course, assignment: str, student: str, status: status_record.Status, dest: str) -> int:
    """Precheck each notebook of the submission and stage the gradable ones (and the timestamp) in
    `dest`; missing and broken ones get their entry's state and flags. Returns how many were staged."""
    os.makedirs(dest)
    src_dir = os.path.join(course.submitted, student, assignment)
    good = 0
    for nb_id in course.notebooks(assignment):
        entry = status["notebooks"][nb_id] = status_record.new_notebook()
        path = os.path.join(src_dir, f"{nb_id}.ipynb")
        if not os.path.exists(path):
            entry["state"] = "missing"
            entry["flags"].append("notebook not submitted: scored 0")
            try:
                entry["flags"] += json.load(open(os.path.join(course.work, "collect_notes.json")))[student][assignment]
            except (OSError, ValueError, KeyError):
                pass
            continue
        release_nb = nbformat.read(os.path.join(course.release, assignment, f"{nb_id}.ipynb"), as_version=4)
        nb, notes, flags, fatal = precheck(open(path, "rb").read(), release_nb)
        entry["notes"] += notes
        entry["flags"] += flags
        if fatal:
            entry["state"] = "broken"
            entry["flags"].append(f"broken notebook: {fatal}: scored 0")
            continue
        nbformat.write(nb, os.path.join(dest, f"{nb_id}.ipynb"))
        good += 1
    timestamp = os.path.join(src_dir, "timestamp.txt")
    if os.path.exists(timestamp):
        shutil.copy(timestamp, os.path.join(dest, "timestamp.txt"))
    return good


def _autograde(course: Course, assignment: str, student: str, status: status_record.Status, staging: str,
               status_tmp: str, slot: int, unsafe: bool) -> None:
    """nbgrader autograde of the staged notebooks (retried while the gradebook is locked or a port is
    taken), then the feedback export and its check; a failure marks the record "failed"."""
    api = course.api(_overrides(course, staging, status_tmp, assignment, slot, unsafe))
    for attempt in range(course.settings.retries + 1):
        result = api.autograde(assignment, student, force=True)
        if result.get("success"):
            break
        log = (result.get("log") or "") + str(result.get("error") or "")
        if "database is locked" not in log and "Address already in use" not in log:
            break
        time.sleep(1 + attempt)
    if not result.get("success"):
        status["state"] = "failed"
        status["flags"].append("autograde failed: " + _last_error(result))
        shutil.rmtree(os.path.join(course.autograded, student, assignment), ignore_errors=True)
        return
    feedback = api.generate_feedback(assignment, student, force=True)
    if not feedback.get("success"):
        status["notes"].append("feedback failed: " + _last_error(feedback))
    audit_feedback(course, assignment, student, status, os.path.join(staging, student, assignment))


def _nothing_to_grade(course: Course, assignment: str, student: str) -> None:
    """No notebook could be graded: no autograded copy, no feedback, every autograded cell 0."""
    shutil.rmtree(os.path.join(course.autograded, student, assignment), ignore_errors=True)
    shutil.rmtree(os.path.join(course.feedback, student, assignment), ignore_errors=True)
    _zero_all(course, assignment, student)


def _gather(course: Course, assignment: str, student: str, status: status_record.Status, status_tmp: str) -> None:
    """Fold in what the sandboxed runs wrote per notebook (forged answers included: SandboxedExecute
    flags them there), settle the state, and copy the scores from the gradebook."""
    for path in glob.glob(os.path.join(status_tmp, "*.json")):
        nb_id = os.path.basename(path)[:-5]
        detail = status_record.load(path)
        entry = status["notebooks"].setdefault(nb_id, status_record.new_notebook())
        entry["flags"] += detail.pop("flags", [])
        entry["notes"] += detail.pop("notes", [])
        entry.update(detail)
    every_ok = all(entry["state"] == "ok" for entry in status["notebooks"].values())
    status.setdefault("state", "ok" if every_ok else "partial")
    try:
        status.update(_scores(course, assignment, student))
    except Exception as error:  # noqa: BLE001
        status["flags"].append(f"no gradebook entry: {error}")


def _last_error(result: dict) -> str:
    text = (str(result.get("error") or "") + "\n" + (result.get("log") or "")).strip().splitlines()
    errs = [line for line in text if "error" in line.lower()] or text
    return (errs[-1] if errs else "unknown error")[:300]


def hold_worker_lock(course: Course) -> None:
    """A shared lock on WORK/.workers.lock for this process's life: `grade` takes it exclusively
    before starting, so it never runs beside workers of a killed run that are still dying."""
    import fcntl

    os.makedirs(course.work, exist_ok=True)
    lock_file = open(os.path.join(course.work, ".workers.lock"), "a")
    fcntl.flock(lock_file, fcntl.LOCK_SH)
    globals()["_worker_lock"] = lock_file


def _summary(status: status_record.Status) -> str:
    return json.dumps({k: status.get(k) for k in ("student", "assignment", "state", "score", "max_score", "seconds")})


def serve(config_path: str | None, slot: int, unsafe: bool) -> int:
    """Grade the jobs read from stdin, one JSON line each, answering one RESULT line per job (worker_pool.py).

    Each job gets a fresh Course, as a worker process of its own did: nbgrader's runs change the config they are
    given, and the submission hash (which says whether a submission is graded) covers the course's settings."""
    import traceback

    from .worker_pool import RESULT

    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        try:
            status = grade_one(Course(config_path), job["assignment"], job["student"], slot, unsafe)
            answer = {"ok": True, "summary": _summary(status)}
        except Exception as e:  # noqa: BLE001 (reported to grade, which retries and then records the failure)
            traceback.print_exc()
            answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        print(RESULT + json.dumps(answer), flush=True)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.worker")
    parser.add_argument("--config")
    parser.add_argument("--serve", action="store_true", help="grade jobs read from stdin, one JSON line each")
    parser.add_argument("--assignment")
    parser.add_argument("--student")
    parser.add_argument("--slot", type=int, default=0)
    parser.add_argument("--unsafe", action="store_true")
    args = parser.parse_args(argv)
    if not args.serve and not (args.assignment and args.student):
        parser.error("give --assignment and --student, or --serve")
    import warnings

    warnings.filterwarnings("ignore")  # SQLAlchemy chatter from nbgrader
    course = Course(args.config)
    hold_worker_lock(course)
    if args.serve:
        return serve(args.config, args.slot, args.unsafe)
    print(_summary(grade_one(course, args.assignment, args.student, args.slot, args.unsafe)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
