"""`python -m autograder COMMAND`: release, collect, grade, report, similarity, feedback, formgrader, stats, export,
leaderboard (instructor) and check (student)."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command; its exit status."""
    parser = argparse.ArgumentParser(prog="python -m autograder",
                                     description="The course's sandboxed nbgrader autograder.")
    parser.add_argument("--config", help="nbgrader config file (default: autograder/nbgrader_config.py)")
    parser.add_argument("--db", metavar="URL", help="gradebook URL overriding the config's db_url "
                        "(sqlite:///PATH or postgresql://USER@HOST:PORT/DB)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    release_cmd = sub.add_parser("release",
                                 help="generate course/ from solutions/ (nbgrader generate_assignment --force)")
    release_cmd.add_argument("assignments", nargs="*")
    collect_cmd = sub.add_parser("collect", help="take the expected notebooks from a folder of submissions")
    collect_cmd.add_argument("src")
    grade_cmd = sub.add_parser("grade", help="autograde in the sandbox, trusted verdicts, feedback, grades.csv")
    grade_cmd.add_argument("--assignment")
    grade_cmd.add_argument("--workers", type=int, default=1)
    grade_cmd.add_argument("--student", action="append", dest="students", help="only this student (repeatable)")
    grade_cmd.add_argument("--regrade", action="store_true",
                           help="grade again even unchanged, already graded submissions")
    grade_cmd.add_argument("--unsafe-no-sandbox", action="store_true",
                           help="run student code WITHOUT bubblewrap (flagged)")
    grade_cmd.add_argument("--shard", metavar="K/N",
                           help="grade only shard K of N (several machines, one PostgreSQL gradebook)")
    sub.add_parser("report", help="what needs manual grading or review, and why")
    # -- similarity (cross-student report; autograder/similarity_report.py) --
    similarity_cmd = sub.add_parser("similarity",
                                    help="pairs of students whose solution functions are near-identical (MOSS-like)")
    similarity_cmd.add_argument("--assignment", help="one assignment (default: all)")
    similarity_cmd.add_argument("--threshold", type=float, default=None,
                                help="similarity from which a pair is listed (default 0.6)")
    similarity_cmd.add_argument("--out", help="CSV file (default: the work folder's similarity.csv)")
    # -- end similarity --
    feedback_cmd = sub.add_parser("feedback", help="regenerate the students' feedback (after manual grading)")
    feedback_cmd.add_argument("--assignment")
    feedback_cmd.add_argument("--student", action="append", dest="students", help="only this student (repeatable)")
    formgrader_cmd = sub.add_parser("formgrader",
                                    help="JupyterLab with nbgrader's formgrader on this course (manual grading)")
    formgrader_cmd.add_argument("--port", type=int, default=8888)
    formgrader_cmd.add_argument("--ip", default="127.0.0.1")
    formgrader_cmd.add_argument("--no-browser", action="store_true")
    leaderboard_cmd = sub.add_parser("leaderboard", help="re-run every student's homework config in the sandbox on a "
                                     "fixed budget, ranked by validation loss")
    leaderboard_cmd.add_argument("src", help="a folder of <student>.toml (or .json) homework configs")
    leaderboard_cmd.add_argument("--budget", type=float, default=60.0,
                                 help="wall-clock seconds of training per student")
    leaderboard_cmd.add_argument("--threads", type=int, default=1, help="CPU threads per run (the same for everyone)")
    leaderboard_cmd.add_argument("--out", help="folder for leaderboard.csv and reports/ "
                                 "(default: the work folder's leaderboard/)")
    leaderboard_cmd.add_argument("--unsafe-no-sandbox", action="store_true", help="train WITHOUT bubblewrap")
    # -- stats and export (autograder/stats.py, autograder/export.py) --
    stats_cmd = sub.add_parser("stats",
                               help="per day and exercise: scores, difficulty, discrimination, failure messages")
    stats_cmd.add_argument("--out", help="folder for stats.csv and stats.html (default: the work folder)")
    export_cmd = sub.add_parser("export", help="the gradebook as a Canvas or Moodle grade import CSV, or plain CSV")
    export_cmd.add_argument("--format", choices=["canvas", "moodle", "csv"], required=True)
    export_cmd.add_argument("--mapping", help="CSV mapping our student ids to the LMS's (needed for canvas and moodle)")
    export_cmd.add_argument("--columns", help="CSV mapping our assignments to the LMS's column names (optional)")
    export_cmd.add_argument("--out", help="output file (default: the work folder's export-FORMAT.csv)")
    # -- end stats and export --
    check_cmd = sub.add_parser("check", help="student side: run a notebook and its visible tests")
    check_cmd.add_argument("notebook")
    check_cmd.add_argument("--cell-timeout", type=int, default=300)
    args = parser.parse_args(argv)
    if args.command == "check":
        from .check import check

        return check(args.notebook, args.cell_timeout)
    from .course import Course

    if args.db:  # workers started by `grade` read it from the environment
        from .gradebook import ENV, check_url

        try:
            os.environ[ENV] = check_url(args.db)
        except ValueError as error:
            parser.error(str(error))
    if getattr(args, "shard", None):
        from .shard import parse

        try:
            parse(args.shard)
        except ValueError as error:
            parser.error(str(error))
    course = Course(args.config)
    if args.command == "release":
        from .release import release

        return release(course, args.assignments or None)
    if args.command == "collect":
        from .collect import collect

        return collect(course, args.src)
    if args.command == "grade":
        from .grade import grade

        return grade(course, args.assignment, args.workers, args.unsafe_no_sandbox, args.regrade,
                     students=args.students, shard=args.shard)
    if args.command == "leaderboard":
        from .leaderboard import leaderboard

        return leaderboard(course, args.src, args.budget, args.threads, args.out, args.unsafe_no_sandbox)
    if args.command == "similarity":
        from .similarity import MATCH_STUDENT
        from .similarity_report import similarity_report

        threshold = MATCH_STUDENT if args.threshold is None else args.threshold
        return similarity_report(course, args.assignment, threshold, args.out)
    if args.command == "feedback":
        from .feedback import feedback

        return feedback(course, args.assignment, args.students)
    if args.command == "formgrader":
        from .formgrader import formgrader

        return formgrader(course, args.port, args.ip, args.no_browser)
    if args.command == "stats":
        from .stats import stats

        return stats(course, args.out)
    if args.command == "export":
        from .export import export

        return export(course, args.format, args.mapping, args.columns, args.out)
    from .report import report

    return report(course)


if __name__ == "__main__":
    sys.exit(main())
