"""What a graded exercise is: one student function, the seeded cases it is tried on, and the
gptref reference it must agree with.

The same `Exercise` drives the notebook's hidden tests (`gptref.grading.check`) and the
autograder's trusted verdict, which makes the arguments here, sends them as plain data to the
student's function in a separate sandboxed process (where this registry and the references are
hidden) and compares outside it with the same `check_answer`. So cases are plain data (torch
tensors, numbers, strings, bytes, and lists/tuples/dicts of those), and `wrap` may add only
objects the sandbox can rebuild from plain data: a torch.Generator or a class of
gptref.grading.models (see autograder/inside/plaindata.REBUILDABLE). `compare` defaults to
`gptref.grading.compare.policy`, the one comparison policy.

A wrong answer is judged in two steps, the same everywhere: `properties` first, in order (the
ladder: what every correct answer has, such as "each row sums to 1" or "masked keys get exactly 0"),
each a function (got, case) -> None or a message in the notebook's words; then `compare` against the
reference. `explain` adds which of the exercise's known `mistakes` the answer equals, if any.
`edge_cases` names, in words, the edge cases of the concept that `make_cases` constructs on every
seed (tests/test_verdict_seeds.py holds them to it: every planted mistake fails under every seed).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from gptref.grading.compare import policy
from gptref.grading.explain import Mistake, which_mistake
from gptref.grading.mistakes import for_exercise


@dataclass(frozen=True)
class Exercise:
    day: str  # notebook id, e.g. "02_attention"
    name: str  # the function the student writes, as named in the notebook
    grade_ids: tuple[str, ...]  # nbgrader grade_id of the test cell(s) whose points this governs
    make_cases: Callable[[int], list[dict[str, Any]]]  # seed -> keyword-argument dicts (plain data)
    reference: Callable[..., Any]  # the gptref implementation: reference(**wrap(case))
    compare: Callable[[Any, Any, dict], str | None] = policy  # (got, expected, case) -> None or a message
    wrap: Callable[[dict], dict] | None = None  # plain-data case -> the keyword arguments actually passed
    forbidden: tuple[Any, ...] = field(default=())  # callables the student's code may not call
    description: str = ""  # one line for reports
    properties: tuple[Callable[[Any, dict], str | None], ...] = field(default=())  # the ladder, checked in order
    mistakes: tuple[Mistake, ...] = field(default=())  # known wrong answers (default: gptref.grading.mistakes)
    edge_cases: tuple[str, ...] = field(default=())  # the concept's edge cases make_cases builds on every seed

    @property
    def key(self) -> str:
        return f"{self.day}.{self.name}"

    def arguments(self, case: dict) -> dict:
        """The keyword arguments for one call (cases are plain data; `wrap` adds objects)."""
        return dict(self.wrap(case) if self.wrap else case)

    def check_answer(self, got: Any, expected: Any, case: dict) -> str | None:
        """The ladder of properties, then the one comparison policy (hidden tests and trusted verdict alike)."""
        for prop in self.properties:
            message = prop(got, case)
            if message:
                return message
        return (self.compare or policy)(got, expected, case)

    def explain(self, got: Any, expected: Any, case: dict, others: Iterable[tuple[Any, dict]] = ()) -> str | None:
        """check_answer, plus which known mistake the answer equals (None when the answer is right).

        `others` holds the same function's (answer, case) on the exercise's other cases: a mistake is named only
        when its answers equal those too, since on one input two different slips can give the same answer."""
        message = self.check_answer(got, expected, case)
        mistakes = self.mistakes or for_exercise(self.day, self.name)
        if message and mistakes:
            others = list(others)
            mistakes = tuple(mistake for mistake in mistakes
                             if all(self.gives(mistake, answer, other) for answer, other in others))
            compare = self.compare or policy
            message += which_mistake(got, mistakes, self.arguments(case), expected, lambda a, b: compare(a, b, case))
        return message

    def gives(self, mistake: Mistake, answer: Any, case: dict) -> bool:
        """Whether `mistake` answers `case` with `answer` (a mistake that cannot run on the case: no)."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs = mistake.answer(**self.arguments(copy.deepcopy(case)))
            return (self.compare or policy)(answer, theirs, case) is None
        except Exception:  # noqa: BLE001 (a mistake that cannot run here explains nothing)
            return False
