"""The last of the feedback's safety steps: each exported page is audited after the export, and one that is unsafe
is withheld from the student (the grade is kept; the status record says why)."""

from __future__ import annotations

import glob
import html
import os
import re

import nbformat

from ..course import Course
from .encoded_leaks import Detector
from .hidden_tests import LEAK_MARK, hidden_lines
from .inert_html import finalize


def audit_feedback(course: Course, assignment: str, student: str, status: dict, staged: str) -> None:
    """After the export, belt and braces: every feedback file is audited and locked (inert_html:
    no script, CSP first in <head>); one that could run something, or that shows a hidden-test line (plain or
    encoded: encoded_leaks), is withheld. Lines public in the release or the student's own do
    not count."""
    secret = []
    for nb_id in course.notebooks(assignment):
        src = os.path.join(course.source, assignment, f"{nb_id}.ipynb")
        if os.path.exists(src):
            for cell in nbformat.read(src, as_version=4).cells:
                secret += hidden_lines(cell.source)
    public = []
    notebooks = (glob.glob(os.path.join(staged, "*.ipynb"))
                 + glob.glob(os.path.join(course.release, assignment, "*.ipynb")))
    for path in notebooks:
        try:
            public += [str(cell.source) for cell in nbformat.read(path, as_version=4).cells]
        except Exception:  # noqa: BLE001 - an unreadable copy hides nothing
            pass
    detector = Detector(secret, "\n".join(public))
    for path in sorted(glob.glob(os.path.join(course.feedback, student, assignment, "*.html"))):
        name = os.path.basename(path)
        problems = finalize(path)
        page = open(path, encoding="utf-8", errors="replace").read()
        found = detector.find(page + "\n" + html.unescape(re.sub(r"<[^>]+>", "", page)))
        if problems or found:
            os.replace(path, path + ".withheld")
            why = (f"it could run code in a browser ({'; '.join(problems)[:200]})" if problems else
                   f"it showed hidden test code ({found[1]}: {found[0][:60]!r})")
            status["flags"].append(f"feedback {name} withheld: {why}")
        elif LEAK_MARK in page:
            status["flags"].append(f"feedback {name}: {page.count(LEAK_MARK)} output(s) cut because they showed "
                                   "hidden test code (the student's code printed it)")
