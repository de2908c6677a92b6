"""Planted student mistakes, one module per notebook: tests/mutants/d<day>.py defines MUTANTS.

tests/test_notebooks.py executes each solution notebook once in a live kernel, then for every
mutant swaps `old` for `new` in the solution cell `cell`, re-runs that cell and every test cell,
and checks that exactly the test cells in `fails` fail, each with a message that contains
`hint` (the words that name the mistake for the student), then restores the cell.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    cell: str  # grade_id of the solution cell to change
    old: str  # text that occurs exactly once in that cell's source
    new: str  # what a plausible student writes instead
    fails: frozenset[str] | set[str]  # grade_ids of the test cells that must fail (all others must pass)
    why: str  # the mistake, in words ("forgot the 1/sqrt(d) scale")
    hint: str  # text the failing test cells' messages must contain: the visible test names the mistake
    # False: only the visible test can see this mistake (it is about how the notebook's own code works, such as the
    # order buckets are sent in, which the trusted verdict, judging returned values, does not ask about)
    verdict: bool = True

    def __post_init__(self):
        object.__setattr__(self, "fails", frozenset(self.fails))
        if not self.fails:
            raise ValueError(f"mutant {self.why!r} must name the test cells it fails")
        if self.old == self.new:
            raise ValueError(f"mutant {self.why!r} changes nothing")
        if len(self.hint.strip()) < 8:
            raise ValueError(f"mutant {self.why!r}: give the words of the message that names the mistake as `hint`")
