"""Compare a student's result with the reference's, and say in words what is wrong.

`form_difference(got, expected)` checks only the form (a tensor of the right shape, dtype, device): the
first rung of every exercise's ladder. `difference(got, expected)` returns None when they agree and
otherwise one sentence a student can act on: a wrong type, a wrong shape (with a hint when it is a
transpose), a wrong dtype, NaN where a number was expected, or the largest error with where it happens
(with a hint when every value is off by the same factor). `assert_close` raises that sentence as an AssertionError.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from gptref.grading.patterns import error_pattern

# (rtol, atol) by dtype: a little looser than torch.testing's defaults, because a correct
# student solution may add and multiply in another order than the reference.
TOLERANCES = {
    torch.float64: (1e-7, 1e-7),
    torch.float32: (1e-5, 1e-5),
    torch.float16: (1e-3, 1e-3),
    torch.bfloat16: (1.6e-2, 1e-2),
}


def tolerances(dtype: torch.dtype) -> tuple[float, float]:
    return TOLERANCES.get(dtype, (1e-5, 1e-5))


def describe(value: Any, depth: int = 0) -> str:
    """Short description of an argument for messages: 'float32 tensor (2, 3, 8)', 7, 'abc'."""
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).replace("torch.", "")
        if value.numel() <= 8 and value.dim() <= 2:
            return f"{dtype} tensor {value.tolist()}"
        return f"{dtype} tensor {tuple(value.shape)}"
    if isinstance(value, (list, tuple)):
        if depth >= 1 or len(value) > 6:
            return f"{type(value).__name__} of {len(value)}"
        inner = ", ".join(describe(v, depth + 1) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, dict):
        return f"dict of {len(value)}"
    if isinstance(value, (str, bytes)):
        r = repr(value)
        return r if len(r) <= 40 else r[:37] + "..."
    r = repr(value)
    return r if len(r) <= 40 else type(value).__name__


def _index(flat_i: int, shape: torch.Size) -> tuple[int, ...]:
    idx = []
    for n in reversed(shape):
        idx.append(flat_i % n)
        flat_i //= n
    return tuple(reversed(idx))


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def form_difference(got: Any, expected: torch.Tensor, what: str = "output") -> str | None:
    """The first rung of every ladder: None if `got` is a tensor of the expected shape, dtype and device."""
    if not isinstance(got, torch.Tensor):
        extra = ""
        if isinstance(got, tuple) and got and isinstance(got[0], torch.Tensor):
            extra = f" (you returned a tuple of {len(got)}; return just the tensor)"
        return f"{what} should be a torch.Tensor, got {type(got).__name__}{extra}"
    return _form(got, expected, what)


def _form(got: torch.Tensor, expected: torch.Tensor, what: str) -> str | None:
    if got.shape != expected.shape:
        msg = f"{what} has shape {tuple(got.shape)} but should have shape {tuple(expected.shape)}"
        if sorted(got.shape) == sorted(expected.shape):
            msg += (" (the same sizes in another order: check the order of the sizes you view or reshape to, and "
                    "which dimensions you transpose or permute)")
        elif got.numel() == expected.numel():
            msg += " (the same number of elements: reshaped into the wrong shape?)"
        elif got.dim() != expected.dim():
            msg += (f" ({got.dim()} dimensions instead of {expected.dim()}: a missing or extra dimension, "
                    "or a sum/mean over the wrong one?)")
        return msg
    if expected.dtype == torch.bool and got.dtype != torch.bool:
        return f"{what} should be a bool tensor (True/False), got dtype {got.dtype}"
    if got.dtype != expected.dtype:
        return f"{what} has dtype {got.dtype} but should have dtype {expected.dtype}"
    if got.device != expected.device:
        return f"{what} is on device {got.device} but should be on {expected.device} (where the inputs are)"
    return None


def _tensor_difference(got: torch.Tensor, expected: torch.Tensor, what: str, rtol, atol,
                       locate: bool = True) -> str | None:
    wrong_form = _form(got, expected, what)
    if wrong_form:
        return wrong_form
    got, expected = got.detach(), expected.detach()
    if not expected.dtype.is_floating_point and not expected.is_complex():
        wrong = got != expected
        n = int(wrong.sum())
        if n == 0:
            return None
        i = _index(int(wrong.flatten().nonzero()[0]), expected.shape)
        return (f"{what} differs in {n} of {expected.numel()} entries; first at index {i}: "
                f"got {got[i].item()}, expected {expected[i].item()}")
    g, e = got.double(), expected.double()
    for bad, word in ((torch.isnan, "NaN"), (torch.isinf, "inf")):
        where = bad(g) & ~bad(e)
        if where.any():
            i = _index(int(where.flatten().nonzero()[0]), expected.shape)
            return (f"{what} has {int(where.sum())} {word} value(s) where the expected result is finite; "
                    f"first at index {i} (expected {_fmt(e[i].item())})")
    rtol_d, atol_d = tolerances(expected.dtype)
    rtol = rtol_d if rtol is None else rtol
    atol = atol_d if atol is None else atol
    close = torch.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
    if bool(close.all()):
        return None
    err = (g - e).abs().nan_to_num(nan=math.inf)
    err = torch.where(close, torch.zeros_like(err), err)
    flat = int(err.flatten().argmax())
    i = _index(flat, expected.shape)
    shown, wanted = _fmt(g[i].item()), _fmt(e[i].item())
    if shown == wanted:  # 4 digits hide the difference: show as many as tell them apart
        digits = next(n for n in range(5, 18) if f"{g[i].item():.{n}g}" != f"{e[i].item():.{n}g}" or n == 17)
        shown, wanted = f"{g[i].item():.{digits}g}", f"{e[i].item():.{digits}g}"
    msg = (f"{what} is wrong at {int((~close).sum())} of {expected.numel()} entries; the largest error is "
           f"{_fmt(err.flatten()[flat].item())} at index {i} (got {shown}, expected {wanted}; "
           f"tolerance rtol={rtol:g}, atol={atol:g})")
    return msg + (_ratio_hint(g, e) or (error_pattern(g, e, close, rtol, atol) if locate else ""))


def _ratio_hint(g: torch.Tensor, e: torch.Tensor) -> str:
    """' (every value is 2.83 times the expected one ...)' when got = c * expected for one c."""
    sel = e.abs() > 1e-6
    if int(sel.sum()) < 2:
        return ""
    ratio = g[sel] / e[sel]
    c = ratio.median().item()
    if math.isfinite(c) and abs(c - 1) > 1e-3 and abs(c) > 1e-6 and bool(((ratio - c).abs() <= 1e-3 * abs(c)).all()):
        if abs(c + 1) <= 1e-3:
            return (" (every value is the expected one with its sign flipped: look for a difference taken in the "
                    "other order (a - b for b - a) or a minus sign lost or added)")
        if c < 0:
            return (f" (every value is {_fmt(c)} times the expected one: the sign is flipped (a difference taken in "
                    "the other order, or a minus sign lost or added) and the size is off by a factor too)")
        hint = f" (every value is {_fmt(c)} times the expected one: a missing or extra scale factor?"
        size = c if c > 1 else 1 / c  # the factor as a number above 1
        root = round(size * size)
        if c < 1 and abs(size - round(size)) < 1e-3 * size:  # 1/n first: a count (rows, heads, ranks) or a root
            hint += f" {_fmt(c)} is 1/{round(size)}, or 1/sqrt({round(size) ** 2})"
        elif root > 1 and abs(size - math.sqrt(root)) < 1e-3:
            hint += f" {_fmt(c)} is {'' if c > 1 else '1/'}sqrt({root})"
        return hint + ")"
    return ""


def difference(got: Any, expected: Any, what: str = "output", rtol: float | None = None,
               atol: float | None = None, locate: bool = True) -> str | None:
    """None if `got` matches `expected` (recursively, tensors to dtype tolerance), else why not; `locate=False` leaves
    out the guess where a tensor's wrong entries lie (for a caller that knows)."""
    if isinstance(expected, torch.Tensor):
        return form_difference(got, expected, what) or _tensor_difference(got, expected, what, rtol, atol, locate)
    if isinstance(expected, np.ndarray) and expected.dtype.kind in "biufc":
        if not isinstance(got, np.ndarray) or got.dtype.kind not in "biufc":
            return f"{what} should be a numpy array, got {type(got).__name__}"
        return _tensor_difference(torch.from_numpy(np.array(got)), torch.from_numpy(np.array(expected)), what,
                                  rtol, atol)
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)):
            return f"{what} should be a {type(expected).__name__} of {len(expected)} values, got {type(got).__name__}"
        if len(got) != len(expected):
            return f"{what} should have {len(expected)} values, got {len(got)}"
        for j, (g, e) in enumerate(zip(got, expected)):
            m = difference(g, e, f"{what}[{j}]", rtol, atol)
            if m:
                return m
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"{what} should be a dict, got {type(got).__name__}"
        missing, extra = expected.keys() - got.keys(), got.keys() - expected.keys()
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing keys {sorted(map(repr, missing))[:5]}")
            if extra:
                parts.append(f"unexpected keys {sorted(map(repr, extra))[:5]}")
            return f"{what}: " + "; ".join(parts)
        for key in expected:
            m = difference(got[key], expected[key], f"{what}[{key!r}]", rtol, atol)
            if m:
                return m
        return None
    if isinstance(expected, bool) or expected is None:
        return None if got is expected or got == expected else f"{what} should be {expected!r}, got {describe(got)}"
    if isinstance(expected, float):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if not isinstance(got, (int, float)):
            return f"{what} should be a number, got {type(got).__name__}"
        r, a = (1e-6 if rtol is None else rtol), (1e-8 if atol is None else atol)
        if math.isnan(expected) and math.isnan(got):
            return None
        if math.isclose(got, expected, rel_tol=r, abs_tol=a):
            return None
        return f"{what} should be {_fmt(expected)}, got {_fmt(got)} (tolerance rtol={r:g}, atol={a:g})"
    if isinstance(expected, int):
        if isinstance(got, torch.Tensor) and got.numel() == 1 and not got.dtype.is_floating_point:
            got = got.item()
        if isinstance(got, int) and got == expected:
            return None
        return f"{what} should be {expected}, got {describe(got)}"
    if isinstance(expected, (str, bytes)):
        if type(got) is not type(expected):
            return f"{what} should be {type(expected).__name__}, got {type(got).__name__}"
        if got == expected:
            return None
        i = next((j for j, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
        return (f"{what} differs from position {i}: got {got[max(0, i - 10):i + 20]!r}, "
                f"expected {expected[max(0, i - 10):i + 20]!r} (lengths {len(got)} and {len(expected)})")
    return None if got == expected else f"{what} should be {describe(expected)}, got {describe(got)}"


def assert_close(got: Any, expected: Any, what: str = "output", rtol: float | None = None,
                 atol: float | None = None) -> None:
    """Raise AssertionError with a readable reason unless `got` matches `expected`."""
    m = difference(got, expected, what, rtol, atol)
    if m:
        raise AssertionError(m)


def policy(got: Any, expected: Any, case: dict | None = None) -> str | None:
    """The default `Exercise.compare`: `difference` at the dtype's tolerance (hidden tests and verdict alike)."""
    return difference(got, expected)


def tolerance(rtol: float | None = None, atol: float | None = None):
    """An `Exercise.compare` that uses other tolerances: compare=tolerance(rtol=1e-4, atol=1e-5)."""

    def compare(got, expected, case):
        return difference(got, expected, rtol=rtol, atol=atol)

    return compare
