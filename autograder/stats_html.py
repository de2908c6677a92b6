"""The class statistics as one self-contained HTML page: tables and matplotlib plots embedded as PNG data: URLs.

No script, no external resource (a Content-Security-Policy says so), so the file can be mailed or opened
anywhere. Each number sits in an element with `data-field` (and its row's `data-day`/`data-exercise`), so a
browser test can read them back.
"""

from __future__ import annotations

import base64
import html
import io

from matplotlib.figure import Figure

from .atomic import write_atomic

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """body{font-family:sans-serif;margin:2em;max-width:75em}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #bbb;padding:.2em .5em;text-align:right}td.text,th.text{text-align:left}
img{max-width:100%}h2{border-top:2px solid #444;padding-top:.5em}"""
LABEL_CHARS = 45  # failure messages on a plot's axis are cut here (the table below it has them whole)


def _png(fig: Figure) -> str:
    """The figure as a data: URL of a PNG (the page loads nothing)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72)  # no bbox_inches="tight": it draws the figure twice
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def day_figure(day, exercise_rows: list[dict], failure_rows: list[dict]) -> str:
    """One figure per day (one draw, so the page stays quick to make): the histogram of the day's totals,
    its exercises from hardest (lowest mean/max) to easiest, and its top failure messages by students."""
    ranked = sorted((row for row in exercise_rows if row["difficulty"] is not None), key=lambda row: row["difficulty"])
    heights = [2.2, 0.3 * len(ranked) + 0.8] + ([0.3 * len(failure_rows) + 0.8] if failure_rows else [])
    fig = Figure(figsize=(9, sum(heights) + 0.6 * len(heights)))
    axes = fig.subplots(len(heights), 1, gridspec_kw={"height_ratios": heights})
    hist = axes[0]
    hist.hist(list(day.totals.values()), bins=min(20, max(5, len(day.totals))), range=(0, max(day.max_score, 1e-9)),
              color="#4a7ab5", edgecolor="white")
    hist.set_xlabel(f"score (of {day.max_score:g})")
    hist.set_ylabel("students")
    hist.set_title(f"{day.name}: scores")
    ranking = axes[1]
    ranking.barh([row["exercise"] for row in ranked][::-1], [row["difficulty"] for row in ranked][::-1],
                 color="#c0504d")
    ranking.set_xlim(0, 1)
    ranking.set_xlabel("difficulty (mean / max: lower is harder)")
    ranking.set_title("exercises, hardest first")
    if failure_rows:
        labels = [f"{row['exercise']}: {row['message'][:LABEL_CHARS]}" for row in failure_rows]
        failures = axes[2]
        failures.barh(labels[::-1], [row["count"] for row in failure_rows][::-1], color="#9bbb59")
        failures.tick_params(axis="y", labelsize=7)
        failures.set_xlabel("students")
        failures.set_title("most frequent failure messages")
    fig.subplots_adjust(left=0.42, right=0.97, top=0.97, bottom=0.05, hspace=0.6)  # room for the labels
    return _png(fig)


def _number(value) -> str:
    """A table cell's text: empty for None, 4 significant digits for floats."""
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _td(row: dict, name: str) -> str:
    """One numeric <td> of a row, named by its field."""
    return f'<td data-field="{name}">{html.escape(_number(row.get(name)))}</td>'


NUMBERS = ["n", "max_score", "mean", "median", "full_marks_share"]


def day_section(day, table: list[dict]) -> str:
    """One day's <section>: its summary, figure, exercise table and top failure messages."""
    mine = [row for row in table if row["assignment"] == day.name]
    summary = next(row for row in mine if row["level"] == "day")
    exercises = [row for row in mine if row["level"] == "exercise"]
    failures = [row for row in mine if row["level"] == "failure"]
    esc = html.escape
    parts = [f'<section data-day="{esc(day.name)}"><h2>{esc(day.name)}</h2>',
             '<table class="day"><tr>' + "".join(f"<th>{field}</th>" for field in NUMBERS) + "</tr>",
             '<tr class="day-row">' + "".join(_td(summary, field) for field in NUMBERS) + "</tr></table>",
             f'<img alt="{esc(day.name)}: score histogram, exercises by difficulty, top failure messages" '
             f'src="{day_figure(day, exercises, failures)}">']
    if exercises:
        head = ["exercise", "notebook"] + NUMBERS + ["difficulty", "discrimination"]
        parts.append('<table class="exercises"><tr>' + "".join(f"<th>{field}</th>" for field in head) + "</tr>")
        for row in exercises:
            parts.append(f'<tr data-exercise="{esc(row["exercise"])}"><td class="text">{esc(row["exercise"])}</td>'
                         f'<td class="text">{esc(row["notebook"])}</td>'
                         + "".join(_td(row, field) for field in NUMBERS + ["difficulty", "discrimination"]) + "</tr>")
        parts.append("</table>")
    if failures:
        parts.append('<table class="failures"><tr><th class="text">exercise</th><th>students</th>'
                     '<th class="text">message</th></tr>')
        for row in failures:
            parts.append(f'<tr data-exercise="{esc(row["exercise"])}"><td class="text">{esc(row["exercise"])}</td>'
                         f'<td data-field="count">{row["count"]}</td><td class="text">{esc(row["message"])}</td></tr>')
        parts.append("</table>")
    parts.append("</section>")
    return "\n".join(parts)


def write_html(path: str, days: dict, table: list[dict]) -> None:
    """stats.html: one section per day, locked by a CSP like the feedback pages."""
    body = "\n".join(day_section(day, table) for day in days.values())
    page = (f'<!DOCTYPE html>\n<html><head><meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta charset="utf-8"><title>Class statistics</title><style>{STYLE}</style></head><body>'
            f"<h1>Class statistics</h1><p>{len(days)} days. Difficulty is mean / max (1: everyone full marks); "
            "discrimination is the correlation of an exercise's score with the rest of the day's total.</p>\n"
            f"{body}\n</body></html>\n")
    write_atomic(path, page, encoding="utf-8")
