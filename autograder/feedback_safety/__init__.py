"""The feedback's safety steps: what a student's feedback page shows, and what it can never do.

In the order they run on each graded notebook:

1. `hidden_tests.ScrubHiddenTests` (a GenerateFeedback preprocessor): hidden-test blocks are cut from test
   cells' source, and every line of theirs from tracebacks, streams and error messages; an output that shows
   one encoded is replaced whole by LEAK_MARK. Guarantees: no hidden-test line in the notebook, plain or encoded.
2. `encoded_leaks.Detector` (used by steps 1 and 5): finds a hidden-test line in text plain or encoded (base-N,
   hex, character codes, rot13, reversed, spaced out), ignoring lines that are public or the student's own.
3. `inert_html.make_inert` (the end of step 1): markdown, raw cells, outputs and metadata reduced to sanitised
   HTML, images and text. Guarantees: nothing of the student's can run script or load a URL in a browser.
4. `locked_exporter.LockedHTMLExporter` (GenerateFeedback's exporter): the page's head scripts removed and a
   Content-Security-Policy put first in <head>. Guarantees: even a missed element can run no script, fetch nothing.
5. The last audit (`final_audit.audit_feedback`, with `inert_html.finalize`): each exported file
   is audited and locked again; one that could still run code or shows a hidden-test line is withheld and flagged.

Before all of these, while grading (`autograder.execute`): `hidden_values.withhold_values` writes the trusted
check's message into the notebook without the hidden case's values (what broke and where stays; the
instructor's status file keeps the full detail).

The same chain runs for grading (the worker's config) and for feedback made by hand (autograder/nbgrader_config.py).
"""
