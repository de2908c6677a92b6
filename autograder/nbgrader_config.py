"""nbgrader configuration for the course.

Source notebooks live in solutions/, released (student) notebooks in course/, and every
instructor-side artefact (submissions, autograded copies, feedback, the gradebook) under
autograder/work/, which git ignores. Load it with
`--NbGrader.config_file=autograder/nbgrader_config` or through `python -m autograder`.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.environ.get("GPTREF_GRADING_DIR", os.path.join(HERE, "work"))

c = get_config()  # noqa: F821 (provided by traitlets when the file is loaded)

c.CourseDirectory.root = ROOT
c.CourseDirectory.course_id = "gptref"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "course"
c.CourseDirectory.submitted_directory = os.path.join(WORK, "submitted")
c.CourseDirectory.autograded_directory = os.path.join(WORK, "autograded")
c.CourseDirectory.feedback_directory = os.path.join(WORK, "feedback")
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(WORK, "gradebook.db")
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "*.db", "work", "*.png", "*.model", "*.vocab"]

# Released notebooks carry no outputs, so `course/` is byte-identical to a fresh generation.
c.ClearOutput.enabled = True
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.Execute.timeout = 120
c.Exchange.root = os.path.join(WORK, "exchange")

# The course corpus, read-only in the sandbox (which has no network to download it).
_cache = os.environ.get("GPTREF_CACHE") or os.path.expanduser("~/.cache/gptref")
if os.path.isdir(_cache):
    c.Autograder.env = {"GPTREF_CACHE": _cache}
    c.Autograder.extra_ro_binds = [_cache]

# Feedback made by hand (`nbgrader generate_feedback` with this config) gets the autograder's protections:
# hidden tests cut from sources and outputs, student HTML made inert (autograder/feedback_safety/), the
# page locked (no head scripts, CSP first; feedback_safety/locked_exporter.py). The worker sets the same chain.
import sys  # noqa: E402

if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # nbgrader run by hand imports autograder from the course root
c.GenerateFeedback.preprocessors = ["nbgrader.preprocessors.GetGrades",
                                    "autograder.feedback_safety.hidden_tests.ScrubHiddenTests",
                                    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor"]
c.GenerateFeedback.exporter_class = "autograder.feedback_safety.locked_exporter.LockedHTMLExporter"
