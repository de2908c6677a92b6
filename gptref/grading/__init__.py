"""Grading support shared by the notebooks' hidden tests and the instructors' autograder.

- `check(day, name, fn)`: run a student's function on seeded cases inside the guard and compare
  it with the gptref reference (AssertionError with a readable reason otherwise).
- `assert_close`, `difference` (gptref.grading.compare): comparisons that explain themselves.
- `forbid(*callables)` (gptref.grading.guard): fail code that calls what it should write.
- `exercises.load(day)`: the registry of `Exercise` specs (gptref.grading.spec).
"""

from gptref.grading import exercises
from gptref.grading.check import check
from gptref.grading.compare import assert_close, difference
from gptref.grading.guard import ForbiddenCallError, forbid
from gptref.grading.spec import Exercise

__all__ = ["check", "assert_close", "difference", "forbid", "ForbiddenCallError", "Exercise", "exercises"]
