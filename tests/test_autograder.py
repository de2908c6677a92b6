"""Unit tests of the autograder's pieces (fast; no kernels)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile

import nbformat
import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "hostile"))

import agfix_cases  # noqa: E402
import agfix_course  # noqa: E402

from autograder.feedback_safety.hidden_tests import ScrubHiddenTests, hidden_lines  # noqa: E402
from autograder.inside import plaindata  # noqa: E402
from autograder.precheck import precheck  # noqa: E402
from autograder.scan import scan  # noqa: E402
from autograder.verdict import derive_seed, verdict_cells  # noqa: E402
from gptref.grading.compare import policy  # noqa: E402


def test_plaindata_round_trip_keeps_values_and_dtypes():
    g = torch.Generator().manual_seed(0)
    obj = {"t": torch.randn(2, 3, generator=g), "h": torch.randn(4, generator=g).to(torch.bfloat16),
           "i": torch.arange(5), "b": torch.tensor([True, False]), "a": np.arange(6).reshape(2, 3),
           "tup": (1, 2.5, "s", b"\x00\xff", None, float("nan"), float("inf")), "l": [True, np.float32(1.5)]}
    back = plaindata.loads(json.dumps(plaindata.encode(obj)))
    assert torch.equal(back["t"], obj["t"]) and back["t"].dtype == torch.float32
    assert back["h"].dtype == torch.bfloat16 and torch.equal(back["h"], obj["h"])
    assert torch.equal(back["i"], obj["i"]) and torch.equal(back["b"], obj["b"])
    assert np.array_equal(back["a"], obj["a"])
    assert (back["tup"][:5] == (1, 2.5, "s", b"\x00\xff", None) and np.isnan(back["tup"][5])
            and back["tup"][6] == float("inf"))
    assert back["l"][0] is True and back["l"][1] == 1.5


class AlwaysEqual:
    def __eq__(self, other):
        return True


@pytest.mark.parametrize("bad", [AlwaysEqual(), np.array([AlwaysEqual()], dtype=object), {object(): 2},
                                 {frozenset(): 1}, np.zeros(2).view(type("Sub", (np.ndarray,), {})), torch.Generator()])
def test_plaindata_refuses_objects(bad):
    with pytest.raises(TypeError):
        plaindata.encode(bad)


def test_plaindata_never_unpickles():
    buf = io.BytesIO()
    np.save(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    import base64

    with pytest.raises(ValueError):
        plaindata.decode({"__np__": base64.b64encode(buf.getvalue()).decode()})


def test_the_one_policy_on_numpy_and_python_answers():
    """The toy course's answers (numpy) go through the policy the hidden tests use: torch.isclose at the dtype's
    tolerance."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4))
    assert policy(x.copy(), x) is None
    assert policy(x + 1e-9, x) is None
    assert "wrong at" in policy(x + 1e-2, x)
    assert "shape" in policy(x.T, x)
    assert policy((1, [2.0, x]), (1, [2.0, x])) is None
    assert policy(AlwaysEqual(), x) is not None
    assert policy(3, 3) is None and policy(3, 4) is not None
    assert policy(np.array([1, 2]), np.array([1, 3])) is not None


def test_seed_is_stable_and_secret_dependent():
    a = derive_seed(b"s1", "toy", "alice", "sum")
    assert a == derive_seed(b"s1", "toy", "alice", "sum")
    assert a != derive_seed(b"s2", "toy", "alice", "sum") and a != derive_seed(b"s1", "toy", "bob", "sum")


def test_scan_flags_cheats_not_honest_code():
    assert scan([agfix_cases.GOOD_SUM, agfix_cases.GOOD_SOFTMAX, "model.eval()\nimport re\nre.compile('x')"]) == []
    cheats = {
        "np.allclose = lambda *a: True": "monkeypatches",
        "import gc\ngc.get_objects()": "garbage collector",
        "import sys\nsys._getframe(1).f_locals": "frame",
        "get_ipython().ast_transformers.append(x)": "rewrites",
        "import os\nos.environ['NBGRADER_EXECUTION']": "NBGRADER",
        "import ctypes": "ctypes",
        "torch._C._foo()": "torch._C",
        "setattr(torch, 'allclose', f)": "monkeypatches",
    }
    for src, why in cheats.items():
        assert any(why in f for f in scan([src])), src
    assert scan(["from agfix_ref import scaled_sum_ref"], {"agfix_ref.scaled_sum_ref": "must not call"})


def _release_nb():
    return agfix_course.source_notebook()


def test_precheck_broken_notebooks_have_reasons():
    R = _release_nb()
    assert "UTF-8" in precheck(b"\xff\xfe{}", R)[3]
    assert "JSON" in precheck(b'{"cells": [', R)[3]
    other = agfix_cases.notebook(R)
    for c in other.cells:
        if "nbgrader" in c.metadata:
            c.metadata["nbgrader"]["grade_id"] += "_x"
    assert "another assignment" in precheck(nbformat.writes(other).encode(), R)[3]
    nb, notes, flags, fatal = precheck(nbformat.writes(agfix_cases.notebook(R)).encode(), R)
    assert fatal is None and not flags


def test_precheck_restores_edited_metadata_and_kernelspec():
    R = _release_nb()
    nb = agfix_cases.notebook(R)
    nb.metadata["kernelspec"]["name"] = "ir"
    for c in nb.cells:
        m = c.metadata.get("nbgrader", {})
        if m.get("grade_id") == "test_scaled_sum":
            m.update(grade=False, locked=False, points=99)
    fixed, notes, flags, fatal = precheck(nbformat.writes(nb).encode(), R)
    assert fatal is None and fixed.metadata.kernelspec.name == "python3" and any("kernelspec" in n for n in notes)
    assert any("test_scaled_sum" in f and "edited" in f for f in flags)
    cell = [c for c in fixed.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_scaled_sum"][0]
    assert cell.metadata.nbgrader == [c for c in R.cells
                                      if c.metadata.get("nbgrader", {}).get("grade_id") == "test_scaled_sum"
                                      ][0].metadata.nbgrader


def test_scrub_removes_hidden_tests_from_source_and_outputs():
    nb = _release_nb()
    secret = []
    for c in nb.cells:
        secret += hidden_lines(c.source)
        if c.metadata.get("nbgrader", {}).get("grade_id") == "test_scaled_sum":
            c.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="",
                                                traceback=["----> 6 " + ln for ln in c.source.splitlines()]),
                         nbformat.v4.new_output("stream", name="stdout", text="ok\n" + c.source)]
    assert any("HIDDEN_MARKER_SUM_31337" in s for s in secret)
    out, _ = ScrubHiddenTests().preprocess(nb, {})
    text = nbformat.writes(out)
    for marker in agfix_course.HIDDEN_MARKERS:
        assert marker not in text
    assert "scaled_sum(1, 1, 2) should be 3" in text  # the visible test stays


def test_verdict_cells_skip_tests_and_experiments():
    """Solution cells whole; of the rest only the statements the solutions need (here `helper` and its `scale`)."""
    nb = agfix_cases.notebook(_release_nb(),
                              sum_src="def scaled_sum(x, y, alpha):\n    return x + helper() * alpha * y\n",
                              extra_after_sum="scale = 1\nunused_value = 7\nfor i in range(10**9):\n    pass\n"
                                              "def helper():\n    return scale\nbig = sorted(range(10**8))")
    cells = verdict_cells(nb)
    kinds = [k for k, _ in cells]
    text = "\n".join(s for _, s in cells)
    assert kinds.count("solution") == 2 and "HIDDEN" not in text and "assert" not in text
    assert "range(10**9)" not in text and "def helper" in text and "scale = 1" in text
    assert "unused_value" not in text and "big =" not in text


def test_collect_layouts_take_only_expected_notebooks(tmp_path):
    from autograder.collect import collect
    from autograder.course import Course

    root = tmp_path / "course"
    cfg = agfix_course.build(str(root))
    os.makedirs(root / "course" / "toy")
    nbformat.write(_release_nb(), str(root / "course" / "toy" / "toy.ipynb"))
    src = tmp_path / "src"
    (src / "alice").mkdir(parents=True)
    (src / "alice" / "toy.ipynb").write_text("{}")
    (src / "alice" / "numpy.py").write_text("boom")
    (src / "bob__toy.ipynb").write_text("{}")
    with zipfile.ZipFile(src / "carol.zip", "w") as z:
        z.writestr("../../evil/toy.ipynb", "{}")
        z.writestr("x/sitecustomize.py", "boom")
    (src / ".hidden__toy.ipynb").write_text("{}")
    (src / "dave").mkdir()
    (src / "dave" / "toy_v2.ipynb").write_text("{}")
    lines = []
    course = Course(cfg)
    assert collect(course, str(src), out=lines.append) == 0
    got = sorted(os.path.relpath(os.path.join(d, f), course.submitted)
                 for d, _, fs in os.walk(course.submitted) for f in fs)
    assert got == ["alice/toy/toy.ipynb", "bob/toy/toy.ipynb", "carol/toy/toy.ipynb"]
    report = "\n".join(lines)
    assert "alice/numpy.py" in report and "sitecustomize.py" in report and "toy_v2.ipynb" in report
    assert os.path.isdir(os.path.join(course.submitted, "dave", "toy"))  # graded as missing, with the reason
    assert not (tmp_path / "evil").exists()


def test_kernel_seed_code_seeds_like_the_verdict_and_leaves_no_names():
    import random

    from autograder.inside.seeding import kernel_code, seed_everything

    seed_everything(123)
    want = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    namespace = {}
    exec(kernel_code(123), namespace)  # what the notebook runner sends to the student's kernel
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == want
    assert set(namespace) == {"__builtins__"}


def test_verdict_cells_keep_a_graded_function_the_notebook_gives():
    """A graded function defined in a given (non-solution) cell, like day 9's run_ddp, runs in the verdict with what
    it uses; without being asked for, it is skipped like any experiment."""
    nb = agfix_cases.notebook(_release_nb(), extra_after_sum="def given_runner(x):\n    return runner_scale * x\n"
                                                             "runner_scale = 3\nother = 5\n")
    asked = "\n".join(s for _, s in verdict_cells(nb, ["given_runner"]))
    assert "def given_runner" in asked and "runner_scale = 3" in asked and "other = 5" not in asked
    assert "def given_runner" not in "\n".join(s for _, s in verdict_cells(nb))


_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_grading_processes_skip_the_slow_optional_import_and_still_validate_notebooks():
    """autograder/inside/startup.py: importing nbformat under the autograder leaves out rfc3987_syntax (2 s of
    Lark grammar per process) and nbformat still validates; without the autograder it is imported where installed."""
    code = ("import sys, importlib.util; installed = importlib.util.find_spec('rfc3987_syntax') is not None; {pre}"
            "import nbformat, nbformat.v4 as v4; nbformat.validate(v4.new_notebook(cells=[v4.new_code_cell('1')])); "
            "print(sys.modules.get('rfc3987_syntax') is not None, installed)")

    def imported_installed(pre: str) -> list[str]:  # in a fresh process: this one has imported autograder already
        r = subprocess.run([sys.executable, "-c", code.format(pre=pre)], capture_output=True, text=True, cwd=_REPO)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    assert imported_installed("import autograder; ")[0] == "False", (
        "the autograder's processes still import rfc3987_syntax")
    imported, installed = imported_installed("")
    assert imported == installed, (
        "without the autograder, nbformat's jsonschema should import rfc3987_syntax where installed")
