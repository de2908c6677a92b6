"""A verdict nobody can luck into: every planted mistake fails the verdict's cases under every seed,
and honest solutions written another way pass under every seed.

The trusted verdict may overrule a notebook test (it gives the points when the notebook's own test
failed), so it must be at least as strong as each test cell it governs, whatever seed a student's
grading draws. For each mutant of tests/mutants/ the solution notebook's verdict cells are run with
the mistake planted (what the verdict sandbox runs), and every exercise that governs one of the test
cells the mutant fails is called on `make_cases(seed)` for SEEDS seeds and judged with
`Exercise.check_answer`, what the verdict compares: the mutant must be caught under every seed. Mutants marked
verdict=False are left out: mistakes in how the notebook's own code works that no returned value shows (the order
buckets are sent in), which the visible test alone checks.
Honest alternatives (tests/similarity/{plain,terse}, tests/alternatives) must pass under every seed.
"""

from __future__ import annotations

import copy
import importlib
import os
import sys
import warnings
from pathlib import Path

import nbformat
import pytest

from autograder.verdict import verdict_cells
from gptref.grading import exercises
from gptref.grading.check import run_case

ROOT = Path(__file__).resolve().parent.parent
SEEDS = range(int(os.environ.get("GPTREF_VERDICT_SEEDS", "50")))
ALTERNATIVE_DIRS = [ROOT / "tests" / "similarity" / "plain", ROOT / "tests" / "similarity" / "terse",
                    ROOT / "tests" / "alternatives"]


def _mutants(day: str) -> list:
    try:
        return list(importlib.import_module(f"tests.mutants.d{day}").MUTANTS)
    except ModuleNotFoundError:
        return []


def _governing(day: str, test_cells) -> list:
    """The exercises whose verdict governs any of these test cells."""
    return [ex for ex in exercises.load(day).values() if set(ex.grade_ids) & set(test_cells)]


def _planted(day: str, mutant, wanted: list[str]) -> dict:
    """The namespace the verdict's cells make from the solution notebook with `mutant` planted (None: none)."""
    nb = nbformat.read(str(ROOT / "solutions" / day / f"{day}.ipynb"), as_version=4)
    if mutant is not None:
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == mutant.cell:
                assert cell.source.count(mutant.old) == 1, f"mutant {mutant.why!r}: `old` is not once in {mutant.cell}"
                cell.source = cell.source.replace(mutant.old, mutant.new)
    namespace: dict = {"__name__": "__verdict__"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kind, source in verdict_cells(nb, wanted):
            try:
                exec(compile(source, f"<{day} {kind} cell>", "exec"), namespace)
            except Exception:
                if kind == "solution":
                    raise
    return namespace


class Cases:
    """Each exercise's cases and reference answers per seed, made once and shared by every function judged."""

    def __init__(self):
        self._made: dict[tuple[str, int], list] = {}

    def __call__(self, ex, seed: int) -> list[tuple[dict, object]]:
        key = (ex.key, seed)
        if key not in self._made:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._made[key] = [(case, ex.reference(**ex.arguments(copy.deepcopy(case))))
                                   for case in ex.make_cases(seed)]
        return self._made[key]


def _passes(ex, fn, seed: int, cases: Cases) -> str | None:
    """None when fn agrees with the reference on every case of this seed; otherwise the first reason it does not."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, (case, expected) in enumerate(cases(ex, seed)):
            try:
                got = run_case(ex, fn, case)
            except Exception as e:  # noqa: BLE001 (the verdict counts an error as a failure)
                return f"case {i} raised {type(e).__name__}: {e}"
            message = ex.check_answer(got, expected, case)
            if message:
                return f"case {i}: {message}"
    return None


@pytest.mark.slow
@pytest.mark.parametrize("day", [d for d in exercises.days() if any(_governing(d, m.fails) for m in _mutants(d))])
def test_every_mutant_fails_the_verdict_under_every_seed(day, one_thread):
    cases, lucky = Cases(), []
    for mutant in _mutants(day):
        governing = _governing(day, mutant.fails)
        if not governing or not mutant.verdict:  # verdict=False: a visible test's own check (see tests/mutants)
            continue
        namespace = _planted(day, mutant, [ex.name for ex in governing])
        for ex in governing:  # caught by every exercise that governs a cell it fails, under every seed
            fn = namespace.get(ex.name)
            assert callable(fn), f"{day}: the verdict cells define no function {ex.name}"
            day_seeds = SEEDS
            seeds = [seed for seed in day_seeds if _passes(ex, fn, seed, cases) is None]
            if seeds:
                lucky.append(f"{mutant.why!r} passes the verdict of {ex.name} under seeds {seeds[:10]}"
                             f"{' ...' if len(seeds) > 10 else ''} of {len(day_seeds)}")
    assert not lucky, f"{day}: add constructed cases that separate these mistakes:\n  " + "\n  ".join(lucky)


def _alternatives() -> list:
    params = []
    for folder in ALTERNATIVE_DIRS:
        for path in sorted(folder.glob("d*.py")) if folder.exists() else []:
            day = path.stem[1:]
            if day in exercises.days():
                params.append(pytest.param(day, path, id=f"{folder.name}-{day}"))
    return params


@pytest.mark.slow
@pytest.mark.parametrize("day,path", _alternatives())
def test_honest_alternatives_pass_the_verdict_under_every_seed(day, path, one_thread):
    namespace: dict = {"__name__": f"alternative_{day}"}
    sys.path.insert(0, str(path.parent))
    try:
        exec(compile(path.read_text(), str(path), "exec"), namespace)
    finally:
        sys.path.remove(str(path.parent))
    written = [ex for name, ex in exercises.load(day).items() if callable(namespace.get(name))]
    assert written, f"{path} defines none of {day}'s exercises"
    cases, failures = Cases(), []
    for ex in written:
        for seed in SEEDS:
            why = _passes(ex, namespace[ex.name], seed, cases)
            if why:
                failures.append(f"{ex.name} under seed {seed}: {why[:300]}")
                break
    assert not failures, f"an honest {day} solution ({path.name}) fails the verdict:\n  " + "\n  ".join(failures)
