"""The trusted verdict's transport and rules: plain data, one comparison policy, forbidden calls,
and no reference through the back door (the sandboxed part needs bubblewrap)."""

from __future__ import annotations

import copy
import json
import math

import nbformat
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder.inside import plaindata
from gptref.grading import exercises

# ------------------------------------------------------------------ plain data, property-tested

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int8,
          torch.uint8, torch.bool, torch.complex64]


@st.composite
def tensors(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, 3), max_size=3)))  # () included: a 0-d scalar
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    if dtype.is_floating_point or dtype.is_complex:
        return (torch.randn(shape, generator=g, dtype=torch.float64) * 100).to(dtype)
    info = torch.iinfo(dtype)
    return torch.randint(max(info.min, -1000), min(info.max, 1000), shape, generator=g, dtype=dtype)


keys = st.one_of(st.text(max_size=5), st.integers(-10**12, 10**12), st.binary(max_size=4),
                 st.tuples(st.integers(0, 300), st.integers(0, 300)),
                 st.tuples(st.binary(max_size=3), st.binary(max_size=3)))
leaves = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True), st.text(max_size=8),
                   st.binary(max_size=8), tensors())
values = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner), st.dictionaries(keys, inner, max_size=4)), max_leaves=12)


def same(a, b) -> bool:
    """Structural equality with exact types: tensors by dtype, shape and bits; floats NaN-aware."""
    if type(a) is not type(b):
        return False
    if isinstance(a, torch.Tensor):
        bits_a = a.view(-1).view(torch.uint8) if a.numel() else a
        bits_b = b.view(-1).view(torch.uint8) if b.numel() else b
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(bits_a, bits_b)
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


@settings(max_examples=300, deadline=None)
@given(values)
def test_plaindata_round_trip_is_exact(obj):
    back = plaindata.decode(json.loads(json.dumps(plaindata.encode(obj))))
    assert same(obj, back), (obj, back)


def test_scalar_tensor_keeps_shape_and_numpy_scalars_stay_scalars():
    back = plaindata.loads(plaindata.dumps({"loss": torch.tensor(2.5), "n": np.int64(3), "x": np.float32(0.5)}))
    assert back["loss"].shape == () and back["loss"].item() == 2.5
    assert back["n"] == 3 and back["x"].dtype == np.float32 and np.ndim(back["x"]) == 0


class AlwaysEqual:
    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


@pytest.mark.parametrize("bad", [AlwaysEqual(), [1, AlwaysEqual()], {AlwaysEqual(): 1}, {"k": AlwaysEqual()},
                                 type("MyList", (list,), {})([1]), type("MyInt", (int,), {})(3), torch.Generator()])
def test_plaindata_refuses_objects_in_answers(bad):
    with pytest.raises(TypeError):
        plaindata.encode(bad)


def test_argument_objects_cross_only_when_asked():
    from gptref.grading.models import TableModel

    g = torch.Generator().manual_seed(5)
    args = {"model": TableModel(torch.randn(2, 4, 4, generator=g)), "generator": torch.Generator().manual_seed(9)}
    with pytest.raises(TypeError):
        plaindata.encode(args)  # an answer may not be an object
    back = plaindata.decode(json.loads(json.dumps(plaindata.encode(args, objects=True))), objects=True)
    idx = torch.tensor([[0, 3, 1]])
    assert torch.equal(back["model"](idx), args["model"](idx))
    assert torch.equal(torch.rand(5, generator=back["generator"]),
                       torch.rand(5, generator=torch.Generator().manual_seed(9)))
    with pytest.raises(ValueError):  # answers never decode to objects
        plaindata.decode(json.loads(json.dumps(plaindata.encode(args, objects=True))))


# ------------------------------------------------------------------ every exercise, every day

ALL = [pytest.param(ex, id=ex.key) for ex in exercises.all_exercises()]


@pytest.mark.parametrize("ex", ALL)
def test_reference_answers_and_arguments_survive_the_round_trip(ex):
    """What the trusted verdict does: arguments made here cross in, answers cross out, one policy compares."""
    for i, case in enumerate(ex.make_cases(1234)):
        args = ex.arguments(copy.deepcopy(case))
        sent = plaindata.decode(json.loads(json.dumps(plaindata.encode(args, objects=True))), objects=True)
        torch.manual_seed(i)
        expected = ex.reference(**ex.arguments(copy.deepcopy(case)))
        torch.manual_seed(i)
        got = ex.reference(**sent)
        back = plaindata.decode(json.loads(json.dumps(plaindata.encode(got))))
        problem = ex.check_answer(back, expected, case)
        assert problem is None, f"{ex.key} case {i}: {problem}"


def test_every_exercise_has_the_one_policy():
    from gptref.grading.compare import policy

    defaults = [ex for ex in exercises.all_exercises() if ex.compare is policy]
    assert defaults, "some exercises use the default policy"
    ex = defaults[0]
    case = ex.make_cases(0)[0]
    expected = ex.reference(**ex.arguments(copy.deepcopy(case)))
    assert ex.check_answer(expected, expected, case) is None
    wrong = expected + 1 if isinstance(expected, torch.Tensor) and not expected.dtype == torch.bool else ~expected
    assert ex.check_answer(wrong, expected, case) is not None


def test_forbidden_callables_travel_by_name():
    from gptref.grading.guard import locate, resolve

    for ex in exercises.all_exercises():
        for f in ex.forbidden:
            path = locate(f)
            assert path is not None, f"{ex.key}: {f!r} has no importable name"
            got = resolve(path)
            assert got is f or got == f


# ------------------------------------------------------------------ the sandboxed run: forbidden calls and back doors

ROUTES = {
    "honest": "def {name}(t_q, t_k=None):\n    t_k = t_q if t_k is None else t_k\n"
              "    return torch.ones(t_q, t_k, dtype=torch.bool).tril(t_k - t_q)\n",
    "alias": "from gptref.attention import causal_mask as _cm\ndef {name}(t_q, t_k=None):\n    return _cm(t_q, t_k)\n",
    "getattr": "import gptref.attention as _A\ndef {name}(t_q, t_k=None):\n"
               "    return getattr(_A, 'causal' + '_mask')(t_q, t_k)\n",
    "importlib": "import importlib\ndef {name}(t_q, t_k=None):\n"
                 "    return importlib.import_module('gptref.' + 'attention').causal_mask(t_q, t_k)\n",
    "exec": "def {name}(t_q, t_k=None):\n    g = {{}}\n    exec('from gptref.attention import causal_mask as f', g)\n"
            "    return g['f'](t_q, t_k)\n",
    "file_loader": "import importlib.util, gptref, os, sys\ndef {name}(t_q, t_k=None):\n"
                   "    p = os.path.join(os.path.dirname(gptref.__file__), 'attention.py')\n"
                   "    s = importlib.util.spec_from_file_location('private_attention', p)\n"
                   "    m = importlib.util.module_from_spec(s); sys.modules['private_attention'] = m\n"
                   "    s.loader.exec_module(m)\n    return m.causal_mask(t_q, t_k)\n",
    "runpy": "import runpy, gptref, os\ndef {name}(t_q, t_k=None):\n"
             "    g = runpy.run_path(os.path.join(os.path.dirname(gptref.__file__), 'attention.py'))\n"
             "    return g['causal_mask'](t_q, t_k)\n",
    "read_source": "import gptref, os\ndef {name}(t_q, t_k=None):\n"
                   "    g = {{}}\n"
                   "    exec(open(os.path.join(os.path.dirname(gptref.__file__), 'attention.py')).read(), g)\n"
                   "    return g['causal_mask'](t_q, t_k)\n",
    "read_exercise": "import gptref, os\ndef {name}(t_q, t_k=None):\n"
                     "    p = os.path.join(os.path.dirname(gptref.__file__), 'grading', 'exercises',\n"
                     "                     'd02_attention.py')\n"
                     "    g = {{}}\n    exec(open(p).read(), g)\n    return g['A'].causal_mask(t_q, t_k)\n",
    "pyc": "import gptref, os, glob, marshal\ndef {name}(t_q, t_k=None):\n"
           "    d = os.path.join(os.path.dirname(gptref.__file__), '__pycache__')\n"
           "    p = sorted(glob.glob(os.path.join(d, 'attention.*.pyc')))[0]\n"
           "    g = {{}}\n    exec(marshal.loads(open(p, 'rb').read()[16:]), g)\n"
           "    return g['causal_mask'](t_q, t_k)\n",
}


@pytest.mark.slow
def test_verdict_sandbox_catches_every_route_to_the_reference(tmp_path):
    import dataclasses
    import py_compile

    from traitlets.config import Config

    from autograder.sandbox import Sandbox, bwrap_problem
    from autograder.settings import Autograder
    from autograder.verdict import trusted_verdict

    problem = bwrap_problem()
    if problem:
        pytest.skip(f"needs bubblewrap: {problem}")
    import gptref.attention as A

    py_compile.compile(A.__file__, cfile=importlib_cache(A.__file__))  # a .pyc to steal, as a grader's run leaves one
    base = exercises.get("02_attention", "causal_mask")
    exs = [dataclasses.replace(base, name=f"cm_{route}") for route in ROUTES]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import torch")]
    for route, src in ROUTES.items():
        cell = nbformat.v4.new_code_cell(src.format(name=f"cm_{route}"))
        cell.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": f"cm_{route}", "locked": False}
        nb.cells.append(cell)
    config = Config()
    config.Autograder.sandbox_uid_base = 62040
    config.Autograder.memory_mb = 3072
    settings = Autograder(config=config)
    seeds = {ex.name: 7 for ex in exs} | {"__run__": 1}
    verdicts = trusted_verdict(nb, exs, seeds, Sandbox(settings, slot=0), settings)
    assert verdicts["cm_honest"]["status"] == "pass", verdicts["cm_honest"]
    for route in ROUTES:
        if route == "honest":
            continue
        verdict = verdicts[f"cm_{route}"]
        assert verdict["status"] in ("fail", "error"), f"route {route}: {verdict}"
        if route in ("alias", "getattr", "importlib", "exec"):
            assert verdict["status"] == "fail" and verdict.get("forbidden"), \
                f"route {route} should be caught as a forbidden call: {verdict}"


def importlib_cache(path: str) -> str:
    import importlib.util

    return importlib.util.cache_from_source(path)


def _test_cell(ename: str | None):
    cell = nbformat.v4.new_code_cell("check(...)")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "test_x", "points": 1}
    if ename:
        cell.outputs = [nbformat.v4.new_output("error", ename=ename, evalue="boom", traceback=[])]
    return cell


def test_a_test_cell_scores_only_when_its_visible_part_and_every_governing_verdict_pass():
    from autograder.execute import SandboxedExecute, has_error

    passing = {"status": "pass", "detail": "", "message": ""}
    failing = {"status": "fail", "detail": "case 2: raw text from the student's process",
               "message": "case 2: wrong sign"}
    outcomes = {}
    for visible in (None, "AssertionError"):
        for name, verdict in (("pass", passing), ("fail", failing), ("forbidden", {**failing, "forbidden": True}),
                              ("error", {**failing, "status": "error"}), ("missing", {**failing, "status": "missing"}),
                              ("unavailable", {**failing, "status": "unavailable", "forged": True})):
            cell, status = _test_cell(visible), {"flags": []}
            SandboxedExecute._apply(cell, "test_x", ["f", "g"], {"f": passing, "g": verdict}, True, status)
            outcomes[(visible, name)] = not has_error(cell)
            if name != "pass":  # the student reads the trusted message, never the instructor's detail
                assert cell.outputs[-1]["ename"] == "TrustedCheckFailed", cell.outputs
                shown = cell.outputs[-1]["evalue"]
                assert "wrong sign" in shown and "student's process" not in shown
                assert visible or status["flags"], name
    assert outcomes == {(v, n): v is None and n == "pass" for v, n in outcomes}, outcomes
    cell, status = _test_cell(None), {"flags": []}
    SandboxedExecute._apply(cell, "test_x", [], {}, True, status)  # hidden tests nothing checks: an instructor decides
    assert has_error(cell) and "no trusted check" in status["flags"][0]
    cell, status = _test_cell(None), {"flags": []}
    SandboxedExecute._apply(cell, "test_x", [], {}, False, status)  # a visible-only test cell: its own result
    assert not has_error(cell) and not status["flags"]


def test_a_forged_verdict_answer_is_rejected_flagged_and_worth_nothing():
    from autograder.execute import SandboxedExecute, has_error
    from autograder.sandbox import SandboxResult
    from autograder.settings import Autograder
    from autograder.verdict import trusted_verdict

    class ForgedSandbox:  # what Sandbox.run returns when the answer's signature is wrong
        def new_scratch(self):
            import tempfile

            return tempfile.mkdtemp()

        def run(self, *args, **kwargs):
            return SandboxResult(0, False, b"", "", 0.1, True, ["forged answer rejected"], forged=True)

    ex = exercises.get("02_attention", "causal_mask")
    nb = nbformat.v4.new_notebook()
    verdicts = trusted_verdict(nb, [ex], {ex.name: 1, "__run__": 2}, ForgedSandbox(), Autograder())
    assert verdicts[ex.name]["status"] == "unavailable" and verdicts[ex.name]["forged"], verdicts
    cell, status = _test_cell(None), {"flags": []}
    SandboxedExecute._apply(cell, "test_x", [ex.name], verdicts, True, status)
    assert has_error(cell) and "0 points" in status["flags"][0]


def test_verdict_messages_never_quote_the_students_process():
    from autograder.verdict import judge

    ex = exercises.get("02_attention", "causal_mask")
    cases = ex.make_cases(0)
    leak = "SECRET_CASE_VALUES"
    answers = [{"ok": False, "error": f"ValueError: {leak}"}, {"ok": False, "error": f"{leak}Error: x"},
               {"ok": False, "bad_answer": True, "error": leak}, {"ok": False, "forbidden": leak}]
    for answer in answers:
        verdict = judge(ex, cases, {"status": "ran", "outputs": [answer] * len(cases)})
        assert verdict["status"] != "pass" and leak in verdict["detail"] and leak not in verdict["message"], verdict
    assert "raised ValueError" in judge(ex, cases, {"status": "ran", "outputs": [answers[0]] * len(cases)})["message"]
    verdict = judge(ex, cases, {"status": "missing", "detail": leak})
    assert leak not in verdict["message"]


def test_judge_fails_a_forbidden_call_even_when_other_cases_agree():
    from autograder.verdict import judge

    ex = exercises.get("02_attention", "causal_mask")
    cases = ex.make_cases(0)
    good = [{"ok": True, "value": plaindata.encode(ex.reference(**ex.arguments(c)))} for c in cases]
    assert judge(ex, cases, {"status": "ran", "outputs": good})["status"] == "pass"
    bad = good[:-1] + [{"ok": False, "forbidden": "your code calls gptref.attention.causal_mask"}]
    v = judge(ex, cases, {"status": "ran", "outputs": bad})
    assert v["status"] == "fail" and v["forbidden"] and "causal_mask" in v["detail"]


def test_every_hidden_block_of_the_course_is_a_check_its_verdict_covers():
    """The notebook run never executes hidden blocks: their points come from the trusted verdict, so each
    block may hold only `check(day, name, fn)` calls of exercises that govern the block's cell."""
    import ast
    import glob
    import os

    from autograder.feedback_safety.hidden_tests import HIDDEN

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    uncovered, blocks = [], 0
    for path in sorted(glob.glob(os.path.join(root, "solutions", "*", "*.ipynb"))):
        day = os.path.basename(os.path.dirname(path))
        registry = exercises.load(day)
        for cell in nbformat.read(path, as_version=4).cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            for block in HIDDEN.findall(cell.source):
                blocks += 1
                body = "\n".join(block.splitlines()[1:-1])
                for statement in ast.parse(body).body:
                    if isinstance(statement, ast.ImportFrom) and statement.module == "gptref.grading":
                        continue
                    call = statement.value if isinstance(statement, ast.Expr) else None
                    try:
                        assert isinstance(call, ast.Call) and call.func.id == "check"
                        named_day, name = call.args[0].value, call.args[1].value
                        assert named_day == day and grade_id in registry[name].grade_ids
                    except (AssertionError, AttributeError, IndexError, KeyError):
                        uncovered.append((day, grade_id, ast.unparse(statement)[:120]))
    assert blocks >= 10 and not uncovered, uncovered


def test_a_long_verdict_message_keeps_its_named_mistake_whole():
    from autograder.verdict import NAMED, _clipped

    difference = "output is wrong at 12 of 40 entries; " + "the largest error is at index (3, 1); " * 20
    message = difference + NAMED + "forget the 1/sqrt(d) scale on the scores"
    clipped = _clipped(message)
    assert clipped.endswith(NAMED + "forget the 1/sqrt(d) scale on the scores"), clipped
    assert len(clipped) < len(message) and clipped.startswith("output is wrong at 12 of 40 entries")
    assert _clipped("short") == "short" and len(_clipped("x" * 1000)) == 300
