"""Build the course notebooks from their builder scripts, then release them with nbgrader.

A builder script notebooks/<day>.py describes one notebook with `Notebook` (markdown, code,
graded solution cells, autograder test cells, written answers) and calls `nb.save()`, which
writes solutions/<day>/<day>.ipynb: nbgrader cell metadata, no outputs, fixed cell ids, so the
same script always gives the same bytes. `python -m tools.nbbuild [day ...]` runs the scripts
and then `nbgrader generate_assignment --force` (through autograder/nbgrader_config.py) to
write the student version course/<day>/<day>.ipynb.
"""

from __future__ import annotations

import argparse
import ast
import logging
import os
import re
import runpy
import sys
import tempfile
import textwrap
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"  # builder scripts
SOLUTIONS = ROOT / "solutions"  # nbgrader source notebooks
COURSE = ROOT / "course"  # released (student) notebooks
CONFIG = ROOT / "autograder" / "nbgrader_config.py"

DAY_RE = re.compile(r"^\d\d_[a-z0-9_]+$")
GRADE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,60}$")
SCHEMA_VERSION = 3

# Set by build_solution() so that nb.save() writes somewhere else (tests build into a temp dir).
_output_root: Path | None = None
_saved: list[Path] = []


def _text(source: str) -> str:
    """Dedent a triple-quoted block and drop the blank lines around it."""
    lines = textwrap.dedent(source).strip("\n").split("\n")
    return "\n".join(line.rstrip() for line in lines)


def _nbgrader(grade_id: str, *, grade: bool, solution: bool, locked: bool, points: float | None = None) -> dict:
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": SCHEMA_VERSION,
        "solution": solution,
        "task": False,
    }
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def _strip_region(source: str, begin: str, end: str, stub: str | None) -> str:
    """The source with every begin/end region removed (replaced by `stub` lines at its indent)."""
    out, inside = [], False
    for line in source.split("\n"):
        if line.strip() == begin:
            if inside:
                raise ValueError(f"nested {begin!r}")
            inside = True
            if stub is not None:
                indent = line[: len(line) - len(line.lstrip())]
                out += [indent + s for s in stub.split("\n")]
        elif line.strip() == end:
            if not inside:
                raise ValueError(f"{end!r} without {begin!r}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{begin!r} without {end!r}")
    return "\n".join(out)


def _must_parse(source: str, what: str) -> None:
    try:
        ast.parse(source)
    except SyntaxError as e:
        raise ValueError(f"{what} is not valid Python: {e}\n{source}") from None


class Notebook:
    """One course notebook, described cell by cell; `save()` writes the nbgrader source notebook."""

    def __init__(self, day: str):
        if not DAY_RE.match(day):
            raise ValueError(f"day must look like '02_attention', got {day!r}")
        self.day = day
        self.cells: list = []
        self._grade_ids: set[str] = set()

    # -- cells -----------------------------------------------------------------------------
    def md(self, text: str) -> None:
        """A markdown cell (the text is dedented)."""
        self.cells.append(nbformat.v4.new_markdown_cell(_text(text)))

    def code(self, text: str) -> None:
        """An ordinary (ungraded) code cell."""
        source = _text(text)
        _must_parse(source, f"code cell {len(self.cells)}")
        self.cells.append(nbformat.v4.new_code_cell(source))

    def solution(self, grade_id: str, text: str) -> None:
        """A cell the student completes: the part between ### BEGIN/END SOLUTION is replaced by a stub."""
        source = _text(text)
        if "### BEGIN SOLUTION" not in source:
            raise ValueError(f"solution cell {grade_id!r} has no '### BEGIN SOLUTION' ... '### END SOLUTION' region")
        _must_parse(source, f"solution cell {grade_id!r}")
        released = _strip_region(source, "### BEGIN SOLUTION", "### END SOLUTION",
                                 "# YOUR CODE HERE\nraise NotImplementedError()")
        _must_parse(released, f"the released version of solution cell {grade_id!r}")
        self._add(grade_id, nbformat.v4.new_code_cell(source), grade=False, solution=True, locked=False)

    def tests(self, grade_id: str, points: float, text: str) -> None:
        """An autograder test cell worth `points` (locked); ### BEGIN/END HIDDEN TESTS is removed on release."""
        source = _text(text)
        _must_parse(source, f"test cell {grade_id!r}")
        visible = _strip_region(source, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS", None)
        _must_parse(visible, f"the released version of test cell {grade_id!r}")
        if "### BEGIN SOLUTION" in source:
            raise ValueError(f"test cell {grade_id!r} contains a solution region")
        self._add(grade_id, nbformat.v4.new_code_cell(source), grade=True, solution=False, locked=True, points=points)

    def written(self, grade_id: str, points: float, prompt: str, answer: str) -> None:
        """A written question: a markdown prompt, then a markdown answer cell graded by hand.

        `answer` is the model answer instructors see; students get "YOUR ANSWER HERE" instead.
        """
        self.md(prompt)
        self._add(grade_id, nbformat.v4.new_markdown_cell(_text(answer)), grade=True, solution=True, locked=False,
                  points=points)

    def _add(self, grade_id: str, cell, *, grade: bool, solution: bool, locked: bool,
             points: float | None = None) -> None:
        if not GRADE_ID_RE.match(grade_id):
            raise ValueError(f"grade_id must be letters, digits, '_' or '-', got {grade_id!r}")
        if grade_id in self._grade_ids:
            raise ValueError(f"grade_id {grade_id!r} is used twice in {self.day}")
        if grade and not (isinstance(points, (int, float)) and points > 0):
            raise ValueError(f"graded cell {grade_id!r} needs points > 0, got {points!r}")
        self._grade_ids.add(grade_id)
        cell.metadata = _nbgrader(grade_id, grade=grade, solution=solution, locked=locked, points=points)
        cell.id = grade_id
        self.cells.append(cell)

    # -- output ----------------------------------------------------------------------------
    def to_notebook(self) -> nbformat.NotebookNode:
        nb = nbformat.v4.new_notebook()
        nb.nbformat, nb.nbformat_minor = 4, 5
        nb.metadata = {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        }
        for i, cell in enumerate(self.cells):
            cell = nbformat.from_dict(dict(cell))
            if "nbgrader" not in cell.metadata:
                cell.id = f"cell-{i:03d}"  # ungraded cells: ids fixed by position
            nb.cells.append(cell)
        nbformat.validate(nb)
        return nb

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write solutions/<day>/<day>.ipynb (or `path`); deterministic bytes, no outputs."""
        if path is None:
            root = _output_root if _output_root is not None else SOLUTIONS
            path = Path(root) / self.day / f"{self.day}.ipynb"
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(self.to_notebook(), str(path))
        _saved.append(path)
        return path


# -- building and releasing -------------------------------------------------------------------
def days() -> list[str]:
    """Every day with a builder script notebooks/<day>.py."""
    return sorted(p.stem for p in NOTEBOOKS.glob("*.py") if DAY_RE.match(p.stem))


def build_solution(day: str, out_root: str | os.PathLike | None = None) -> Path:
    """Run notebooks/<day>.py; it writes <out_root or solutions>/<day>/<day>.ipynb. Returns that path."""
    global _output_root
    script = NOTEBOOKS / f"{day}.py"
    if not script.exists():
        raise FileNotFoundError(f"no builder script {script}")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    # The script imports `tools.nbbuild`; make sure that is this very module (not a second copy
    # when we run as __main__), so the output override below reaches its Notebook.save().
    sys.modules.setdefault("tools.nbbuild", sys.modules[__name__])
    this = sys.modules["tools.nbbuild"]
    this._output_root = Path(out_root) if out_root is not None else None
    start = len(this._saved)
    try:
        runpy.run_path(str(script), run_name=f"notebooks.{day}")
    finally:
        this._output_root = None
    saved = [p for p in this._saved[start:] if p.name == f"{day}.ipynb"]
    if not saved:
        raise RuntimeError(f"{script} did not call nb.save() for day {day!r}")
    return saved[-1]


def load_config(course_root: str | os.PathLike | None = None, work: str | os.PathLike | None = None):
    """The course's nbgrader config; optionally with another course root and grading work dir."""
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader(CONFIG.name, path=str(CONFIG.parent)).load_config()
    if course_root is not None:
        cfg.CourseDirectory.root = str(course_root)
    if work is not None:
        work = str(work)
        cfg.CourseDirectory.submitted_directory = os.path.join(work, "submitted")
        cfg.CourseDirectory.autograded_directory = os.path.join(work, "autograded")
        cfg.CourseDirectory.feedback_directory = os.path.join(work, "feedback")
        cfg.CourseDirectory.db_url = "sqlite:///" + os.path.join(work, "gradebook.db")
        cfg.Exchange.root = os.path.join(work, "exchange")
    return cfg


def nbgrader_api(cfg, log_level: int = logging.WARNING):
    """An in-process NbGraderAPI for `cfg` (quiet unless something goes wrong)."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from autograder.course import put_scripts_on_path

    put_scripts_on_path()
    coursedir = CourseDirectory(config=cfg)
    api = NbGraderAPI(coursedir=coursedir, config=cfg)
    api.log.setLevel(log_level)
    return api


def release(day: str, course_root: str | os.PathLike | None = None) -> Path:
    """nbgrader generate_assignment --force: <root>/solutions/<day> -> <root>/course/<day>.

    Uses a throwaway gradebook: the release depends on the source notebook only, and never on
    (or touches) the instructors' gradebook of submissions.
    """
    from autograder.release import generate

    root = Path(course_root) if course_root is not None else ROOT
    with tempfile.TemporaryDirectory(prefix="nbbuild-") as work:
        os.mkdir(os.path.join(work, "exchange"))  # nbgrader logs an error when it is missing
        cfg = load_config(root, work)
        problem = generate(nbgrader_api(cfg), day)
    if problem is not None:
        raise RuntimeError(f"nbgrader generate_assignment {day} failed:\n{problem.get('error')}\n{problem.get('log')}")
    released = root / "course" / day / f"{day}.ipynb"
    _check_release(released)
    return released


def _check_release(path: Path) -> None:
    if not path.exists():
        raise RuntimeError(f"nbgrader did not write {path}")
    nb = nbformat.read(str(path), as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
            raise RuntimeError(f"{path}: cell {i} has outputs; the release must have none")
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            if marker in cell.source:
                raise RuntimeError(f"{path}: cell {i} still contains {marker!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.nbbuild", description=__doc__.split("\n\n")[0])
    parser.add_argument("days", nargs="*", help="days to build, e.g. 02_attention (default: all in notebooks/)")
    parser.add_argument("--no-release", action="store_true", help="only write solutions/, skip nbgrader")
    args = parser.parse_args(argv)
    wanted = args.days or days()
    unknown = [d for d in wanted if d not in days()]
    if unknown:
        parser.error(f"no builder script for {', '.join(unknown)} (have: {', '.join(days()) or 'none'})")
    for day in wanted:
        src = build_solution(day)
        print(f"built    {src.relative_to(ROOT)}")
        if not args.no_release:
            out = release(day)
            print(f"released {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
