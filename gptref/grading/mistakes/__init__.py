"""Common wrong answers, one module per notebook (d<day>.py with MISTAKES = {function name: (Mistake, ...)}).

Only wrong answers live here (no cases, no references), so a notebook's visible tests may import
them; gptref.grading.exercises attaches the same mistakes to each Exercise for the hidden test and
the autograder's verdict. `for_exercise(day, name)` returns a function's mistakes, () when none.
"""

from __future__ import annotations

import importlib

from gptref.grading.explain import Mistake


def for_exercise(day: str, name: str) -> tuple[Mistake, ...]:
    try:
        module = importlib.import_module(f"{__name__}.d{day}")
    except ModuleNotFoundError as e:
        if e.name == f"{__name__}.d{day}":
            return ()
        raise
    return tuple(getattr(module, "MISTAKES", {}).get(name, ()))
