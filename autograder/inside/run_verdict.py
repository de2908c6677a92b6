"""Call the student's graded functions on the grader's arguments, inside a fresh sandbox.

Reads a job on stdin: {"cells": [[kind, source], ...], "exercises": [{"name", "calls": [plain
keyword arguments], "forbidden": ["module:qualname", ...]}], "modules": [{"name", "path",
"source"}], "seed", "cell_timeout", "call_timeout"}. It needs no registry: the grader made the
arguments. The reference modules are masked on disk; "modules" are imported from memory before
any student code runs (for what a notebook may use) and their source is dropped. Then the
student's cells run in an IPython shell (no kernel), and each function is called on each
argument set under the guard of its forbidden callables; plain results go to fd 3. It computes
nothing to compare: expected values and verdicts are made by the trusted grader outside.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.abc
import importlib.util
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


class _MemoryLoader(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the masked reference modules from source held in memory, once each, then forgets it."""

    def __init__(self, modules: list[dict]):
        self.sources = {m["name"]: (m["path"], m["source"]) for m in modules}

    def find_spec(self, name, path=None, target=None):
        if name not in self.sources:
            return None
        file = self.sources[name][0]
        package = [os.path.dirname(file)] if os.path.basename(file) == "__init__.py" else None
        return importlib.util.spec_from_file_location(name, file, loader=self, submodule_search_locations=package)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        file, source = self.sources.pop(module.__name__)
        exec(compile(source, file, "exec", dont_inherit=True), module.__dict__)


def _import_from_memory(modules: list[dict]) -> list[str]:
    loader = _MemoryLoader(modules)
    sys.meta_path.insert(0, loader)
    problems = []
    try:
        for m in modules:
            try:
                importlib.import_module(m["name"])
            except Exception as e:  # noqa: BLE001 (reported; the student's code may not need it)
                problems.append(f"reference module {m['name']} could not be loaded: {type(e).__name__}: {str(e)[:200]}")
    finally:
        sys.meta_path.remove(loader)
        loader.sources.clear()
    return problems


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
    log = _import_from_memory(job.pop("modules", []))
    from gptref.grading.guard import ForbiddenCallError, forbid, resolve

    # arguments decoded and forbidden callables resolved BEFORE student code runs: it cannot tamper with them
    prepared = []
    for ex in job["exercises"]:
        calls = [plaindata.decode(raw, objects=True) for raw in ex["calls"]]
        banned = tuple(f for f in (resolve(path) for path in ex.get("forbidden", [])) if callable(f))
        prepared.append((ex["name"], calls, banned))
    encode = plaindata.encode

    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    signal.signal(signal.SIGALRM, _alarm)
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
    for name, calls, banned in prepared:
        fn = ns.get(name)
        if not callable(fn):
            results[name] = {"status": "missing",
                             "detail": f"no function named {name!r} after running the solution cells"}
            continue
        outs = []
        for i, args in enumerate(calls):
            seed_everything(int(job["seed"]) + i)
            signal.signal(signal.SIGALRM, _alarm)
            signal.alarm(int(job["call_timeout"]))
            try:
                with forbid(*banned):
                    got = fn(**args)
                signal.alarm(0)
                try:
                    outs.append({"ok": True, "value": encode(got)})
                except TypeError as e:  # not plain data: a wrong answer, not a crash
                    outs.append({"ok": False, "bad_answer": True, "error": str(e)[:300]})
            except CallTimeout:
                outs.append({"ok": False, "error": f"timed out after {job['call_timeout']} s"})
            except ForbiddenCallError as e:
                signal.alarm(0)
                outs.append({"ok": False, "forbidden": str(e)[:300] or "a forbidden call"})
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
