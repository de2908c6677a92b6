"""Plain data across the sandbox boundary: JSON with arrays as base64 .npy (never pickle).

`encode` accepts None, bool, int, float, str, bytes, numpy arrays and scalars, torch tensors
(any dtype, 0-d included: shape () stays ()), torch.Size, and lists/tuples/dicts of those
(dict keys: str, int, bytes, bool, None, float or tuples of them); anything else raises
TypeError, so an object that pretends to equal everything cannot cross. With
`objects=True` (the grader's arguments going in, never answers coming out) a torch.Generator
(its state) and the classes named in REBUILDABLE (their `to_plain()`) cross too.
`decode` rebuilds arrays with allow_pickle=False.
"""

from __future__ import annotations

import base64
import importlib
import io
import json
import math
import sys

import numpy as np

MAX_DEPTH = 32

# argument objects that may be rebuilt inside: tag -> "module:Class" with to_plain()/from_plain()
REBUILDABLE = {"TableModel": "gptref.grading.models:TableModel"}

_KEY_TYPES = (str, int, bytes, bool, float, type(None), tuple)


def _tensor_to_numpy(x):
    import torch

    t = torch.Tensor.detach(x)  # unbound calls: a subclass cannot reroute them
    t = torch.Tensor.cpu(t)
    if t.dtype in (torch.bfloat16, torch.float16):
        t = torch.Tensor.float(t)  # exact: numpy has no bfloat16; the dtype travels by name
    t = torch.Tensor.resolve_conj(torch.Tensor.resolve_neg(t))
    return np.array(torch.Tensor.numpy(t), copy=True), str(x.dtype).replace("torch.", "")


def _float(x: float):
    if math.isfinite(x):
        return x
    return {"__float__": repr(x)}  # nan, inf, -inf


def _rebuildable_tag(obj) -> str | None:
    for tag, where in REBUILDABLE.items():
        mod, _, qual = where.partition(":")
        m = sys.modules.get(mod)
        if m is not None and type(obj) is getattr(m, qual, None):
            return tag
    return None


def encode(obj, _depth: int = 0, objects: bool = False):
    """Plain data -> JSON-able structure (TypeError for anything that is not plain data)."""
    if _depth > MAX_DEPTH:
        raise TypeError("nesting too deep")
    if obj is None or type(obj) is bool or type(obj) is str:
        return obj
    if type(obj) is int:
        return obj
    if type(obj) is float:
        return _float(obj)
    if isinstance(obj, (np.integer, np.bool_, np.floating, np.complexfloating)) and type(obj).__module__ == "numpy":
        return {"__np__": _npy(np.asarray(obj)), "scalar": True}
    if type(obj) is bytes:
        return {"__bytes__": base64.b64encode(obj).decode("ascii")}
    if type(obj) in (list, tuple):
        items = [encode(v, _depth + 1, objects) for v in obj]
        return items if type(obj) is list else {"__tuple__": items}
    if type(obj) is dict:
        pairs = []
        for k, v in obj.items():
            if not isinstance(k, _KEY_TYPES) or type(k) not in _KEY_TYPES:
                raise TypeError(f"dict keys must be str, int, bytes or tuples of them, got {type(k).__name__}")
            pairs.append([encode(k, _depth + 1), encode(v, _depth + 1, objects)])
        return {"__dict__": pairs}
    if type(obj) is np.ndarray:
        if obj.dtype.hasobject or obj.dtype.kind not in "biufc":
            raise TypeError(f"arrays of dtype {obj.dtype} cannot cross the sandbox boundary")
        return {"__np__": _npy(obj)}
    torch = sys.modules.get("torch")  # a tensor can only exist if torch is loaded
    if torch is not None:
        if type(obj) is torch.Size:
            return {"__size__": [int(n) for n in obj]}
        if isinstance(obj, torch.Tensor):
            arr, dtype = _tensor_to_numpy(obj)
            return {"__torch__": _npy(arr), "dtype": dtype}
        if objects and type(obj) is torch.Generator:
            return {"__generator__": _npy(torch.Generator.get_state(obj).numpy())}
    if objects:
        tag = _rebuildable_tag(obj)
        if tag is not None:
            return {"__object__": tag, "state": encode(obj.to_plain(), _depth + 1, objects)}
    raise TypeError(f"cannot send a {type(obj).__module__}.{type(obj).__qualname__} (plain data only)")


def _npy(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    # np.ascontiguousarray would turn shape () into (1,): copy in C order instead
    np.save(buf, np.array(arr, order="C", copy=True), allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _load(b64: str) -> np.ndarray:
    return np.load(io.BytesIO(base64.b64decode(b64, validate=True)), allow_pickle=False)


def decode(obj, _depth: int = 0, objects: bool = False):
    """The inverse of `encode` (torch tensors come back as torch tensors)."""
    if _depth > MAX_DEPTH:
        raise ValueError("nesting too deep")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list):
        return [decode(v, _depth + 1, objects) for v in obj]
    if isinstance(obj, dict):
        if "__float__" in obj:
            return float(obj["__float__"])
        if "__bytes__" in obj:
            return base64.b64decode(obj["__bytes__"], validate=True)
        if "__tuple__" in obj:
            return tuple(decode(v, _depth + 1, objects) for v in obj["__tuple__"])
        if "__dict__" in obj:
            out = {}
            for k, v in obj["__dict__"]:
                key = decode(k, _depth + 1)
                if not isinstance(key, _KEY_TYPES) or isinstance(key, list):
                    raise ValueError(f"not a dict key: {str(key)[:80]}")
                out[key] = decode(v, _depth + 1, objects)
            return out
        if "__np__" in obj:
            arr = _load(obj["__np__"])
            return arr[()] if obj.get("scalar") else arr
        if "__size__" in obj:
            import torch

            return torch.Size([int(n) for n in obj["__size__"]])
        if "__torch__" in obj:
            import torch

            arr = _load(obj["__torch__"])
            t = torch.from_numpy(arr.copy())
            want = getattr(torch, str(obj.get("dtype", "")), None)
            if isinstance(want, torch.dtype) and want != t.dtype:
                t = t.to(want)
            return t
        if objects and "__generator__" in obj:
            import torch

            g = torch.Generator()
            g.set_state(torch.from_numpy(_load(obj["__generator__"]).copy()))
            return g
        if objects and obj.get("__object__") in REBUILDABLE:
            mod, _, qual = REBUILDABLE[obj["__object__"]].partition(":")
            cls = getattr(importlib.import_module(mod), qual)
            return cls.from_plain(decode(obj["state"], _depth + 1, objects))
    raise ValueError(f"not plain data: {str(obj)[:80]}")


def dumps(obj, objects: bool = False) -> str:
    return json.dumps(encode(obj, objects=objects))


def loads(text: str, objects: bool = False):
    return decode(json.loads(text), objects=objects)
