"""The trusted verdict: the student's functions called in a fresh sandbox on cases the grader
chooses, compared OUTSIDE the sandbox with the gptref reference."""

from __future__ import annotations

import ast
import builtins
import copy
import hashlib
import hmac
import importlib
import json
import os
import re
import secrets
import shutil

from gptref.grading.explain import NAMED
from gptref.grading.guard import locate

from .atomic import write_atomic
from .hidden import hidden_sources
from .inside import plaindata
from .inside.cells import is_solution_cell, is_test_cell


def load_secret(path: str) -> bytes:
    """The instructor secret behind case seeds (created once, kept out of git under work/)."""
    if not os.path.exists(path):
        write_atomic(path, secrets.token_hex(32), perm=0o600, replace=False)  # two workers never make two secrets
    return open(path).read().strip().encode()


def derive_seed(secret: bytes, *parts: str) -> int:
    """A 31-bit seed from the secret and (assignment, student, ...): identical on every regrade."""
    digest = hmac.new(secret, "\x00".join(parts).encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def load_registry(spec: str, day: str) -> tuple[dict, str | None]:
    """({name: Exercise} for a day, None) or ({}, why there is none)."""
    mod, _, fn = spec.partition(":")
    try:
        return dict(getattr(importlib.import_module(mod), fn)(day) or {}), None
    except (KeyError, LookupError, FileNotFoundError):
        return {}, f"the registry {spec} has no exercises for {day}"
    except Exception as e:  # noqa: BLE001 (a broken registry must not fail every student)
        return {}, f"the registry {spec} could not be loaded ({type(e).__name__}: {str(e)[:200]})"


KEEP = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)


def _used(node) -> set[str]:
    """Every name the code reads (an over-approximation: locals included)."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _bound(stmt) -> set[str]:
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in stmt.names}
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    return {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def verdict_cells(nb, wanted=()) -> list[list[str]]:
    """What the verdict run executes: solution cells whole; of the other non-test code cells, the
    imports, definitions and assignments the solution cells need (directly or through each other),
    and the definitions of `wanted` (graded functions the notebook gives, e.g. day 9's run_ddp),
    one statement at a time. Experiments, plots and demo training runs are skipped."""
    entries: list[tuple] = []  # (kind, source, bound names, used names)
    needed: set[str] | None = set(wanted)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if is_test_cell(cell):
            continue
        if is_solution_cell(cell):
            entries.append(("solution", cell.source, set(), set()))
            try:
                needed = None if needed is None else needed | _used(ast.parse(cell.source))
            except SyntaxError:  # magics or broken code: keep every setup statement
                needed = None
            continue
        src = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in cell.source.splitlines())
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for n in tree.body:  # one statement at a time: a failing import does not skip the definitions after it
            if isinstance(n, KEEP):
                entries.append(("setup", ast.get_source_segment(src, n) or ast.unparse(n), _bound(n), _used(n)))
    keep = [e[0] == "solution" or needed is None for e in entries]
    changed = needed is not None
    while changed:
        changed = False
        for i, (kind, _, bound, used) in enumerate(entries):
            if not keep[i] and bound & needed:
                keep[i], changed = True, True
                needed |= used
    return [[kind, src] for (kind, src, _, _), k in zip(entries, keep) if k]


def _calls(ex, cases: list) -> list:
    """The keyword arguments of every call, made here and sent as plain data (wrap objects included)."""
    return [plaindata.encode(ex.arguments(copy.deepcopy(c)), objects=True) for c in cases]


def forbidden_names(ex) -> list[str]:
    """The exercise's forbidden callables by "module:qualname" (rebuilt inside the sandbox)."""
    return sorted({p for p in (locate(f) for f in ex.forbidden) if p})


def trusted_verdict(nb, exercises: list, seeds: dict, sandbox, settings) -> dict:
    """{exercise name: {"status": pass|fail|error|missing|unavailable, "detail": for the instructor,
    "message": for the student, "forged": the run's answer was rejected as forged}}.

    `detail` may quote what the student's process sent (its exception text, its log); `message` is
    written here from trusted facts only (case numbers, the exercise's own explanation of a wrong
    answer, builtin exception names), so nothing the sandbox saw (the cases) can reach the student."""
    if not exercises:
        return {}
    job_ex, cases_by_name = [], {}
    for ex in exercises:
        cases = list(ex.make_cases(seeds[ex.name]))
        cases_by_name[ex.name] = cases
        job_ex.append({"name": ex.name, "calls": _calls(ex, cases), "forbidden": forbidden_names(ex)})
    modules, masked = hidden_sources(exercises)
    job = {"cells": verdict_cells(nb, [ex.name for ex in exercises]), "exercises": job_ex, "modules": modules,
           "seed": seeds["__run__"], "cell_timeout": settings.cell_timeout, "call_timeout": settings.call_timeout}
    scratch = sandbox.new_scratch()
    try:
        run = sandbox.run("run_verdict.py", [], scratch, json.dumps(job).encode(), settings.verdict_timeout,
                          masked=masked)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    try:
        answer = json.loads(run.payload.decode())
        results = answer["results"]
    except Exception:  # noqa: BLE001
        why = ("timed out" if run.timed_out else "answered with a forged result" if run.forged
               else f"exited with {run.rc}")
        tail = run.log.strip().splitlines()[-1:] or [""]
        return {ex.name: {"status": "unavailable", "forged": run.forged,
                          "detail": f"the verdict run {why} without an answer {tail[0][:200]}",
                          "message": "the trusted check's run ended without an answer (see the cells above)"}
                for ex in exercises}
    return {ex.name: judge(ex, cases_by_name[ex.name], results.get(ex.name) if isinstance(results, dict) else None,
                           settings.call_timeout)
            for ex in exercises}


def exception_name(error: str) -> str:
    """The exception's name when it is a builtin one (the rest of the text came from the student's process)."""
    match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)", str(error))
    name = match.group(1) if match else ""
    known = getattr(builtins, name, None)
    return name if isinstance(known, type) and issubclass(known, BaseException) else "an exception"


def _answers(cases: list, outs: list, but: int) -> list:
    """(answer, case) for every case but one that the student's function answered readably."""
    answers = []
    for i, (case, out) in enumerate(zip(cases, outs)):
        if i != but and isinstance(out, dict) and out.get("ok") and not out.get("bad_answer") and "value" in out:
            try:
                answers.append((plaindata.decode(out["value"]), case))
            except Exception:  # noqa: BLE001
                continue
    return answers


def judge(ex, cases: list, res, call_timeout: float = 0) -> dict:
    """The verdict of one exercise from the sandbox's raw answers (compared here, outside)."""
    if not isinstance(res, dict) or res.get("status") != "ran":
        return {"status": "missing", "detail": str((res or {}).get("detail", "no answer"))[:300],
                "message": f"the trusted check found no function {ex.name} to call"}
    outs = res.get("outputs", [])
    if not isinstance(outs, list) or len(outs) != len(cases):
        return {"status": "unavailable", "detail": "answer has the wrong number of results",
                "message": "the trusted check's answer was malformed"}
    verdict = {"status": "pass", "detail": f"{len(cases)} cases agree with the reference", "message": ""}
    for i, (case, o) in enumerate(zip(cases, outs)):
        if not isinstance(o, dict):
            return {"status": "fail", "detail": f"case {i}: malformed answer", "message": f"case {i}: malformed answer"}
        if o.get("forbidden"):  # a forbidden call costs the exercise, whatever the other cases say
            return {"status": "fail", "forbidden": True, "detail": f"case {i}: {str(o['forbidden'])[:300]}",
                    "message": f"case {i}: it calls a function this exercise forbids "
                               f"({', '.join(forbidden_names(ex)) or 'the reference'})"}
        if o.get("bad_answer"):
            verdict = {"status": "fail",
                       "detail": f"case {i}: the answer is not plain data ({str(o.get('error'))[:200]})",
                       "message": f"case {i}: the answer is not plain data (tensors, arrays, numbers, strings, "
                                  "lists, tuples, dicts)"}
            continue
        if not o.get("ok"):
            if verdict["status"] == "pass":
                error = str(o.get("error", "error"))
                timed_out = error == f"timed out after {call_timeout} s"
                verdict = {"status": "error", "detail": f"case {i} raised {error[:300]}",
                           "message": f"case {i}: " + (f"it did not finish within {call_timeout} s" if timed_out else
                                                       f"it raised {exception_name(error)}")}
            continue
        if verdict["status"] != "pass":
            continue
        try:
            got = plaindata.decode(o["value"])
        except Exception as e:  # noqa: BLE001
            verdict = {"status": "fail", "detail": f"case {i}: unreadable answer ({e})",
                       "message": f"case {i}: the answer could not be read"}
            continue
        expected = ex.reference(**ex.arguments(copy.deepcopy(case)))
        try:
            msg = ex.explain(got, expected, case, _answers(cases, outs, but=i)) if ex.check_answer(
                got, expected, case) else None
        except Exception as e:  # noqa: BLE001 (a malformed answer can break a comparison)
            msg = f"comparison failed: {type(e).__name__}"
        if msg:
            verdict = {"status": "fail", "detail": f"case {i}: {_clipped(str(msg))}",
                       "message": f"case {i}: {_clipped(str(msg))}"}
    return verdict


def _clipped(message: str, limit: int = 300) -> str:
    """The message cut to about `limit` characters, keeping the named mistake (the part a student needs most) whole
    when there is one: the description of the difference before it is what gets shortened."""
    if len(message) <= limit:
        return message
    head, named, cause = message.partition(NAMED)
    if not named:
        return message[:limit]
    tail = named + cause[:limit]
    return head[:max(limit - len(tail), 120)] + "..." + tail
