"""gptref.grading: the guard, the comparisons' messages, and check() on the day-2 exercises.

The day-2 references are gptref.attention's; the "student" functions here are independent
re-implementations (or planted mistakes), so each test fails if the machinery misjudges them.
"""

from __future__ import annotations

import contextlib
import io
import math

import pytest
import torch
import torch.nn.functional as F

import gptref.attention as A
from gptref.grading import ForbiddenCallError, assert_close, check, difference, exercises, forbid
from gptref.grading.compare import describe

# Aliases captured at import time, before any guard is entered.
sm = torch.softmax
from torch.nn.functional import scaled_dot_product_attention as f_sdpa  # noqa: E402

from gptref.attention import scaled_dot_product_attention as ref_sdpa  # noqa: E402

X = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0))


# -- the guard ------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, forbidden, name", [
    (lambda: sm(X, -1), (torch.softmax,), "torch.softmax"),
    (lambda: torch.softmax(X, -1), (torch.softmax,), "torch.softmax"),
    (lambda: X.softmax(-1), (torch.Tensor.softmax,), "torch.Tensor.softmax"),
    (lambda: F.softmax(X, -1), (F.softmax,), "torch.nn.functional.softmax"),
    (lambda: f_sdpa(X, X, X), (F.scaled_dot_product_attention,), "scaled_dot_product_attention"),
    (lambda: ref_sdpa(X, X, X), (A.scaled_dot_product_attention,), "gptref.attention.scaled_dot_product_attention"),
    (lambda: A.causal_mask(3), (A.causal_mask,), "gptref.attention.causal_mask"),
    (lambda: A.MultiHeadAttention(4, 2)(X), (A.MultiHeadAttention,), "MultiHeadAttention"),
])
def test_guard_catches_forbidden_calls(call, forbidden, name):
    with pytest.raises(ForbiddenCallError) as info:
        with forbid(*forbidden):
            call()
    assert name in str(info.value) and "write yourself" in str(info.value)


def test_guard_catches_a_swallowed_violation():
    def sneaky():
        try:
            return ref_sdpa(X, X, X)
        except Exception:
            return None

    with pytest.raises(ForbiddenCallError, match="scaled_dot_product_attention"):
        with forbid(A.scaled_dot_product_attention):
            sneaky()


def test_guard_allows_other_calls_and_ends_on_exit():
    with forbid(torch.softmax, A.scaled_dot_product_attention, A.causal_mask):
        w = (X @ X.transpose(-2, -1)).exp()  # allowed torch calls
        w = w / w.sum(-1, keepdim=True)
        A.padding_mask(torch.ones(2, 3, dtype=torch.bool))  # an allowed gptref function
    torch.testing.assert_close(w, torch.softmax(X @ X.transpose(-2, -1), -1))
    sm(X, -1)  # after exit, everything works again
    ref_sdpa(X, X, X)
    A.causal_mask(2)
    assert A.MultiHeadAttention(4, 2)(X).shape == X.shape  # class methods restored too


def test_guard_reports_forbidden_call_over_a_later_error():
    with pytest.raises(ForbiddenCallError):
        with forbid(A.causal_mask):
            try:
                A.causal_mask(2)
            except Exception:
                pass
            raise ValueError("unrelated")


# -- compare messages -----------------------------------------------------------------------------
@pytest.mark.parametrize("got, expected, words", [
    (torch.ones(3, 2), torch.ones(2, 3),
     ["shape (3, 2)", "(2, 3)", "the order of the sizes you view or reshape to", "transpose or permute"]),
    (torch.ones(6), torch.ones(2, 3), ["shape", "reshaped"]),
    (torch.ones(2, 3, dtype=torch.float64), torch.ones(2, 3), ["dtype torch.float64", "torch.float32"]),
    (torch.ones(2, 2), torch.ones(2, 2, dtype=torch.bool), ["bool"]),
    (torch.tensor([1.0, float("nan")]), torch.tensor([1.0, 0.0]), ["NaN", "index (1,)"]),
    (torch.tensor([1.0, 2.5]), torch.tensor([1.0, 2.0]),
     ["largest error is 0.5", "index (1,)", "got 2.5", "expected 2"]),
    (torch.ones(4) * math.sqrt(8), torch.ones(4), ["times the expected", "sqrt(8)"]),
    (torch.ones(4) / 12, torch.ones(4), ["0.08333 is 1/12,"]),  # a mean over 12 rows: the count comes first
    (torch.tensor([10.0501]), torch.tensor([10.0499]), ["got 10.0501, expected 10.0499"]),  # digits that differ
    ((torch.ones(2),), (torch.ones(2), torch.ones(2)), ["2 values", "got 1"]),
    ([torch.ones(2), torch.zeros(2)], [torch.ones(2), torch.ones(2)], ["output[1]"]),
    ("abcd", "abXd", ["position 2"]),
    (3, 4, ["should be 4", "got 3"]),
    (torch.ones(2), 1.5, ["should be a number"]),
])
def test_difference_messages(got, expected, words):
    message = difference(got, expected)
    assert message is not None
    for w in words:
        assert w in message, f"{w!r} not in {message!r}"
    with pytest.raises(AssertionError, match="output"):
        assert_close(got, expected)


def test_difference_accepts_equal_and_close_values():
    x = torch.randn(5, 7, generator=torch.Generator().manual_seed(1))
    assert difference(x + 1e-7, x) is None
    assert difference((x, {"a": [1, 2.0]}), (x.clone(), {"a": [1, 2.0 + 1e-9]})) is None
    assert difference(x * 1.01, x, rtol=0.02) is None
    assert describe(torch.zeros(2, 3, 4)) == "float32 tensor (2, 3, 4)"


# -- check() --------------------------------------------------------------------------------------
def my_sdpa(q, k, v, mask=None):
    """An independent attention: per-row loops would be slow, so einsum and an explicit exp."""
    s = torch.einsum("...qd,...kd->...qk", q, k) / math.sqrt(q.shape[-1])
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    m = s.amax(-1, keepdim=True).nan_to_num(0.0, neginf=0.0)
    e = (s - m).exp()
    z = e.sum(-1, keepdim=True)
    w = torch.where(z > 0, e / z.clamp_min(1e-30), torch.zeros_like(e))
    return torch.einsum("...qk,...kd->...qd", w, v), w


def test_check_accepts_a_correct_solution_and_is_silent():
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        result = check("02_attention", "scaled_dot_product_attention", my_sdpa)
        check("02_attention", "causal_mask", lambda t_q, t_k=None: torch.ones(t_q, t_k or t_q, dtype=torch.bool).tril(
            (t_k or t_q) - t_q))
    assert result is None
    assert err.getvalue() == ""


@pytest.mark.parametrize("fn, words", [
    (lambda q, k, v, mask=None: my_sdpa(q * math.sqrt(q.shape[-1]), k, v, mask),
     ["weights", "in scaled_dot_product_attention("]),
    (lambda q, k, v, mask=None: ref_sdpa(q, k, v, mask),
     ["your code calls gptref.attention.scaled_dot_product_attention"]),
    (lambda q, k, v, mask=None: (f_sdpa(q, k, v), None), ["your code calls", "scaled_dot_product_attention"]),
    (lambda q, k, v, mask=None: my_sdpa(q, k, v, mask)[0], ["return a tuple (output, weights)"]),
    (lambda q, k, v, mask=None: torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -2),
     ["return a tuple"]),
    (lambda q, k, v, mask=None: (q.mul_(2), q)[1:] * 2, ["in place"]),
    (lambda q, k, v, mask=None: 1 / 0, ["raised ZeroDivisionError"]),
])
def test_check_messages(fn, words):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(AssertionError) as info:
        check("02_attention", "scaled_dot_product_attention", fn)
    for w in words:
        assert w in str(info.value), f"{w!r} not in {str(info.value)!r}"
    assert err.getvalue() == ""


def test_check_explains_nan_and_wrong_softmax_dim():
    def nan_rows(q, k, v, mask=None):
        s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        w = torch.softmax(s, -1)
        return w @ v, w

    def wrong_dim(q, k, v, mask=None):
        w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -2)
        return w @ v, w

    with pytest.raises(AssertionError, match="may see no key at all and its weights are NaN"):
        check("02_attention", "scaled_dot_product_attention", nan_rows)
    with pytest.raises(AssertionError, match="LAST dim"):
        check("02_attention", "scaled_dot_product_attention", wrong_dim)


def test_check_lets_not_implemented_through():
    def stub(q, k, v, mask=None):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        check("02_attention", "scaled_dot_product_attention", stub)


def test_registry():
    assert "02_attention" in exercises.days()
    exs = exercises.load("02_attention")
    assert {"causal_mask", "scaled_dot_product_attention", "split_heads", "merge_heads"} <= set(exs)
    with pytest.raises(ValueError, match="no exercises"):
        exercises.load("99_nothing")
    with pytest.raises(ValueError, match="has no exercise"):
        exercises.get("02_attention", "nope")


@pytest.mark.parametrize("day", exercises.days())
def test_every_exercise_is_deterministic(day):
    """Same seed, same cases (the autograder re-runs them with its own seed)."""
    for name, ex in exercises.load(day).items():
        a, b = ex.make_cases(5), ex.make_cases(5)
        assert difference(a, b) is None, f"{ex.key}: make_cases(5) differs between two calls"
        assert len(a) >= 2, f"{ex.key}: fewer than two cases"


def test_check_catches_a_list_argument_changed_in_place():
    """A merge that returns the right ids but empties the caller's list is caught by the hidden check too."""
    def merge_and_consume(ids, pair, new_id):
        out, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair):
                out.append(new_id)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        ids.clear()
        return out

    with pytest.raises(AssertionError, match="changed its argument 'ids' in place"):
        check("01_bpe", "merge", merge_and_consume)
