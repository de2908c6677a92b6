"""`python -m autograder COMMAND`: release, collect, grade, report, similarity (instructor) and check (student)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder", description="The course's sandboxed nbgrader autograder.")
    p.add_argument("--config", help="nbgrader config file (default: autograder/nbgrader_config.py)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    r = sub.add_parser("release", help="generate course/ from solutions/ (nbgrader generate_assignment --force)")
    r.add_argument("assignments", nargs="*")
    c = sub.add_parser("collect", help="take the expected notebooks from a folder of submissions")
    c.add_argument("src")
    g = sub.add_parser("grade", help="autograde in the sandbox, trusted verdicts, feedback, grades.csv")
    g.add_argument("--assignment")
    g.add_argument("--workers", type=int, default=1)
    g.add_argument("--student", action="append", dest="students", help="only this student (repeatable)")
    g.add_argument("--regrade", action="store_true", help="grade again even unchanged, already graded submissions")
    g.add_argument("--unsafe-no-sandbox", action="store_true", help="run student code WITHOUT bubblewrap (flagged)")
    sub.add_parser("report", help="what needs manual grading or review, and why")
    # -- similarity (cross-student report; autograder/similarity_report.py) --
    m = sub.add_parser("similarity", help="pairs of students whose solution functions are near-identical (MOSS-like)")
    m.add_argument("--assignment", help="one assignment (default: all)")
    m.add_argument("--threshold", type=float, default=None, help="similarity from which a pair is listed (default 0.6)")
    m.add_argument("--out", help="CSV file (default: the work folder's similarity.csv)")
    # -- end similarity --
    k = sub.add_parser("check", help="student side: run a notebook and its visible tests")
    k.add_argument("notebook")
    k.add_argument("--cell-timeout", type=int, default=300)
    a = p.parse_args(argv)
    if a.command == "check":
        from .check import check

        return check(a.notebook, a.cell_timeout)
    from .course import Course

    course = Course(a.config)
    if a.command == "release":
        from .release import release

        return release(course, a.assignments or None)
    if a.command == "collect":
        from .collect import collect

        return collect(course, a.src)
    if a.command == "grade":
        from .grade import grade

        return grade(course, a.assignment, a.workers, a.unsafe_no_sandbox, a.regrade, students=a.students)
    if a.command == "similarity":
        from .similarity import MATCH_STUDENT
        from .similarity_report import similarity_report

        return similarity_report(course, a.assignment, MATCH_STUDENT if a.threshold is None else a.threshold, a.out)
    from .report import report

    return report(course)


if __name__ == "__main__":
    sys.exit(main())
