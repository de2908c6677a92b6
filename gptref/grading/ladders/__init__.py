"""The ladders: the properties every correct answer has, one module per notebook (d<day>.py).

A property is a function (got, case) -> None or a message in the notebook's words (what the property is,
what the answer did instead, where to look). The same functions are an Exercise's `properties=` (so the
hidden check and the trusted verdict check at least what the visible test checks) and are imported by the
visible tests, which run them through `climb` (calls the student's function on every case) or `climb_answer`
(checks one answer already computed; the mistakes it may name are those `agreeing` keeps, the ones that give every
answer of the cell). Like gptref.grading.mistakes, nothing hidden lives here.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any, Callable

import torch

from gptref.grading.compare import difference, form_difference, policy
from gptref.grading.explain import Mistake, call, which_mistake

Property = Callable[[Any, dict], "str | None"]


def tensor_form(got: Any, shape, dtype: torch.dtype, what: str) -> str | None:
    """The first rung of a ladder: `got` is a finite tensor of this shape and dtype (on its own device), else a
    message saying what it is instead."""
    device = got.device if isinstance(got, torch.Tensor) else "cpu"
    message = form_difference(got, torch.empty(tuple(shape), dtype=dtype, device=device), what)
    if message is None and not torch.isfinite(got).all():
        message = f"{what} has NaN or inf values"
    return message


def first_broken(ladder: tuple[Property, ...] | list[Property], got: Any, case: dict) -> str | None:
    """The message of the first property `got` breaks, None when it has them all."""
    for prop in ladder:
        message = prop(got, case)
        if message:
            return message
    return None


def _changed_in_place(before: dict, after: dict) -> str | None:
    for key, value in before.items():
        if isinstance(value, torch.Tensor) and not torch.equal(value, after[key]):
            return (f"your function changed its argument {key!r} in place; leave the inputs as they are "
                    "(no `/=`, `[...] =`)")
    return None


def call_unchanged(fn: Callable, case: dict) -> Any:
    """fn(**case) with errors explained, on a copy of the case; fails if fn changed one of its tensor arguments
    in place (the test's own inputs stay as they were, so later checks are not misled)."""
    given = copy.deepcopy(case)
    got = call(fn, **given)
    message = _changed_in_place(case, given)
    if message:
        raise AssertionError(message)
    return got


def climb(fn: Callable, cases: list[dict], ladder: tuple[Property, ...], reference: Callable, *,
          mistakes: tuple[Mistake, ...] = (), compare: Callable[[Any, Any, dict], str | None] | None = None,
          labels: list[str] | None = None) -> list:
    """Call fn(**case) for every case (errors explained), check the ladder then the value against reference(**case).

    On the first case that fails, raise its message; a known mistake is named only when the student's answers
    equal that mistake's on every case that ran (one input can make two different slips agree by chance).
    With `labels` (one phrase per case, in the notebook's words) the message also says on which cases the answers
    are right and on which wrong, which tells where to look when no known mistake fits.
    Returns the answers when every case passes.
    """
    compare = compare or policy
    answers, failure = [], None
    for case in cases:
        given = copy.deepcopy(case)
        try:
            got = call(fn, **given)
        except AssertionError:
            if failure is None:
                raise
            break  # a later case raised: name a mistake from the cases that ran
        expected = reference(**copy.deepcopy(case))
        answers.append((case, got, expected))
        if failure is None:
            message = (_changed_in_place(case, given) or first_broken(ladder, got, case)
                       or compare(got, expected, case))
            if message:
                failure = message
    if failure is None:
        return [got for _, got, _ in answers]
    rights = [not (first_broken(ladder, got, case) or compare(got, expected, case)) for case, got, expected in answers]
    if labels:
        failure += _right_and_wrong(rights, labels)
    failure += _right_only_with([case for case, _, _ in answers], rights)
    for mistake in mistakes:
        if not all(_agrees(mistake, case, got, compare) for case, got, _ in answers):
            continue  # checked first: a mistake that differs on some case is not run again for a name
        named = (which_mistake(got, (mistake,), case, expected, lambda a, b, c=case: compare(a, b, c))
                 for case, got, expected in answers)
        name = next((n for n in named if n), "")
        if name:
            raise AssertionError(failure + name)
    raise AssertionError(failure)


def _right_and_wrong(rights: list[bool], labels: list[str]) -> str:
    """'\n  Your answers are right on: ...; wrong on: ...' over the cases that ran (each named by its label)."""
    right = [label for label, is_right in zip(labels, rights) if is_right]
    wrong = [label for label, is_right in zip(labels, rights) if not is_right]
    if not right:
        return f"\n  Your answers are wrong on every case that ran: {'; '.join(wrong)}"
    return f"\n  Your answers are right on: {'; '.join(right)}\n  and wrong on: {'; '.join(wrong)}"


def _right_only_with(cases: list[dict], rights: list[bool]) -> str:
    """'\n  Your answers are right exactly on the cases where <name> = <value> ...' when at least two cases are right,
    all of them share one plain value of an argument and no wrong case has it: an argument ignored or written in.
    Not for 0 or 1 (nor None, True, False): such a value can switch off the very term that is wrong."""
    right = [case for case, is_right in zip(cases, rights) if is_right]
    wrong = [case for case, is_right in zip(cases, rights) if not is_right]
    if len(right) < 2 or not wrong:
        return ""
    for name, value in right[0].items():
        if not isinstance(value, (int, float, str)) or isinstance(value, bool) or value in (0, 1):
            continue  # 0, 1, None, False, True can switch a term off: then the term is the suspect, not the argument
        if all(type(c.get(name)) is type(value) and c.get(name) == value for c in right) and all(
                not (type(c.get(name)) is type(value) and c.get(name) == value) for c in wrong):
            others = sorted({repr(c.get(name)) for c in wrong})
            return (f"\n  Your answers are right exactly on the cases where {name} = {value!r}, and wrong where it is "
                    f"{', '.join(others)}: look at how {name} enters your code (is the argument used, or a fixed value "
                    "written in its place?)")
    return ""


def _agrees(mistake: Mistake, case: dict, got: Any, compare) -> bool:
    """Whether the mistake's answer on this case equals the student's (a mistake that cannot run: no)."""
    try:
        with warnings.catch_warnings():  # a mistake's own warnings are not the student's
            warnings.simplefilter("ignore")
            theirs = mistake.answer(**copy.deepcopy(case))
        return compare(got, theirs, case) is None
    except Exception:  # noqa: BLE001
        return False


def mistakes_agreeing(fn: Callable, mistakes, cases: list[dict], compare: Callable[[Any, Any], Any] | None = None):
    """The known mistakes whose answers equal fn's on every case fn runs on (one input can make two different slips
    agree by chance): for a visible test that checks one input at a time and names a mistake with which_mistake."""
    ran, answers = [], []
    for case in cases:
        try:
            answers.append(fn(**copy.deepcopy(case)))
        except Exception:  # noqa: BLE001 (the test reports the student's error itself)
            continue
        ran.append(case)
    return tuple(agreeing(mistakes, ran, answers, compare))


def agreeing(mistakes, cases: list[dict], answers: list, compare: Callable[[Any, Any], Any] | None = None):
    """The known mistakes whose answer on every case equals the student's answer there (answers already computed,
    one per case): only these may be named, since one input can make two different slips agree by chance. Worked
    out the first time a message asks for them, so a right answer costs nothing."""
    return _Agreeing(tuple(mistakes), list(cases), list(answers), compare or (lambda a, b: difference(a, b)))


class _Agreeing:
    """A sequence of the mistakes that agree with every answer, computed on first use (see agreeing)."""

    def __init__(self, mistakes, cases, answers, same):
        self._mistakes, self._cases, self._answers, self._same = mistakes, cases, answers, same
        self._kept = None

    def _agreeing(self) -> tuple:
        if self._kept is None:
            self._kept = tuple(mistake for mistake in self._mistakes if self._agrees(mistake))
        return self._kept

    def _agrees(self, mistake: Mistake) -> bool:
        return all(_agrees(mistake, case, got, lambda a, b, _case: self._same(a, b))
                   for case, got in zip(self._cases, self._answers))

    def __iter__(self):
        return iter(self._agreeing())

    def __len__(self) -> int:
        return len(self._agreeing())


def climb_answer(got: Any, case: dict, properties, expected: Any = None, mistakes=(), what: str = "output",
          compare: Callable[[Any, Any], str | None] | None = None) -> None:
    """One answer already computed: raise an AssertionError at the first broken property, else at a wrong value
    (compared with `expected` when given); either way add which known mistake the answer equals, if any."""
    message = None
    for prop in properties:
        message = prop(got, case)
        if message:
            break
    if not message and expected is not None:
        message = (compare or (lambda a, b: difference(a, b, what)))(got, expected)
    if message:
        if mistakes:
            message += which_mistake(got, mistakes, case, expected, compare)
        raise AssertionError(message)


__all__ = ["Property", "agreeing", "call_unchanged", "climb", "climb_answer", "first_broken", "mistakes_agreeing",
           "tensor_form"]
