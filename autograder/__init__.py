"""The course autograder: nbgrader with a bubblewrap sandbox and trusted verdicts (`python -m autograder`)."""

from autograder.inside.startup import skip_slow_optional_imports

skip_slow_optional_imports()  # before anything imports nbformat: 2 s less per process (see inside/startup.py)
