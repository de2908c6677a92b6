"""Hidden tests never meet student code (issue 18.2), through the real CLI on the toy fixture course.

A student's first cell installs an audit hook, a tracer and an IPython input transformer that record
every cell source and every call's arguments the kernel sees, and the last cell prints the record
encrypted with the student's own key (no scan of the feedback can recognise it). The test holds the
key: it decrypts what the student gets back (the feedback HTML and the autograded notebook's outputs)
and requires no hidden-test line and no hidden input value in it, while the honest answers still
get full marks and a wrong answer is told what the trusted check found.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import os
import re
import shutil
import sys
import tempfile
import zlib

import nbformat
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "hostile"))

import agfix_course  # noqa: E402
from test_sandbox import _notebook, auto, cli, flags, make_course, needs_bwrap, status  # noqa: E402

ONLY_THE_VISIBLE_CASE = "def scaled_sum(x, y, alpha):\n    return x + alpha * y if alpha == 2.0 else x - y\n"
KEY = b"the student's own key, never shown to the grader"

RECORDER = '''
import base64, hashlib, linecache, sys, zlib
_cell = lambda name: "ipykernel_" in str(name) or str(name).startswith("<ipython-input")  # a cell's file name
_seen = []  # what it saw, each thing once, at most 40 kB (the record must fit in one cell's output)

def _keep(text):
    text = str(text)[:4000]
    if _seen is not None and text not in _seen and sum(map(len, _seen)) < 40000:
        _seen.append(text)

def _on_audit(event, args):
    if event == "compile" and len(args) > 1 and _cell(args[1]):
        try:
            _keep(args[0].decode() if isinstance(args[0], bytes) else args[0] if isinstance(args[0], str) else "")
        except Exception:
            pass

def _on_call(frame, event, arg):
    name = frame.f_code.co_filename
    if event == "call" and (_cell(name) or frame.f_back is not None and _cell(frame.f_back.f_code.co_filename)):
        try:
            _keep("".join(linecache.getlines(name)))
            if frame.f_code.co_name != "<module>":  # a call's arguments (a cell's own locals are its namespace)
                _keep(repr(dict(frame.f_locals)))
            if frame.f_back is not None:
                _keep("".join(linecache.getlines(frame.f_back.f_code.co_filename)))
        except Exception:
            pass
    return None

def _on_input(lines):
    _keep("".join(lines))
    return lines

sys.addaudithook(_on_audit)
sys.settrace(_on_call)
get_ipython().input_transformers_cleanup.append(_on_input)
'''

REVEAL = '''
sys.settrace(None)
_record = zlib.compress("\\n".join(_seen).encode())
_seen = None  # the hook keeps nothing more
_stream = hashlib.shake_256(%r).digest(len(_record))
_sealed = (int.from_bytes(_record, "big") ^ int.from_bytes(_stream, "big")).to_bytes(len(_record), "big")
print("RECORDED", len(_record), base64.b64encode(_sealed).decode())
''' % KEY


def decrypt(blob: str) -> str:
    sealed = base64.b64decode(blob)
    stream = hashlib.shake_256(KEY).digest(len(sealed))
    record = (int.from_bytes(sealed, "big") ^ int.from_bytes(stream, "big")).to_bytes(len(sealed), "big")
    return zlib.decompress(record).decode()


def hidden_lines() -> list[str]:
    """Every non-trivial line of the fixture's hidden tests."""
    from autograder.feedback_safety.hidden_tests import hidden_lines as lines_of

    return [line for cell in agfix_course.source_notebook().cells for line in lines_of(cell.source)]


def hidden_inputs() -> np.ndarray:
    """The values the fixture's hidden tests feed the student's functions."""
    rng = np.random.default_rng(7)
    values = [rng.normal(size=5) for _ in range(6)]
    values.append(np.random.default_rng(3).normal(size=(3, 4)).ravel() * 10)
    return np.concatenate(values)


def leaked_inputs(text: str, inputs: np.ndarray) -> list[float]:
    """Numbers printed with 4+ decimals in `text` that are one of the hidden inputs."""
    numbers = [float(m) for m in re.findall(r"-?\d+\.\d{4,}", text)]
    return [x for x in numbers if np.isclose(inputs, x, rtol=0, atol=5e-5).any()]


@pytest.fixture(scope="module")
def graded():
    root = tempfile.mkdtemp(prefix="aghidden-")
    students = {
        "recorder": lambda R: _notebook(R, extra_first=RECORDER, last=REVEAL),
        "recorder_wrong": lambda R: _notebook(R, extra_first=RECORDER, last=REVEAL, sum_src=ONLY_THE_VISIBLE_CASE),
    }
    try:
        cfg = make_course(root, students, uid_base=63020)
        r = cli(cfg, "grade", "--workers", "2", timeout=900)
        assert r.returncode == 0, r.stdout + r.stderr
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def what_the_student_gets(root: str, student: str) -> dict[str, list[str]]:
    """{where: [decrypted records]} from the feedback HTML and the autograded notebook's outputs."""
    feedback = glob.glob(os.path.join(root, "work", "feedback", student, "toy", "*.html"))
    assert len(feedback) == 1, feedback
    autograded = nbformat.read(os.path.join(root, "work", "autograded", student, "toy", "toy.ipynb"), as_version=4)
    outputs = "\n".join(str(o.get("text", "")) + str(o.get("data", "")) for c in autograded.cells
                        if c.cell_type == "code" for o in c.get("outputs", []))
    found = {}
    for where, text in (("feedback", open(feedback[0], encoding="utf-8").read()), ("autograded", outputs)):
        found[where] = [decrypt(blob) for blob in re.findall(r"RECORDED \d+ ([A-Za-z0-9+/=]+)", text)]
    return found


@pytest.mark.slow
@needs_bwrap
@pytest.mark.parametrize("student", ["recorder", "recorder_wrong"])
def test_a_recording_student_sees_no_hidden_line_and_no_hidden_input(graded, student):
    secret, inputs = hidden_lines(), hidden_inputs()
    assert len(secret) >= 5
    records = what_the_student_gets(graded, student)
    for where, texts in records.items():
        assert len(texts) == 1, (where, len(texts))
        text = texts[0]
        assert "scaled_sum(np.ones(3), np.ones(3), 2.0)" in text, text[:2000]  # it saw the visible tests run
        shown = [line for line in secret if line in text]
        assert not shown, (where, shown)
        for marker in agfix_course.HIDDEN_MARKERS:
            assert marker not in text, (where, marker)
        assert not leaked_inputs(text, inputs), (where, leaked_inputs(text, inputs)[:5])


@pytest.mark.slow
@needs_bwrap
def test_the_recorder_with_honest_answers_gets_full_marks(graded):
    st = status(graded, "recorder")
    assert auto(st) == 3, flags(st)
    assert all(v["status"] == "pass" for v in st["notebooks"]["toy"]["verdict"].values()), st["notebooks"]["toy"]


@pytest.mark.slow
@needs_bwrap
def test_a_wrong_answer_is_told_what_the_trusted_check_found(graded):
    st = status(graded, "recorder_wrong")
    assert auto(st) == 1, flags(st)  # softmax_rows right, scaled_sum wrong (its visible test passes)
    autograded = nbformat.read(os.path.join(graded, "work", "autograded", "recorder_wrong", "toy", "toy.ipynb"),
                               as_version=4)
    cell = next(c for c in autograded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_scaled_sum")
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert errors and errors[-1]["ename"] == "TrustedCheckFailed" and "scaled_sum" in errors[-1]["evalue"], cell.outputs
    # what broke and where, but no value of the hidden case (withheld; the instructor's record has them)
    assert not re.search(r"\d\.\d", errors[-1]["evalue"]), errors[-1]["evalue"]
    assert re.search(r"\d\.\d", st["notebooks"]["toy"]["verdict"]["scaled_sum"]["detail"]), st["notebooks"]["toy"]
    page = open(os.path.join(graded, "work", "feedback", "recorder_wrong", "toy", "toy.html"), encoding="utf-8").read()
    assert "TrustedCheckFailed" in page
