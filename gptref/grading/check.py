"""`check(day, name, fn)`: the hidden test of one exercise.

Runs the student's `fn` on every seeded case of the exercise, inside the guard, and compares
with the gptref reference; the first disagreement raises an AssertionError that names the case
and says what is wrong. Nothing goes to stderr (a notebook test cell that writes to stderr
scores zero in nbgrader), and nothing is returned for the notebook to display.
"""

from __future__ import annotations

import contextlib
import copy
import sys
import warnings
from typing import Any, Callable

import torch

from gptref.grading import exercises
from gptref.grading.compare import describe
from gptref.grading.explain import explain_error
from gptref.grading.guard import ForbiddenCallError, forbid


def _fresh(case: dict) -> dict:
    """A deep copy, so neither the reference nor the student can change another call's inputs."""
    return copy.deepcopy(case)


def describe_call(name: str, case: dict) -> str:
    return f"{name}(" + ", ".join(f"{k}={describe(v)}" for k, v in case.items()) + ")"


def _tensors(args: dict) -> dict[str, torch.Tensor]:
    return {k: v for k, v in args.items() if isinstance(v, torch.Tensor)}


def _plain_containers(args: dict) -> dict[str, Any]:
    """The list, dict and bytearray arguments (copied), to tell whether the student's function changed them."""
    return {k: copy.deepcopy(v) for k, v in args.items() if isinstance(v, (list, dict, bytearray))}


def run_case(exercise, fn: Callable, case: dict) -> Any:
    """fn(**arguments) under the guard, with warnings silenced and stderr sent to stdout."""
    args = exercise.arguments(_fresh(case))
    before = {k: v.detach().clone() for k, v in _tensors(args).items()}
    containers = _plain_containers(args)
    with warnings.catch_warnings(), contextlib.redirect_stderr(sys.stdout):
        warnings.simplefilter("ignore")
        with forbid(*exercise.forbidden):
            got = fn(**args)
    changed = [k for k, v in before.items()
               if args[k].shape != v.shape or not torch.equal(args[k].detach(), v)]
    changed += [k for k, v in containers.items() if not _same(args[k], v)]
    if changed:
        raise AssertionError(f"{exercise.name} changed its argument {changed[0]!r} in place; leave the inputs as they "
                             "are (work on a copy: list(ids), dict(counts), x.clone())")
    return got


def _same(now: Any, before: Any) -> bool:
    try:
        return bool(now == before)
    except (RuntimeError, ValueError):  # containers of tensors: compare element by element
        return all(torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b for a, b in zip(now, before))


def check(day: str, name: str, fn: Callable, seed: int = 0) -> None:
    """Assert that `fn` agrees with the reference of exercise `name` of `day` on all its cases."""
    exercise = exercises.get(day, name)
    if not callable(fn):
        raise AssertionError(f"{name} should be a function, got {type(fn).__name__}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = exercise.make_cases(seed)
    for i, case in enumerate(cases):
        call = describe_call(name, case)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = exercise.reference(**exercise.arguments(_fresh(case)))
        try:
            got = run_case(exercise, fn, case)
        except NotImplementedError:
            raise
        except ForbiddenCallError as e:
            raise ForbiddenCallError(f"{e} (in {call})") from None
        except AssertionError as e:
            raise AssertionError(f"{e}\n  in {call}") from None
        except Exception as e:  # noqa: BLE001 (explained: where in the student's code, and why where known)
            raise AssertionError(f"{explain_error(e, name)}\n  in {call} (case {i + 1} of {len(cases)})") from None
        if exercise.check_answer(got, expected, case):
            message = exercise.explain(got, expected, case, _other_answers(exercise, fn, cases, i))
            raise AssertionError(f"{message}\n  in {call} (case {i + 1} of {len(cases)})")
    return None


def _other_answers(exercise, fn: Callable, cases: list[dict], failed: int) -> list[tuple[Any, dict]]:
    """fn's answers on the cases other than the one that failed (those it answers without raising): a known
    mistake is named only when it gives these answers too."""
    answers = []
    for i, case in enumerate(cases):
        if i == failed:
            continue
        try:
            answers.append((run_case(exercise, fn, case), case))
        except Exception:  # noqa: BLE001 (the failing case is what the student reads about)
            continue
    return answers
