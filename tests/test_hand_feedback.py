"""`nbgrader generate_feedback` run by hand with the course's config keeps the autograder's protections.

An autograded notebook full of student HTML and JavaScript (test_feedback.hostile_notebook) with a test cell
whose hidden tests its error output shows is turned into feedback twice: by nbgrader's own command line with a
config that loads the course's config (only folders are the test's), and by `python -m autograder feedback`.
The hand-made page must be inert and locked (audit clean, CSP first, no script), show no hidden line, and
equal the autograder's page byte for byte.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import nbformat
import pytest

pytestmark = pytest.mark.slow  # two nbgrader runs in fresh processes

sys.path.insert(0, os.path.dirname(__file__))

from test_feedback import hostile_notebook  # noqa: E402

from autograder.feedback_safety import inert_html  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HIDDEN = "assert hidden_value_4711 == 42, 'hidden check'"
CONFIG = '''
c = get_config()
load_subconfig({course!r})  # the course's own config; only the folders are this test's
W = {work!r}
c.CourseDirectory.root = {root!r}
c.CourseDirectory.submitted_directory = W + "/submitted"
c.CourseDirectory.autograded_directory = W + "/autograded"
c.CourseDirectory.feedback_directory = W + "/feedback"
c.CourseDirectory.db_url = "sqlite:///" + W + "/gradebook.db"
'''


def graded_notebook() -> nbformat.NotebookNode:
    nb = hostile_notebook()
    test = nbformat.v4.new_code_cell(f"assert True\n### BEGIN HIDDEN TESTS\n{HIDDEN}\n### END HIDDEN TESTS\n")
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": "test_toy",
                                 "points": 1, "schema_version": 3}
    shown = ["Traceback", f"----> 2 {HIDDEN}", "AssertionError: hidden check"]
    test.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="hidden check", traceback=shown)]
    printed = nbformat.v4.new_code_cell("print(open_source())")
    printed.outputs = [nbformat.v4.new_output("stream", name="stdout", text=HIDDEN + "\n")]
    nb.cells += [test, printed]
    return nb


@pytest.fixture()
def course(tmp_path):
    from nbgrader.api import Gradebook

    from autograder import status
    from autograder.course import Course

    root, work = str(tmp_path), str(tmp_path / "work")
    config = tmp_path / "nbgrader_config.py"
    config.write_text(CONFIG.format(course=os.path.join(REPO, "autograder", "nbgrader_config.py"), work=work,
                                    root=root))
    os.makedirs(os.path.join(work, "autograded", "ada", "toy"))
    nbformat.write(graded_notebook(), os.path.join(work, "autograded", "ada", "toy", "toy.ipynb"))
    course = Course(str(config))
    with Gradebook(course.gradebook_url, "gptref") as gb:
        gb.add_assignment("toy")
        gb.add_notebook("toy", "toy")
        gb.add_grade_cell("test_toy", "toy", "toy", max_score=1, cell_type="code")
        gb.add_student("ada")
        gb.add_submission("toy", "ada")
        grade = gb.find_grade("test_toy", "toy", "toy", "ada")
        grade.auto_score, grade.needs_manual_grade = 0.0, False
        gb.db.commit()
    status.save(status.path(course, "toy", "ada"), status.new("ada", "toy", hash="x", sandboxed=True, state="ok"))
    return {"root": root, "config": str(config), "page": os.path.join(work, "feedback", "ada", "toy", "toy.html")}


def nbgrader_by_hand(course):
    """What an instructor types in the course folder (nbgrader reads ./nbgrader_config.py)."""
    exe = os.path.join(os.path.dirname(sys.executable), "nbgrader")
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.run([exe, "generate_feedback", "toy", "--student", "ada", "--force"], cwd=course["root"],
                          capture_output=True, text=True, timeout=300, env=env)


def test_hand_run_feedback_is_inert_locked_and_equals_the_autograders(course):
    r = nbgrader_by_hand(course)
    assert r.returncode == 0, r.stdout + r.stderr
    page = open(course["page"], encoding="utf-8").read()
    assert inert_html.audit(page) == [], inert_html.audit(page)
    head = re.search(r"<head[^>]*>(.*?)</head", page, re.S | re.I).group(1)
    assert head.lstrip().startswith(inert_html.CSP_META) and head.count(inert_html.CSP_META) == 1
    assert not re.search(r"<script\b", page, re.I)
    assert "hidden_value_4711" not in page and "(hidden tests)" in page
    os.replace(course["page"], course["page"] + ".by-hand")
    r = subprocess.run([sys.executable, "-m", "autograder", "--config", course["config"], "feedback"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert open(course["page"], encoding="utf-8").read() == page
