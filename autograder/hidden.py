"""Which files the trusted-verdict sandbox hides: the exercises' references, by any route.

The exercise modules (they hold references and cases) are hidden outright. The gptref modules
a reference or a forbidden callable lives in are hidden on disk too (source and .pyc: no file
loader, runpy or open() can read them), but a notebook may import them for what it is allowed
to use (day 2's later exercises call `gptref.attention.scaled_dot_product_attention`), so
their source travels in the job and the runner imports it from memory before any student code
runs; its forbidden functions are then caught by the guard like any other call.
"""

from __future__ import annotations

import glob
import inspect
import os
import sys
import types

import gptref

GPTREF = os.path.dirname(os.path.realpath(gptref.__file__))


def _functions(obj) -> list:
    """The Python functions behind a callable (a class: its methods; a decorated one: every layer)."""
    if isinstance(obj, type):
        out = []
        for attr in vars(obj).values():
            attr = attr.__func__ if isinstance(attr, (staticmethod, classmethod)) else attr
            out += _functions(attr) if isinstance(attr, types.FunctionType) else []
        return out
    if isinstance(obj, types.MethodType):
        obj = obj.__func__
    out, seen = [], set()
    while isinstance(obj, types.FunctionType) and id(obj) not in seen:
        seen.add(id(obj))
        out.append(obj)
        obj = getattr(obj, "__wrapped__", None)
    return out


_INSTALLED = tuple(os.path.realpath(p) + os.sep for p in {sys.prefix, sys.base_prefix, sys.exec_prefix})


def _ours(path: str | None) -> bool:
    """A course file (gptref, or a registry's folder), not torch's or the standard library's."""
    if not path or not path.endswith(".py"):
        return False
    real = os.path.realpath(path)
    return real.startswith(GPTREF + os.sep) or not real.startswith(_INSTALLED)


def _pycs(path: str) -> list[str]:
    stem = os.path.splitext(os.path.basename(path))[0]
    return sorted(glob.glob(os.path.join(os.path.dirname(path), "__pycache__", f"{stem}.*.pyc")))


def hidden_sources(exercises: list) -> tuple[list[dict], list[str]]:
    """([{"name", "path", "source"}] to import from memory, [files to mask]) for these exercises."""
    exercise_files, reference_files = set(), {}
    for ex in exercises:
        module = sys.modules.get(getattr(ex.make_cases, "__module__", ""))
        if module is not None and _ours(getattr(module, "__file__", None)):
            exercise_files.add(os.path.realpath(module.__file__))
        for obj in (ex.reference, *ex.forbidden):
            for fn in _functions(obj):
                module = sys.modules.get(getattr(fn, "__module__", None) or "")
                path = getattr(module, "__file__", None)
                if _ours(path) and os.path.realpath(path) == os.path.realpath(inspect.getsourcefile(fn) or ""):
                    reference_files[os.path.realpath(path)] = module.__name__
    for path in exercise_files:
        reference_files.pop(path, None)
    modules = []
    for path, name in sorted(reference_files.items()):
        with open(path, encoding="utf-8") as f:
            modules.append({"name": name, "path": path, "source": f.read()})
    masked = sorted(exercise_files | set(reference_files))
    masked += [p for f in masked for p in _pycs(f)]
    return modules, masked
