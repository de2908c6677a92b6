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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from gptref.grading.compare import policy


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

    @property
    def key(self) -> str:
        return f"{self.day}.{self.name}"

    def arguments(self, case: dict) -> dict:
        """The keyword arguments for one call (cases are plain data; `wrap` adds objects)."""
        return dict(self.wrap(case) if self.wrap else case)

    def check_answer(self, got: Any, expected: Any, case: dict) -> str | None:
        """The one comparison policy (hidden tests and trusted verdict): None or what is wrong."""
        return (self.compare or policy)(got, expected, case)
