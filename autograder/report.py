"""`report`: what needs manual grading or review, with the reason for every flag."""

from __future__ import annotations

from .course import Course
from .grade import all_flags, statuses
from .refused import merge


def report(course: Course, out=print) -> int:
    sts = merge(course, statuses(course))
    if not sts:
        out("nothing graded yet (run `python -m autograder grade`)")
        return 0
    unsandboxed = [s for s in sts if not s.get("sandboxed", True)]
    if unsandboxed:
        out(f"WARNING: {len(unsandboxed)} submissions were graded WITHOUT the sandbox (--unsafe-no-sandbox)")
    n_review = n_manual = 0
    for st in sts:
        flags = all_flags(st)
        manual = [k for k, c in st.get("cells", {}).items() if c.get("needs_manual_grade")]
        if not flags and not manual and st.get("state") == "ok":
            continue
        score = st.get("score")
        out(f"{st['student']} / {st['assignment']}: state {st.get('state')}, score "
            f"{'-' if score is None else f'{score:g}'} of {st.get('max_score', '-')}")
        if manual:
            n_manual += 1
            out(f"  manual grading: {', '.join(manual)}")
        for f in flags:
            out(f"  review: {f}")
        n_review += bool(flags)
    out(f"{len(sts)} graded submissions; {n_manual} need manual grading, {n_review} flagged for review")
    return 0
