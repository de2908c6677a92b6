"""`stats`: where the class struggles, per day and per exercise, from the gradebook and the autograded notebooks.

Per day: submissions, mean and median score, share of full marks. Per exercise (an nbgrader graded cell,
written answers included): the same, difficulty (mean / max: 1 is easy, 0 nobody scored) and discrimination
(Pearson correlation of the exercise's score with the rest of the day's total, over the students who handed
the day in). The failure messages of graded test cells are counted from the autograded notebooks.
Scores come from the gradebook (manual grades included), so every machine of a sharded run sees the class.
`stats_html.py` draws the page; this module only computes.
"""

from __future__ import annotations

import csv
import math
import os
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field

import nbformat

from .atomic import write_atomic
from .course import Course

ANSI = re.compile(r"\x1b\[[0-9;]*m")
MESSAGE_CHARS = 200  # a failure message is its first line, cut here
TOP_FAILURES = 5  # messages listed per exercise
FIELDS = ["level", "assignment", "notebook", "exercise", "n", "max_score", "mean", "median", "full_marks_share",
          "difficulty", "discrimination", "count", "message"]


@dataclass
class Exercise:
    """One graded cell of one day: every submitted student's score on it."""

    assignment: str
    notebook: str
    name: str
    max_score: float
    scores: dict[str, float] = field(default_factory=dict)  # student -> points
    failures: Counter = field(default_factory=Counter)  # failure message -> students who got it


@dataclass
class Day:
    """One assignment: its students' totals and its exercises in notebook order."""

    name: str
    max_score: float = 0.0
    totals: dict[str, float] = field(default_factory=dict)  # student -> total points (manual included)
    exercises: dict[tuple[str, str], Exercise] = field(default_factory=dict)  # (notebook, grade id) -> exercise


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def full_share(values: list[float], max_score: float) -> float | None:
    """Share of the values at full marks (within 1e-9; a 0-point item counts everyone as full)."""
    return sum(value >= max_score - 1e-9 for value in values) / len(values) if values else None


def pearson(xs: list[float], ys: list[float]) -> float | None:
    """Correlation of two equally long lists; None when either is constant or there are fewer than 3 pairs."""
    if len(xs) != len(ys) or len(xs) < 3:
        return None
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys))
    spread_x = sum((x - mean_x) ** 2 for x in xs)
    spread_y = sum((y - mean_y) ** 2 for y in ys)
    if spread_x <= 1e-12 or spread_y <= 1e-12:
        return None
    return covariance / math.sqrt(spread_x * spread_y)


def discrimination(day: Day, exercise: Exercise) -> float | None:
    """Correlation of the exercise's score with the rest of the day's total (the total without it)."""
    students = sorted(student for student in exercise.scores if student in day.totals)
    own = [exercise.scores[student] for student in students]
    rest = [day.totals[student] - exercise.scores[student] for student in students]
    return pearson(own, rest)


def read_gradebook(course: Course) -> dict[str, Day]:
    """assignment -> Day, from the gradebook: every submission's total and every graded cell's score."""
    from nbgrader.api import Gradebook

    days: dict[str, Day] = {}
    with Gradebook(course.gradebook_url) as book:
        for assignment in sorted(book.assignments, key=lambda entry: entry.name):
            day = days[assignment.name] = Day(assignment.name, float(assignment.max_score or 0))
            for notebook in assignment.notebooks:
                for cell in notebook.grade_cells:
                    key = (notebook.name, cell.name)
                    day.exercises[key] = Exercise(assignment.name, notebook.name, cell.name, float(cell.max_score))
            for submission in book.assignment_submissions(assignment.name):
                student = submission.student.id
                day.totals[student] = float(submission.score or 0)
                for submitted in submission.notebooks:
                    for grade in submitted.grades:
                        exercise = day.exercises.get((submitted.name, grade.name))
                        if exercise is not None:
                            exercise.scores[student] = float(grade.score or 0)
    return days


def failure_message(output: dict) -> str:
    """'ErrorName: first line of the message' of an error output, without colours, cut to MESSAGE_CHARS."""
    value = ANSI.sub("", str(output.get("evalue", ""))).strip()
    first = value.splitlines()[0].strip() if value else ""
    message = f"{output.get('ename', 'Error')}: {first}" if first else str(output.get("ename", "Error"))
    return message[:MESSAGE_CHARS]


def read_failures(course: Course, days: dict[str, Day]) -> None:
    """Count, per exercise, the students whose autograded graded test cell ended in an error, by message."""
    for day in days.values():
        for student in day.totals:
            folder = os.path.join(course.autograded, student, day.name)
            for notebook in {name for name, _ in day.exercises}:
                path = os.path.join(folder, notebook + ".ipynb")
                if not os.path.exists(path):
                    continue
                try:
                    autograded = nbformat.read(path, as_version=4)
                except Exception:  # noqa: BLE001 - an unreadable autograded copy has no messages to count
                    continue
                for cell in autograded.cells:
                    meta = cell.get("metadata", {}).get("nbgrader", {})
                    if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution"):
                        continue
                    exercise = day.exercises.get((notebook, meta.get("grade_id")))
                    errors = [output for output in cell.get("outputs", []) if output.get("output_type") == "error"]
                    if exercise is not None and errors:
                        # the cell's own failure first: the trusted check's message is appended after it
                        exercise.failures[failure_message(errors[0])] += 1


def collect(course: Course) -> dict[str, Day]:
    """The class: gradebook scores and failure messages."""
    days = read_gradebook(course)
    read_failures(course, days)
    return days


def day_row(day: Day) -> dict:
    """stats.csv's row of one day: its totals' count, mean, median and share at full marks."""
    values = list(day.totals.values())
    return {"level": "day", "assignment": day.name, "n": len(values), "max_score": day.max_score,
            "mean": mean(values), "median": median(values), "full_marks_share": full_share(values, day.max_score)}


def exercise_row(day: Day, exercise: Exercise) -> dict:
    """stats.csv's row of one exercise: the day's columns plus difficulty and discrimination."""
    values = list(exercise.scores.values())
    average = mean(values)
    difficulty = average / exercise.max_score if average is not None and exercise.max_score > 0 else None
    return {"level": "exercise", "assignment": day.name, "notebook": exercise.notebook, "exercise": exercise.name,
            "n": len(values), "max_score": exercise.max_score, "mean": average, "median": median(values),
            "full_marks_share": full_share(values, exercise.max_score), "difficulty": difficulty,
            "discrimination": discrimination(day, exercise)}


def failure_rows(exercise: Exercise) -> list[dict]:
    """The most frequent messages, most frequent first (ties by message, so the order is stable)."""
    top = sorted(exercise.failures.items(), key=lambda message_count: (-message_count[1], message_count[0]))
    top = top[:TOP_FAILURES]
    return [{"level": "failure", "assignment": exercise.assignment, "notebook": exercise.notebook,
             "exercise": exercise.name, "count": count, "message": message} for message, count in top]


def rows(days: dict[str, Day]) -> list[dict]:
    """stats.csv's rows: each day, then its exercises, then their top failure messages."""
    out = []
    for day in days.values():
        out.append(day_row(day))
        out += [exercise_row(day, exercise) for exercise in day.exercises.values()]
        for exercise in day.exercises.values():
            out += failure_rows(exercise)
    return out


def _cell(value) -> str:
    """One CSV field: empty for None, floats rounded to 6 digits."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(round(value, 6))
    return str(value)


def write_csv(path: str, table: list[dict]) -> None:
    """stats.csv, written atomically."""
    def write(csv_file) -> None:
        writer = csv.DictWriter(csv_file, fieldnames=FIELDS)
        writer.writeheader()
        for row in table:
            writer.writerow({field: _cell(row.get(field)) for field in FIELDS})
    write_atomic(path, write, newline="")


def stats(course: Course, out_dir: str | None = None, say=print) -> int:
    """Write stats.csv and stats.html (the work folder by default)."""
    from .stats_html import write_html

    days = {name: day for name, day in collect(course).items() if day.totals}
    if not days:
        say("nothing graded yet (run `python -m autograder grade`)")
        return 1
    out_dir = out_dir or course.work
    os.makedirs(out_dir, exist_ok=True)
    table = rows(days)
    write_csv(os.path.join(out_dir, "stats.csv"), table)
    write_html(os.path.join(out_dir, "stats.html"), days, table)
    say(f"{len(days)} days, {sum(len(day.exercises) for day in days.values())} exercises: "
        f"{os.path.join(out_dir, 'stats.csv')}, {os.path.join(out_dir, 'stats.html')}")
    return 0
