"""A tiny self-contained course for the autograder's tests: one assignment "toy", numpy only.

Two graded functions (scaled_sum: 2 points, softmax_rows: 1 point) with visible and hidden
tests against a trusted reference (agfix_ref), a registry for the trusted verdict
(agfix_registry) and one written answer graded by hand (1 point). Its config loads the course's
own (autograder/nbgrader_config.py) and sets only its folders and small limits, which keep the
hostile suite fast: 5 s per cell, 1.5 GB of address space.
"""

from __future__ import annotations

import os
import textwrap

import nbformat
from autograder_run import config_text  # tests/ is on sys.path under pytest

REF = '''
"""Trusted reference for the fixture course."""
import numpy as np


def scaled_sum_ref(x, y, alpha):
    return np.asarray(x, dtype=np.float64) + alpha * np.asarray(y, dtype=np.float64)


def softmax_rows_ref(x):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
'''

REGISTRY = '''
"""Fixture registry: day -> {name: Exercise}."""
import numpy as np

from gptref.grading.spec import Exercise
import agfix_ref


def _sum_cases(seed):
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(size=n), "y": rng.normal(size=n), "alpha": float(rng.normal())} for n in (1, 4, 9)]


def _softmax_cases(seed):
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(size=s) * 3} for s in ((1, 3), (4, 5))]


def load(day):
    if day != "toy":
        return {}
    return {
        "scaled_sum": Exercise(day="toy", name="scaled_sum", grade_ids=("test_scaled_sum",), make_cases=_sum_cases,
                               reference=agfix_ref.scaled_sum_ref, forbidden=(agfix_ref.scaled_sum_ref,)),
        "softmax_rows": Exercise(day="toy", name="softmax_rows", grade_ids=("test_softmax_rows",),
                                 make_cases=_softmax_cases, reference=agfix_ref.softmax_rows_ref,
                                 forbidden=(agfix_ref.softmax_rows_ref,)),
    }
'''

LIMITS = dict(  # small limits keep the hostile suite fast; everything else is the course's own config
    Autograder__cell_timeout=5, Autograder__notebook_timeout=120, Autograder__verdict_timeout=60,
    Autograder__call_timeout=5, Autograder__memory_mb=1536, Autograder__max_processes=48, Autograder__max_file_mb=32,
    Autograder__max_output_chars=20000, Autograder__registry="agfix_registry:load",
)

SOLUTION_SUM = '''def scaled_sum(x, y, alpha):
    """x + alpha * y, elementwise."""
    ### BEGIN SOLUTION
    return x + alpha * y
    ### END SOLUTION'''

TEST_SUM = '''assert np.allclose(scaled_sum(np.ones(3), np.ones(3), 2.0), 3.0), "scaled_sum(1, 1, 2) should be 3"
### BEGIN HIDDEN TESTS
from agfix_ref import scaled_sum_ref
_rng = np.random.default_rng(7)  # HIDDEN_MARKER_SUM_31337
for _ in range(3):
    x, y = _rng.normal(size=5), _rng.normal(size=5)
    expected = scaled_sum_ref(x, y, 0.5)
    assert np.allclose(scaled_sum(x, y, 0.5), expected), "scaled_sum is wrong on random inputs"
### END HIDDEN TESTS'''

SOLUTION_SOFTMAX = '''def softmax_rows(x):
    """Softmax over the last axis."""
    ### BEGIN SOLUTION
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
    ### END SOLUTION'''

TEST_SOFTMAX = '''assert np.allclose(softmax_rows(np.zeros((1, 2))), 0.5), "uniform logits give 0.5"
### BEGIN HIDDEN TESTS
from agfix_ref import softmax_rows_ref
_x = np.random.default_rng(3).normal(size=(3, 4)) * 10  # HIDDEN_MARKER_SOFTMAX_4242
expected = softmax_rows_ref(_x)
assert np.allclose(softmax_rows(_x), expected), "softmax_rows is wrong on random inputs"
### END HIDDEN TESTS'''

HIDDEN_MARKERS = ("HIDDEN_MARKER_SUM_31337", "HIDDEN_MARKER_SOFTMAX_4242")


def _cell(kind: str, source: str, **nbg):
    cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
    if nbg:
        meta = {"schema_version": 3, "grade": False, "solution": False, "locked": False}
        meta.update(nbg)
        cell.metadata["nbgrader"] = meta
    return cell


def source_notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [
        _cell("markdown", "# Toy assignment\nTwo small functions."),
        _cell("code", "import numpy as np"),
        _cell("code", SOLUTION_SUM, grade_id="scaled_sum", solution=True),
        _cell("code", TEST_SUM, grade_id="test_scaled_sum", grade=True, locked=True, points=2),
        _cell("code", SOLUTION_SOFTMAX, grade_id="softmax_rows", solution=True),
        _cell("code", TEST_SOFTMAX, grade_id="test_softmax_rows", grade=True, locked=True, points=1),
        _cell("markdown", "Why subtract the maximum before exponentiating?\n\n"
              "### BEGIN SOLUTION\nTo avoid overflow.\n### END SOLUTION",
              grade_id="why_max", grade=True, solution=True, points=1),
    ]
    return nb


def build(root: str) -> str:
    """Write the fixture course under `root`; returns its config file path."""
    os.makedirs(os.path.join(root, "fixlib"), exist_ok=True)
    os.makedirs(os.path.join(root, "solutions", "toy"), exist_ok=True)
    with open(os.path.join(root, "fixlib", "agfix_ref.py"), "w") as f:
        f.write(textwrap.dedent(REF))
    with open(os.path.join(root, "fixlib", "agfix_registry.py"), "w") as f:
        f.write(textwrap.dedent(REGISTRY))
    with open(os.path.join(root, "nbgrader_config.py"), "w") as f:
        f.write(config_text(os.path.join(root, "work"), CourseDirectory__root=root,
                            CourseDirectory__course_id="toycourse",
                            Autograder__python_paths=[os.path.join(root, "fixlib")], **LIMITS))
    nbformat.write(source_notebook(), os.path.join(root, "solutions", "toy", "toy.ipynb"))
    return os.path.join(root, "nbgrader_config.py")
