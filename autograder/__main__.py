"""`python -m autograder COMMAND`: release, collect, grade, report, similarity, feedback, formgrader, stats, export,
leaderboard (instructor) and check (student)."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder", description="The course's sandboxed nbgrader autograder.")
    p.add_argument("--config", help="nbgrader config file (default: autograder/nbgrader_config.py)")
    p.add_argument("--db", metavar="URL", help="gradebook URL overriding the config's db_url "
                   "(sqlite:///PATH or postgresql://USER@HOST:PORT/DB)")
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
    g.add_argument("--shard", metavar="K/N", help="grade only shard K of N (several machines, one PostgreSQL gradebook)")
    sub.add_parser("report", help="what needs manual grading or review, and why")
    # -- similarity (cross-student report; autograder/similarity_report.py) --
    m = sub.add_parser("similarity", help="pairs of students whose solution functions are near-identical (MOSS-like)")
    m.add_argument("--assignment", help="one assignment (default: all)")
    m.add_argument("--threshold", type=float, default=None, help="similarity from which a pair is listed (default 0.6)")
    m.add_argument("--out", help="CSV file (default: the work folder's similarity.csv)")
    # -- end similarity --
    f = sub.add_parser("feedback", help="regenerate the students' feedback (after manual grading)")
    f.add_argument("--assignment")
    f.add_argument("--student", action="append", dest="students", help="only this student (repeatable)")
    fg = sub.add_parser("formgrader", help="JupyterLab with nbgrader's formgrader on this course (manual grading)")
    fg.add_argument("--port", type=int, default=8888)
    fg.add_argument("--ip", default="127.0.0.1")
    fg.add_argument("--no-browser", action="store_true")
    lb = sub.add_parser("leaderboard", help="re-run every student's homework config in the sandbox on a fixed budget, "
                        "ranked by validation loss")
    lb.add_argument("src", help="a folder of <student>.toml (or .json) homework configs")
    lb.add_argument("--budget", type=float, default=60.0, help="wall-clock seconds of training per student")
    lb.add_argument("--threads", type=int, default=1, help="CPU threads per run (the same for everyone)")
    lb.add_argument("--out", help="folder for leaderboard.csv and reports/ (default: the work folder's leaderboard/)")
    lb.add_argument("--unsafe-no-sandbox", action="store_true", help="train WITHOUT bubblewrap")
    # -- stats and export (autograder/stats.py, autograder/export.py) --
    st = sub.add_parser("stats", help="per day and exercise: scores, difficulty, discrimination, failure messages")
    st.add_argument("--out", help="folder for stats.csv and stats.html (default: the work folder)")
    ex = sub.add_parser("export", help="the gradebook as a Canvas or Moodle grade import CSV, or plain CSV")
    ex.add_argument("--format", choices=["canvas", "moodle", "csv"], required=True)
    ex.add_argument("--mapping", help="CSV mapping our student ids to the LMS's (needed for canvas and moodle)")
    ex.add_argument("--columns", help="CSV mapping our assignments to the LMS's column names (optional)")
    ex.add_argument("--out", help="output file (default: the work folder's export-FORMAT.csv)")
    # -- end stats and export --
    k = sub.add_parser("check", help="student side: run a notebook and its visible tests")
    k.add_argument("notebook")
    k.add_argument("--cell-timeout", type=int, default=300)
    a = p.parse_args(argv)
    if a.command == "check":
        from .check import check

        return check(a.notebook, a.cell_timeout)
    from .course import Course

    if a.db:  # workers started by `grade` read it from the environment
        from .gradebook import ENV, check_url

        try:
            os.environ[ENV] = check_url(a.db)
        except ValueError as e:
            p.error(str(e))
    if getattr(a, "shard", None):
        from .shard import parse

        try:
            parse(a.shard)
        except ValueError as e:
            p.error(str(e))
    course = Course(a.config)
    if a.command == "release":
        from .release import release

        return release(course, a.assignments or None)
    if a.command == "collect":
        from .collect import collect

        return collect(course, a.src)
    if a.command == "grade":
        from .grade import grade

        return grade(course, a.assignment, a.workers, a.unsafe_no_sandbox, a.regrade, students=a.students, shard=a.shard)
    if a.command == "leaderboard":
        from .leaderboard import leaderboard

        return leaderboard(course, a.src, a.budget, a.threads, a.out, a.unsafe_no_sandbox)
    if a.command == "similarity":
        from .similarity import MATCH_STUDENT
        from .similarity_report import similarity_report

        return similarity_report(course, a.assignment, MATCH_STUDENT if a.threshold is None else a.threshold, a.out)
    if a.command == "feedback":
        from .feedback import feedback

        return feedback(course, a.assignment, a.students)
    if a.command == "formgrader":
        from .formgrader import formgrader

        return formgrader(course, a.port, a.ip, a.no_browser)
    if a.command == "stats":
        from .stats import stats

        return stats(course, a.out)
    if a.command == "export":
        from .export import export

        return export(course, a.format, a.mapping, a.columns, a.out)
    from .report import report

    return report(course)


if __name__ == "__main__":
    sys.exit(main())
