"""The guard: fail an exercise whose code calls what the exercise asks the student to write.

`forbid(*callables)` watches two kinds of calls while the student's function runs:
torch functions and Tensor methods (through a `torch.overrides.TorchFunctionMode`, which sees
every torch call whatever name it was reached by) and Python functions such as the gptref
references (their code is swapped for a stand-in that fails, only while the block runs, so an
alias made before the guard was entered, `sm = torch.softmax` or `from gptref.attention import
... as f`, is caught too). Everything is restored on exit: the reference stays usable outside.
"""

from __future__ import annotations

import types
from contextlib import contextmanager
from typing import Any, Iterator

from torch.overrides import TorchFunctionMode, resolve_name


class ForbiddenCallError(AssertionError):
    """The student's code called a function the exercise forbids (an AssertionError: the test fails)."""


def callable_name(fn: Any) -> str:
    """A readable dotted name: torch.softmax, torch.Tensor.softmax, gptref.attention.causal_mask."""
    try:
        name = resolve_name(fn)
        if name:
            return name
    except Exception:
        pass
    module = getattr(fn, "__module__", None) or ""
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    if module.startswith("torch._C"):
        module = "torch"
    return f"{module}.{qualname}" if module else qualname


def message(name: str) -> str:
    return f"your code calls {name}, which this exercise asks you to write yourself"


def _targets(callables) -> tuple[dict, dict]:
    """Split the forbidden callables into torch-dispatched objects and Python function objects."""
    torch_fns: dict[Any, str] = {}
    functions: dict[types.FunctionType, str] = {}

    def add_function(fn, name):
        seen = set()
        while fn is not None and id(fn) not in seen:  # a decorated function: forbid every layer
            seen.add(id(fn))
            if isinstance(fn, types.FunctionType):
                functions[fn] = name
            fn = getattr(fn, "__wrapped__", None)

    for fn in callables:
        if not callable(fn):
            raise TypeError(f"forbid() takes callables, got {fn!r}")
        name = callable_name(fn)
        if isinstance(fn, type):  # a class (e.g. an nn.Module): every method it defines
            for attr in vars(fn).values():
                attr = attr.__func__ if isinstance(attr, (staticmethod, classmethod)) else attr
                if isinstance(attr, types.FunctionType):
                    add_function(attr, name)
            continue
        if isinstance(fn, types.MethodType):
            fn = fn.__func__
        if isinstance(fn, types.FunctionType):
            add_function(fn, name)
        try:
            torch_fns[fn] = name  # builtins, Tensor methods, and Python torch functions that dispatch
        except TypeError:  # unhashable: cannot be a torch function anyway
            pass
    return torch_fns, functions


_active: list[list[str]] = []  # the violation lists of the guards now entered (innermost last)


def _violation(name: str) -> None:
    """Called by a forbidden function's stand-in code: record, then fail the call."""
    if _active:
        _active[-1].append(name)
    raise ForbiddenCallError(message(name))


def _stub_code(name: str, n_free: int) -> types.CodeType:
    """Code that calls _violation(name), with as many free variables as the code it stands in for."""
    free = [f"_free{i}" for i in range(n_free)]
    lines = ["def _outer():"] + [f"    {f} = None" for f in free] + [
        "    def _forbidden(*args, **kwargs):",
        *([f"        {', '.join(free)}"] if free else []),
        "        import gptref.grading.guard as _guard",
        f"        _guard._violation({name!r})",
        "    return _forbidden",
    ]
    namespace: dict = {}
    exec("\n".join(lines), namespace)
    return namespace["_outer"]().__code__


class _TorchGuard(TorchFunctionMode):
    def __init__(self, targets: dict, violations: list):
        super().__init__()
        self.targets, self.violations = targets, violations

    def __torch_function__(self, func, types, args=(), kwargs=None):
        try:
            name = self.targets.get(func)
        except TypeError:
            name = None
        if name is not None:
            self.violations.append(name)
            raise ForbiddenCallError(message(name))
        return func(*args, **(kwargs or {}))


@contextmanager
def forbid(*callables: Any) -> Iterator[None]:
    """Inside the block, calling any of `callables` raises ForbiddenCallError.

    Also raised on leaving the block if the student's code caught the first error and went on.
    Accepts Python functions, classes (all their methods), torch functions and Tensor methods.
    Python functions are caught by swapping in stand-in code for the duration of the block
    (so every alias of the function object is caught, at no cost to other calls); torch
    functions by a TorchFunctionMode.
    """
    torch_fns, functions = _targets(callables)
    violations: list[str] = []
    mode = _TorchGuard(torch_fns, violations) if torch_fns else None
    error: BaseException | None = None
    saved: list[tuple[types.FunctionType, types.CodeType]] = []
    _active.append(violations)
    try:
        for fn, name in functions.items():
            stub = _stub_code(name, len(fn.__code__.co_freevars))
            saved.append((fn, fn.__code__))
            fn.__code__ = stub
        if mode is not None:
            mode.__enter__()
        try:
            yield
        finally:
            if mode is not None:
                mode.__exit__(None, None, None)
    except ForbiddenCallError:
        raise
    except BaseException as e:  # the student's code failed some other way: the forbidden call comes first
        error = e
        if not violations:
            raise
    finally:
        for fn, code in reversed(saved):
            fn.__code__ = code
        _active.remove(violations)
    if violations:
        raise ForbiddenCallError(message(violations[0])) from error


_SEARCH = ("torch", "torch.nn.functional", "torch.nn", "torch.autograd", "torch.linalg", "torch.special", "torch.fft")


def resolve(path: str) -> Any:
    """The object at "module:qualname" (None if it does not exist), e.g. "torch:Tensor.softmax"."""
    import importlib

    module, _, qualname = path.partition(":")
    try:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except Exception:  # noqa: BLE001 (a module that cannot be imported here holds nothing to call)
        return None
    return obj


def locate(fn: Any) -> str | None:
    """A "module:qualname" that `resolve` turns back into this very object, or None.

    Forbidden callables travel by this name into the trusted-verdict sandbox, which rebuilds
    the guard there without the registry (and without the exercise modules).
    """
    names = []
    for n in (getattr(fn, "__qualname__", None), getattr(fn, "__name__", None)):
        if isinstance(n, str) and n:
            names.append(n)
            if "." in n:
                names.append("Tensor." + n.rsplit(".", 1)[1])  # TensorBase.softmax is torch.Tensor.softmax
            else:
                names.append("Tensor." + n)
    owner_module = getattr(getattr(fn, "__objclass__", None), "__module__", None)
    modules = [getattr(fn, "__module__", None), owner_module, *_SEARCH]
    for module in dict.fromkeys(m for m in modules if isinstance(m, str) and m):
        for name in dict.fromkeys(names):
            path = f"{module}:{name}"
            got = resolve(path)
            # a classmethod gives a new bound method each time, so compare those by equality
            if got is fn or (isinstance(fn, types.MethodType) and got == fn):
                return path
    return None


__all__ = ["ForbiddenCallError", "forbid", "callable_name", "message", "locate", "resolve"]
