"""The course notebooks, through the real nbgrader and a live kernel, for every day present.

Per day: solutions/ is what notebooks/<day>.py builds; course/ is byte-identical to a fresh
`nbgrader generate_assignment`; the solution, submitted as a student, autogrades to full marks
and the untouched release to zero on every test cell (without failing the run); every planted
mistake in tests/mutants/d<day>.py fails exactly the test cells it names, with a message that
contains the mutant's `hint` (the visible tests name the mistake) and no other mutant's hint (no
message blames a cause the mistake does not have), and every number its markdown quotes is printed by that
run, set by its code or derived in tests/prose_numbers.py. Each notebook runs once here,
in a live kernel shared by all its mutants; the autograde of the solution and the untouched release
is tests/real_course.py's (the whole autograder, sandbox included), and runs here with plain
nbgrader only where that test cannot (no bubblewrap) or with GPTREF_PLAIN_AUTOGRADE=1.
"""

from __future__ import annotations

import filecmp
import importlib
import os
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from autograder.inside.hidden import AFTER_TEST, BEFORE_TEST  # noqa: E402
from tests import prose_numbers  # noqa: E402
from tools import nbbuild  # noqa: E402

MAX_SECONDS = float(os.environ.get("GPTREF_NOTEBOOK_MAX_SECONDS", "90"))  # a notebook top to bottom
TIMES: dict[str, float] = {}


def _days() -> list[str]:
    have = set(nbbuild.days())
    have |= {p.name for p in nbbuild.SOLUTIONS.glob("*") if (p / f"{p.name}.ipynb").exists()}
    return sorted(have)


DAYS = _days()
pytestmark = pytest.mark.skipif(not DAYS, reason="no notebooks yet")


def solution_path(day: str) -> Path:
    return nbbuild.SOLUTIONS / day / f"{day}.ipynb"


def read(path: Path):
    return nbformat.read(str(path), as_version=4)


def graded_cells(nb) -> dict[str, tuple[int, object]]:
    """grade_id -> (index, cell) for every nbgrader cell."""
    out = {}
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader")
        if meta and meta.get("grade_id"):
            out[meta["grade_id"]] = (i, cell)
    return out


def autograded_ids(nb) -> list[str]:
    """grade ids of the autograded test cells (code cells with points)."""
    return [gid for gid, (_, c) in graded_cells(nb).items()
            if c.cell_type == "code" and c.metadata["nbgrader"].get("grade")]


def cell_failure(cell) -> str | None:
    """What nbgrader would see as failing in an executed cell: an error, or anything on stderr."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename')}: {out.get('evalue')}".strip()
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            return f"wrote to stderr: {out.get('text', '')[:300]!r}"
    return None


def _without_markers(source: str) -> str:
    """A solution cell as a student hands it in: the nbgrader solution markers' lines left out."""
    return "\n".join(line for line in source.splitlines()
                     if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


def _run_extra(client, source: str) -> None:
    """Code that is no cell of the notebook, outside the history (appended for the call, removed after)."""
    cells = client.nb.cells
    cells.append(nbformat.v4.new_code_cell(source))
    try:
        client.execute_cell(cells[-1], len(cells) - 1, store_history=False)
    finally:
        cells.pop()


def run_test_cell(client, cell, index: int) -> None:
    """A test cell as the sandbox runs it (autograder/inside/run_notebook.py): the names it makes are gone after
    it, so a test that leans on another test cell's imports or variables fails here as it would when graded."""
    _run_extra(client, BEFORE_TEST)
    try:
        client.execute_cell(cell, index, store_history=False)
    finally:
        _run_extra(client, AFTER_TEST)


def _ensure_importable(monkeypatch) -> None:
    """Kernels inherit PYTHONPATH: make gptref (this checkout) importable in them."""
    old = os.environ.get("PYTHONPATH", "")
    if str(ROOT) not in old.split(os.pathsep):
        monkeypatch.setenv("PYTHONPATH", str(ROOT) + (os.pathsep + old if old else ""))


# -- the files in the repository are up to date --------------------------------------------------
@pytest.mark.parametrize("day", DAYS)
def test_solution_matches_builder(day, tmp_path):
    if not (nbbuild.NOTEBOOKS / f"{day}.py").exists():
        pytest.fail(f"solutions/{day} has no builder script notebooks/{day}.py")
    built = nbbuild.build_solution(day, tmp_path)
    assert solution_path(day).exists(), f"solutions/{day}/{day}.ipynb is missing: run python -m tools.nbbuild {day}"
    assert built.read_bytes() == solution_path(day).read_bytes(), (
        f"solutions/{day}/{day}.ipynb is not what notebooks/{day}.py builds: run python -m tools.nbbuild {day}")
    extra = sorted(p.name for p in solution_path(day).parent.iterdir() if p.name != f"{day}.ipynb")
    assert not extra, f"solutions/{day}/ holds {extra}: nbgrader would copy them to course/{day}/"


@pytest.mark.parametrize("day", DAYS)
def test_course_matches_fresh_release(day, tmp_path):
    shutil.copytree(nbbuild.SOLUTIONS / day, tmp_path / "solutions" / day)
    nbbuild.release(day, tmp_path)
    fresh, repo = tmp_path / "course" / day, nbbuild.COURSE / day
    assert repo.exists(), f"course/{day} is missing: run python -m tools.nbbuild {day}"
    cmp = filecmp.dircmp(fresh, repo)
    assert not cmp.left_only and not cmp.right_only, (
        f"course/{day} holds other files than a fresh release: missing {cmp.left_only}, extra {cmp.right_only}")
    for name in sorted(os.listdir(fresh)):
        assert (fresh / name).read_bytes() == (repo / name).read_bytes(), (
            f"course/{day}/{name} differs from a fresh nbgrader release: run python -m tools.nbbuild {day}")


# -- nbgrader: full marks for the solution, zero for the untouched release ---------------------
def _autograde_errors(autograded: Path) -> dict[str, str]:
    if not autograded.exists():
        return {}
    nb = read(autograded)
    return {gid: cell_failure(c) for gid, (_, c) in graded_cells(nb).items() if cell_failure(c)}


@pytest.mark.parametrize("day", DAYS)
def test_has_a_written_question(day):
    nb = read(solution_path(day))
    written = [gid for gid, (_, c) in graded_cells(nb).items()
               if c.cell_type == "markdown" and c.metadata["nbgrader"].get("grade")]
    assert written, f"{day} has no written (manually graded) question"


@pytest.mark.slow
@pytest.mark.parametrize("day", DAYS)
def test_autograde_solution_full_untouched_zero(day, tmp_path, monkeypatch):
    from nbgrader.api import Gradebook

    from autograder.sandbox import bwrap_problem

    if bwrap_problem() is None and os.environ.get("GPTREF_PLAIN_AUTOGRADE") != "1":
        pytest.skip("tests/test_real_course_a.py and _b.py grade this day's solution and untouched release through "
                    "the whole autograder (nbgrader's autograde inside the sandbox); set GPTREF_PLAIN_AUTOGRADE=1 "
                    "to run it here too")
    _ensure_importable(monkeypatch)
    root, work = tmp_path / "course_root", tmp_path / "work"
    shutil.copytree(nbbuild.SOLUTIONS / day, root / "solutions" / day)
    (work / "exchange").mkdir(parents=True)  # nbgrader logs an error when it is missing
    cfg = nbbuild.load_config(root, work)
    api = nbbuild.nbgrader_api(cfg)
    result = api.generate_assignment(day, force=True)
    assert result["success"], f"generate_assignment {day} failed:\n{result['error']}"
    for student, source in (("solution", solution_path(day)), ("untouched", root / "course" / day / f"{day}.ipynb")):
        dest = work / "submitted" / student / day
        dest.mkdir(parents=True)
        shutil.copy(source, dest / f"{day}.ipynb")

    start = time.perf_counter()
    result = api.autograde(day, "solution", force=True, create=True)
    seconds = time.perf_counter() - start
    TIMES[f"{day} autograde"] = seconds
    print(f"{day}: the solution autogrades in {seconds:.1f} s")
    assert result["success"], f"autograding the {day} solution failed:\n{result['error']}\n{result['log'][-3000:]}"
    result = api.autograde(day, "untouched", force=True, create=True)
    assert result["success"], (f"autograding the untouched {day} release crashed:\n{result['error']}\n"
                              f"{result['log'][-3000:]}")

    with Gradebook(cfg.CourseDirectory.db_url, "gptref") as gb:
        scores = {}
        for student in ("solution", "untouched"):
            sub = gb.find_submission_notebook(day, day, student)
            scores[student] = {g.name: (g.auto_score, g.max_score, g.cell.cell_type) for g in sub.grades}
    errors = _autograde_errors(work / "autograded" / "solution" / day / f"{day}.ipynb")
    lost = [f"{gid}: {auto} of {mx} points ({errors.get(gid, 'no error shown')})"
            for gid, (auto, mx, kind) in sorted(scores["solution"].items()) if kind == "code" and auto != mx]
    assert not lost, f"the {day} solution loses points under nbgrader:\n  " + "\n  ".join(lost)
    given = [f"{gid}: {auto} of {mx} points" for gid, (auto, mx, kind) in sorted(scores["untouched"].items())
             if kind == "code" and auto not in (0, 0.0)]
    assert not given, (f"the untouched {day} release earns points (do these tests test anything?):\n  "
                       + "\n  ".join(given))


# -- mutants: planted mistakes fail exactly their own test cells ---------------------------------
def load_mutants(day: str) -> list:
    try:
        module = importlib.import_module(f"tests.mutants.d{day}")
    except ModuleNotFoundError as e:
        if e.name == f"tests.mutants.d{day}":
            pytest.fail(f"no mutants for {day}: write tests/mutants/d{day}.py with MUTANTS = [Mutant(...), ...]")
        raise
    return list(module.MUTANTS)


@pytest.mark.slow
@pytest.mark.parametrize("day", DAYS)
def test_mutants_fail_exactly_their_tests(day, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    _ensure_importable(monkeypatch)
    nb = read(solution_path(day))
    graded = graded_cells(nb)
    tests = autograded_ids(nb)
    mutants = load_mutants(day)

    problems = []
    for m in mutants:
        if m.cell not in graded or not graded[m.cell][1].metadata["nbgrader"].get("solution"):
            problems.append(f"mutant {m.why!r}: {m.cell!r} is not a solution cell of {day}")
        elif graded[m.cell][1].source.count(m.old) != 1:
            problems.append(f"mutant {m.why!r}: its `old` text occurs {graded[m.cell][1].source.count(m.old)} times "
                            f"in cell {m.cell!r} (must be exactly once)")
        elif _without_markers(graded[m.cell][1].source).count(m.old) != 1:
            problems.append(f"mutant {m.why!r}: its `old` text must occur once in {m.cell!r} without the solution "
                            "markers too (a student's notebook has none; the real-course test applies it there)")
        unknown = set(m.fails) - set(tests)
        if unknown:
            problems.append(f"mutant {m.why!r} names unknown test cells {sorted(unknown)} (have {tests})")
    uncovered = sorted(set(tests) - {t for m in mutants for t in m.fails})
    if uncovered:
        problems.append(f"test cells no mutant fails (add a plausible mistake for each): {uncovered}")
    assert not problems, "\n".join(problems)

    client = NotebookClient(nb, timeout=180, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}})

    def run_tests() -> dict[str, str]:
        failed = {}
        for gid in tests:
            i, cell = graded[gid]
            run_test_cell(client, cell, i)
            why = cell_failure(cell)
            if why:
                failed[gid] = why
        return failed

    with client.setup_kernel():
        start = time.perf_counter()
        test_indices = {graded[gid][0] for gid in tests}
        for i, cell in enumerate(nb.cells):
            if i in test_indices:
                run_test_cell(client, cell, i)
            elif cell.cell_type == "code":
                client.execute_cell(cell, i)
        seconds = time.perf_counter() - start
        TIMES[f"{day} live"] = seconds
        print(f"{day}: runs top to bottom in {seconds:.1f} s")
        broken = {gid: cell_failure(graded[gid][1]) for gid in tests if cell_failure(graded[gid][1])}
        assert not broken, f"test cells fail on the {day} solution itself: {broken}"
        ordinary = [f"cell {i}: {cell_failure(c)}" for i, c in enumerate(nb.cells)
                    if c.cell_type == "code" and "nbgrader" not in c.metadata and cell_failure(c)]
        assert not ordinary, f"ordinary cells of the {day} solution fail: {ordinary}"
        # the prose quotes only numbers this very run printed, the code sets, or tests/prose_numbers.py derives
        problems.extend(prose_numbers.problems(day, nb))

        for m in mutants:
            i, cell = graded[m.cell]
            original = cell.source
            cell.source = original.replace(m.old, m.new)
            client.execute_cell(cell, i)
            raised = cell_failure(cell)
            failed = run_tests() if not raised else {}
            cell.source = original
            client.execute_cell(cell, i)
            if raised:
                problems.append(f"mutant {m.why!r}: the mutated cell {m.cell} itself fails ({raised}); "
                                "plant a mistake that runs")
                continue
            for gid in sorted(set(m.fails) - set(failed)):
                problems.append(f"mutant {m.why!r} in cell {m.cell} was not caught by {gid}")
            for gid in sorted(set(m.fails) & set(failed)):
                if m.hint not in failed[gid]:
                    problems.append(f"mutant {m.why!r} in cell {m.cell}: {gid} fails without naming the mistake; "
                                    f"expected {m.hint!r} in its message, got: {failed[gid][:400]!r}")
            # no message may name a cause this mutant lacks: another mistake's words in it are a wrong diagnosis
            other_hints = {o.hint for o in mutants if o.hint not in m.hint and m.hint not in o.hint}
            for gid in sorted(set(m.fails) & set(failed)):
                blamed = sorted(h for h in other_hints if h in failed[gid])
                if blamed:
                    problems.append(f"mutant {m.why!r} in cell {m.cell}: {gid}'s message names another mistake "
                                    f"({blamed[0]!r}), a cause this mutant does not have: {failed[gid][:400]!r}")
            for gid in sorted(set(failed) - set(m.fails)):
                problems.append(f"mutant {m.why!r} in cell {m.cell} also fails {gid} (tests must be independent, "
                                f"or add it to `fails`): {failed[gid][:300]}")
    assert not problems, f"{day}:\n  " + "\n  ".join(problems)
    assert seconds <= MAX_SECONDS, f"{day} takes {seconds:.0f} s top to bottom; the limit is {MAX_SECONDS:.0f} s"
