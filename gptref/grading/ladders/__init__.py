"""Each exercise's ladder: the properties every correct answer has, checked in order before values.

One module per notebook (d<day>.py with LADDERS = {function name: (property, ...)}), each property a
function (got, case) -> None or a message in the notebook's words. The exercise's spec uses the same
tuple as `Exercise.properties` (so the hidden test and the verdict check at least what the visible
test checks), and a notebook's visible test runs it through `climb`. Like gptref.grading.mistakes,
these modules hold no cases and no references, so a visible test may import them.
"""

from __future__ import annotations

from typing import Any, Callable

from gptref.grading.explain import which_mistake
from gptref.grading.compare import difference


def climb(got: Any, case: dict, properties, expected: Any = None, mistakes=(), what: str = "output",
          compare: Callable[[Any, Any], str | None] | None = None) -> None:
    """Raise an AssertionError at the first broken property, else at a wrong value (compared with
    `expected` when given); either way add which known mistake the answer equals, if any."""
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


__all__ = ["climb"]
