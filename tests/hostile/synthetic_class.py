"""A graded class without grading: the real course's days, notebooks and graded cells (ids and points read
from solutions/), with seeded random scores written straight into an nbgrader gradebook.

For the instructor-side reports (stats, export): grading the real course for a dozen students takes many
minutes, so here the gradebook, the autograded notebooks (graded test cells only, failed ones ending in an
error output with one of a few messages per cell) and the status files are written directly. Some students
miss some days; written answers get manual scores or stay ungraded. `build` returns the config and the
failure messages it planted: the ground truth the tests check `stats` against.
"""

from __future__ import annotations

import os
import random
import warnings
from collections import Counter

import nbformat

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CONFIG = '''
c = get_config()
W = {work!r}
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = "synthetic"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "course"
c.CourseDirectory.submitted_directory = W + "/submitted"
c.CourseDirectory.autograded_directory = W + "/autograded"
c.CourseDirectory.feedback_directory = W + "/feedback"
c.CourseDirectory.db_url = "sqlite:///" + W + "/gradebook.db"
'''

MESSAGES = ["AssertionError: wrong shape: expected {k} rows",
            "AssertionError: values differ from the reference (cell {k})",
            "NotImplementedError"]


def graded_cells(day: str) -> list[dict]:
    """The graded cells of the real day's notebook: grade id, points, cell type, whether it is a test cell."""
    nb = nbformat.read(os.path.join(REPO, "solutions", day, f"{day}.ipynb"), as_version=4)
    out = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            out.append({"grade_id": meta["grade_id"], "points": float(meta.get("points", 0)),
                        "cell_type": cell.cell_type, "test": cell.cell_type == "code" and not meta.get("solution")})
    return out


def days() -> list[str]:
    folder = os.path.join(REPO, "solutions")
    return sorted(d for d in os.listdir(folder) if os.path.exists(os.path.join(folder, d, f"{d}.ipynb")))


def _test_cell(grade_id: str, points: float, error: str | None) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(f"# test {grade_id}\nassert True")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": grade_id,
                                 "points": points, "schema_version": 3}
    if error:
        ename, _, evalue = error.partition(": ")
        cell.outputs = [nbformat.v4.new_output("error", ename=ename, evalue=evalue,
                                               traceback=[f"\x1b[0;31m{ename}\x1b[0m: {evalue}"])]
    return cell


def build(root: str, n_students: int = 10, seed: int = 0, only_days: list[str] | None = None):
    """Write the class under root; returns (config path, {(day, grade_id): Counter of planted messages})."""
    from nbgrader.api import Gradebook

    from autograder import grade, status
    from autograder.course import Course

    rng = random.Random(seed)
    work = os.path.join(root, "work")
    os.makedirs(work, exist_ok=True)
    config = os.path.join(root, "nbgrader_config.py")
    with open(config, "w") as f:
        f.write(CONFIG.format(work=work, root=root))
    course = Course(config)
    students = [f"student{k:02d}" for k in range(n_students)]
    planted: dict[tuple[str, str], Counter] = {}
    warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's add_submission, harmless
    with Gradebook(course.gradebook_url, "synthetic") as gb:
        for day in only_days or days():
            cells = graded_cells(day)
            gb.add_assignment(day)
            gb.add_notebook(day, day)
            for c in cells:
                gb.add_grade_cell(c["grade_id"], day, day, max_score=c["points"], cell_type=c["cell_type"])
            chance = {c["grade_id"]: rng.uniform(0.2, 0.95) for c in cells}  # each cell its own difficulty
            for s in students:
                if rng.random() < 0.15:  # this student did not hand this day in
                    continue
                gb.update_or_create_student(s)
                gb.add_submission(day, s)
                test_cells = []
                for c in cells:
                    g = gb.find_grade(c["grade_id"], day, day, s)
                    passed = rng.random() < chance[c["grade_id"]]
                    if c["cell_type"] == "markdown":
                        if rng.random() < 0.2:
                            g.needs_manual_grade = True  # still waiting for a grader
                        else:
                            g.manual_score, g.needs_manual_grade = rng.choice([0.0, 0.5, 1.0]) * c["points"], False
                    else:
                        g.auto_score, g.needs_manual_grade = (c["points"] if passed else 0.0), False
                    if c["test"]:
                        error = None if passed else rng.choice(MESSAGES).format(k=len(c["grade_id"]))
                        if error:
                            planted.setdefault((day, c["grade_id"]), Counter())[error] += 1
                        test_cells.append(_test_cell(c["grade_id"], c["points"], error))
                gb.db.commit()
                out = os.path.join(course.autograded, s, day)
                os.makedirs(out, exist_ok=True)
                nbformat.write(nbformat.v4.new_notebook(cells=test_cells), os.path.join(out, f"{day}.ipynb"))
                record = status.new(s, day, hash="synthetic", sandboxed=True, state="ok")
                status.save(status.path(course, day, s), record)
    grade.export_csv(course)
    return config, planted
