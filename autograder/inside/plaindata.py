"""Plain data across the sandbox boundary: JSON with arrays as base64 .npy (never pickle).

`encode` accepts None, bool, int, float, str, bytes, numpy arrays, torch tensors and
lists/tuples/dicts (string keys) of those; anything else raises TypeError, so an object that
pretends to equal everything cannot cross. `decode` rebuilds arrays with allow_pickle=False.
"""

from __future__ import annotations

import base64
import io
import json
import math
import sys

import numpy as np

MAX_DEPTH = 32


def _tensor_to_numpy(x):
    import torch

    t = torch.Tensor.detach(x)  # unbound calls: a subclass cannot reroute them
    t = torch.Tensor.cpu(t)
    if t.dtype in (torch.bfloat16, torch.float16):
        t = torch.Tensor.float(t)
    return np.array(torch.Tensor.numpy(t), copy=True), str(x.dtype).replace("torch.", "")


def _float(x: float):
    if math.isfinite(x):
        return x
    return {"__float__": repr(x)}  # nan, inf, -inf


def encode(obj, _depth: int = 0):
    """Plain data -> JSON-able structure."""
    if _depth > MAX_DEPTH:
        raise TypeError("nesting too deep")
    if obj is None or type(obj) is bool or type(obj) is str:
        return obj
    if type(obj) is int:
        return obj
    if type(obj) is float:
        return _float(obj)
    if isinstance(obj, (np.integer, np.bool_)):
        return {"__np__": _npy(np.asarray(obj)), "scalar": True}
    if isinstance(obj, np.floating):
        return {"__np__": _npy(np.asarray(obj)), "scalar": True}
    if type(obj) is bytes:
        return {"__bytes__": base64.b64encode(obj).decode("ascii")}
    if type(obj) in (list, tuple):
        items = [encode(v, _depth + 1) for v in obj]
        return items if type(obj) is list else {"__tuple__": items}
    if type(obj) is dict:
        out = {}
        for k, v in obj.items():
            if type(k) is not str:
                raise TypeError(f"dict keys must be str, got {type(k).__name__}")
            out[k] = encode(v, _depth + 1)
        return {"__dict__": out}
    if type(obj) is np.ndarray:
        if obj.dtype.hasobject:
            raise TypeError("object arrays cannot cross the sandbox boundary")
        return {"__np__": _npy(obj)}
    torch = sys.modules.get("torch")  # a tensor can only exist if torch is loaded
    if torch is not None and isinstance(obj, torch.Tensor):
        arr, dtype = _tensor_to_numpy(obj)
        return {"__torch__": _npy(arr), "dtype": dtype}
    raise TypeError(f"cannot send a {type(obj).__module__}.{type(obj).__qualname__} (plain data only)")


def _npy(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _load(b64: str) -> np.ndarray:
    return np.load(io.BytesIO(base64.b64decode(b64, validate=True)), allow_pickle=False)


def decode(obj, _depth: int = 0):
    """The inverse of `encode` (torch tensors come back as torch tensors)."""
    if _depth > MAX_DEPTH:
        raise ValueError("nesting too deep")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list):
        return [decode(v, _depth + 1) for v in obj]
    if isinstance(obj, dict):
        if "__float__" in obj:
            return float(obj["__float__"])
        if "__bytes__" in obj:
            return base64.b64decode(obj["__bytes__"], validate=True)
        if "__tuple__" in obj:
            return tuple(decode(v, _depth + 1) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {str(k): decode(v, _depth + 1) for k, v in obj["__dict__"].items()}
        if "__np__" in obj:
            arr = _load(obj["__np__"])
            return arr[()] if obj.get("scalar") else arr
        if "__torch__" in obj:
            import torch

            arr = _load(obj["__torch__"])
            t = torch.from_numpy(arr.copy())
            want = getattr(torch, str(obj.get("dtype", "")), None)
            if isinstance(want, torch.dtype) and want != t.dtype:
                t = t.to(want)
            return t
    raise ValueError(f"not plain data: {str(obj)[:80]}")


def dumps(obj) -> str:
    return json.dumps(encode(obj))


def loads(text: str):
    return decode(json.loads(text))
