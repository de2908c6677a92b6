"""Long-lived grading workers: one `python -m autograder.worker --serve` process per slot.

Each submission used to get a fresh worker process, which paid Python's, torch's and nbgrader's
imports (about 5 s) every time. A served worker pays them once and grades the submissions its slot
is given one after another; nothing of a submission stays in it (the student's code runs in the
sandbox, a fresh one per run; the worker is the trusted side). A worker that dies is restarted for
the next try, and a job it could not finish is retried as before.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile

from . import deathsig

RESULT = "AUTOGRADER-RESULT "  # the prefix of the one line a served worker prints per job


class ServedWorker:
    """One slot's worker process; `grade(assignment, student)` -> (ok, summary line, error text)."""

    def __init__(self, slot: int, config_path: str | None, unsafe: bool, cwd: str, env: dict):
        self.cmd = [sys.executable, "-m", "autograder.worker", "--serve", "--slot", str(slot)]
        if config_path:
            self.cmd += ["--config", os.path.abspath(config_path)]
        if unsafe:
            self.cmd.append("--unsafe")
        self.cwd, self.env = cwd, env
        self.proc: subprocess.Popen | None = None
        self.errors = tempfile.TemporaryFile(mode="w+")  # the worker's stderr (nbgrader logs a lot: never a pipe)

    def _start(self) -> subprocess.Popen:
        if self.proc is None or self.proc.poll() is not None:
            self.errors.seek(0)
            self.errors.truncate()
            self.proc = subprocess.Popen(self.cmd, cwd=self.cwd, env=self.env, text=True, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self.errors,
                                         preexec_fn=functools.partial(deathsig.arm, os.getpid()))
        return self.proc

    def _error_tail(self) -> str:
        self.errors.flush()
        self.errors.seek(0)
        return self.errors.read()[-4000:]

    def grade(self, assignment: str, student: str) -> tuple[bool, str, str]:
        proc = self._start()
        try:
            proc.stdin.write(json.dumps({"assignment": assignment, "student": student}) + "\n")
            proc.stdin.flush()
            for line in proc.stdout:
                if line.startswith(RESULT):
                    answer = json.loads(line[len(RESULT):])
                    return bool(answer.get("ok")), answer.get("summary", ""), answer.get("error", "")
        except (BrokenPipeError, OSError, ValueError):
            pass
        proc.wait()  # it died in the middle of the job: the next grade() starts a new one
        return False, "", self._error_tail() or f"the worker exited with {proc.returncode}"

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.errors.close()
