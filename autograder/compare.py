"""Default comparison of a student's answer with the reference (used when Exercise.compare is None)."""

from __future__ import annotations

import math

import sys

import numpy as np


def _tensor(x):
    """A numpy array for tensors and arrays (torch is only touched when a tensor is present)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        if t.dtype in (torch.bfloat16, torch.float16):
            return t.float().numpy(), "half"
        return t.numpy(), None
    if isinstance(x, np.ndarray):
        return x, ("half" if x.dtype == np.float16 else None)
    return None


def default_compare(got, expected, case=None, path: str = "result") -> str | None:
    """None when `got` matches `expected` (close for floats), else a one-line reason."""
    pe, pg = _tensor(expected), _tensor(got)
    if pe is not None:
        (te, half) = pe
        if pg is None:
            return f"{path}: expected an array of shape {tuple(te.shape)}, got {type(got).__name__}"
        tg = pg[0]
        if tuple(tg.shape) != tuple(te.shape):
            return f"{path}: shape {tuple(tg.shape)} differs from the expected {tuple(te.shape)}"
        if te.dtype.kind in "biu":
            if tg.dtype.kind not in "biu":
                return f"{path}: expected integer/bool values, got dtype {tg.dtype}"
            return None if np.array_equal(tg.astype(np.int64), te.astype(np.int64)) else f"{path}: values differ"
        if tg.dtype.kind not in "biufc":
            return f"{path}: expected numbers, got dtype {tg.dtype}"
        rtol, atol = (1e-2, 1e-2) if half or pg[1] else (1e-4, 1e-5)
        g, e = tg.astype(np.complex128 if te.dtype.kind == "c" else np.float64), te.astype(np.complex128 if te.dtype.kind == "c" else np.float64)
        if not np.allclose(g, e, rtol=rtol, atol=atol, equal_nan=True):
            d = np.abs(g - e)
            diff = float(np.nanmax(np.where(np.isnan(d), np.inf, d))) if d.size else 0.0
            return f"{path}: values differ (max abs difference {diff:.3g})"
        return None
    if isinstance(expected, (bool, np.bool_)):
        return None if type(got) in (bool, np.bool_) and bool(got) == bool(expected) else f"{path}: expected {expected!r}, got {got!r}"
    if isinstance(expected, (int, float, np.integer, np.floating)):
        if isinstance(got, bool) or not isinstance(got, (int, float, np.integer, np.floating)):
            return f"{path}: expected a number, got {type(got).__name__}"
        if isinstance(expected, (int, np.integer)) and isinstance(got, (int, np.integer)):
            return None if int(got) == int(expected) else f"{path}: expected {expected}, got {got}"
        if math.isnan(float(expected)) and math.isnan(float(got)):
            return None
        return None if math.isclose(float(got), float(expected), rel_tol=1e-5, abs_tol=1e-6) else f"{path}: expected {expected!r}, got {got!r}"
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return f"{path}: expected a sequence, got {type(got).__name__}"
        if len(got) != len(expected):
            return f"{path}: length {len(got)} differs from the expected {len(expected)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            msg = default_compare(g, e, case, f"{path}[{i}]")
            if msg:
                return msg
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            return f"{path}: expected a dict with keys {sorted(map(str, expected))}"
        for k in expected:
            msg = default_compare(got[k], expected[k], case, f"{path}[{k!r}]")
            if msg:
                return msg
        return None
    return None if type(got) is type(expected) and got == expected else f"{path}: expected {expected!r}, got {got!r}"
