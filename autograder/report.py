"""`report`: what needs manual grading or review, with the reason for every flag.

Scores are read from the gradebook, so manual grades given in formgrader since `grade` ran
count (total = automatic + manual); grades.csv is rewritten with them.
"""

from __future__ import annotations

import os

from . import gradebook
from .course import Course
from .grade import export_csv, statuses
from .refused import merge
from .status import all_flags


def _current(course: Course, sts: list[dict]) -> dict:
    """(assignment, student) -> score, max and manual columns, as the gradebook has them now."""
    from nbgrader.api import Gradebook, MissingEntry

    out = {}
    with Gradebook(course.gradebook_url) as gb:
        for st in sts:
            a, s = st["assignment"], st["student"]
            try:
                sub = gb.find_submission(a, s)
            except MissingEntry:
                continue
            out[a, s] = {"score": sub.score, "max_score": sub.max_score, **gradebook.manual_columns(gb, a, s)}
    return out


def report(course: Course, out=print) -> int:
    sts = merge(course, statuses(course))
    if not sts:
        out("nothing graded yet (run `python -m autograder grade`)")
        return 0
    now = _current(course, sts)
    unsandboxed = [s for s in sts if not s.get("sandboxed", True)]
    if unsandboxed:
        out(f"WARNING: {len(unsandboxed)} submissions were graded WITHOUT the sandbox (--unsafe-no-sandbox)")
    n_review = n_manual = 0
    for st in sts:
        flags = all_flags(st)
        cur = now.get((st["assignment"], st["student"]))
        manual = cur["ungraded"].split() if cur else [k for k, c in st.get("cells", {}).items() if c.get("needs_manual_grade")]
        if not flags and not manual and st.get("state") == "ok":
            continue
        score = cur["score"] if cur else st.get("score")
        mx = cur["max_score"] if cur else st.get("max_score", "-")
        split = f" (automatic {cur['auto_score']:g} + manual {cur['manual_score']:g})" if cur else ""
        out(f"{st['student']} / {st['assignment']}: state {st.get('state')}, score "
            f"{'-' if score is None else f'{score:g}'} of {mx}{split}")
        if manual:
            n_manual += 1
            out(f"  manual grading: {', '.join(manual)}")
        for f in flags:
            out(f"  review: {f}")
        n_review += bool(flags)
    out(f"{len(sts)} graded submissions; {n_manual} need manual grading, {n_review} flagged for review")
    n = export_csv(course)
    out(f"{n} rows in {os.path.join(course.work, 'grades.csv')} (manual grades included)")
    return 0
