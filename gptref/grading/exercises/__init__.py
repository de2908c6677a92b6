"""The registry of graded exercises: one module d<day>.py per notebook, each with EXERCISES.

`load("02_attention")` imports gptref/grading/exercises/d02_attention.py and returns its
exercises by function name; `days()` lists the notebooks that have a module.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re

from gptref.grading.spec import Exercise

_MODULE_RE = re.compile(r"^d(\d\d_[a-z0-9_]+)$")


def days() -> list[str]:
    """Every day with an exercise module, e.g. ['01_bpe', '02_attention']."""
    return sorted(m.group(1) for info in pkgutil.iter_modules(__path__) if (m := _MODULE_RE.match(info.name)))


@functools.lru_cache(maxsize=None)
def load(day: str) -> dict[str, Exercise]:
    """{function name: Exercise} for one day; ValueError for an unknown day."""
    if day not in days():
        raise ValueError(f"no exercises for day {day!r}; known days: {', '.join(days()) or 'none'}")
    module = importlib.import_module(f"{__name__}.d{day}")
    found: dict[str, Exercise] = {}
    for ex in module.EXERCISES:
        if not isinstance(ex, Exercise):
            raise TypeError(f"{module.__name__}.EXERCISES holds {ex!r}, not an Exercise")
        if ex.day != day:
            raise ValueError(f"exercise {ex.name!r} in {module.__name__} says day={ex.day!r}, expected {day!r}")
        if ex.name in found:
            raise ValueError(f"exercise {ex.name!r} appears twice in {module.__name__}")
        found[ex.name] = ex
    return found


def get(day: str, name: str) -> Exercise:
    exs = load(day)
    if name not in exs:
        raise ValueError(f"day {day!r} has no exercise {name!r}; it has {', '.join(exs)}")
    return exs[name]


def all_exercises() -> list[Exercise]:
    return [ex for day in days() for ex in load(day).values()]
