"""Call the student's graded functions on the grader's cases, inside a fresh sandbox.

Reads a job on stdin: {"cells": [[kind, source], ...], "exercises": [{"name", "day",
"cases": [plain data]}], "registry": "module:function", "seed", "cell_timeout",
"call_timeout"}. Runs the student's cells in an IPython shell (no kernel), then calls each
function on each case and writes plain results to fd 3. It computes nothing to compare:
expected values and verdicts are made by the trusted grader outside, never here.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import signal
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import channel  # noqa: E402

CHANNEL = channel.take()  # before student code exists: fd 3/4 leave their well-known numbers
import isolate  # noqa: E402
import plaindata  # noqa: E402
from seeding import seed_everything  # noqa: E402


class CallTimeout(BaseException):
    pass


def _alarm(signum, frame):
    raise CallTimeout()


def main() -> int:
    out = isolate.raw_results()  # this is the forked student process: it never sees the channel or its key
    try:
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0
    except Exception:
        pass
    job = json.loads(sys.stdin.read())
    sys.stdin.close()
    mod, fn = job["registry"].split(":")
    registry = getattr(importlib.import_module(mod), fn)
    # the cases are decoded and wrapped BEFORE student code runs, so it cannot tamper with them
    prepared = []
    for ex in job["exercises"]:
        exercise = registry(ex["day"]).get(ex["name"])
        calls = []
        for raw in ex["cases"]:
            case = plaindata.decode(raw)
            calls.append(exercise.arguments(case) if exercise is not None else dict(case))
        prepared.append((ex["name"], calls))
    encode = plaindata.encode

    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    signal.signal(signal.SIGALRM, _alarm)
    log = []
    seed_everything(int(job["seed"]))
    for kind, src in job["cells"]:
        signal.alarm(int(job["cell_timeout"]))
        try:
            res = shell.run_cell(src, store_history=False, silent=True)
            if not res.success:
                err = res.error_in_exec or res.error_before_exec
                log.append(f"{kind} cell failed: {type(err).__name__}: {str(err)[:200]}")
        except CallTimeout:
            log.append(f"{kind} cell timed out")
        finally:
            signal.alarm(0)
    ns = shell.user_ns
    results = {}
    for name, calls in prepared:
        fn = ns.get(name)
        if not callable(fn):
            results[name] = {"status": "missing", "detail": f"no function named {name!r} after running the solution cells"}
            continue
        outs = []
        for i, args in enumerate(calls):
            seed_everything(int(job["seed"]) + i)
            signal.signal(signal.SIGALRM, _alarm)
            signal.alarm(int(job["call_timeout"]))
            try:
                got = fn(**args)
                signal.alarm(0)
                try:
                    outs.append({"ok": True, "value": encode(got)})
                except TypeError as e:  # not plain data: a wrong answer, not a crash
                    outs.append({"ok": False, "bad_answer": True, "error": str(e)[:300]})
            except CallTimeout:
                outs.append({"ok": False, "error": f"timed out after {job['call_timeout']} s"})
            except BaseException as e:  # noqa: BLE001 (SystemExit from student code is an answer too)
                signal.alarm(0)
                tb = traceback.format_exception_only(type(e), e)[-1].strip()
                outs.append({"ok": False, "error": tb[:500]})
            finally:
                signal.alarm(0)
        results[name] = {"status": "ran", "outputs": outs}
    out.write(json.dumps({"results": results, "log": log}))
    out.close()
    os._exit(0)  # no atexit hooks or threads from student code after the answer is sent


if __name__ == "__main__":
    sys.exit(isolate.run_forked(main, CHANNEL))
