"""The course autograder: nbgrader with a bubblewrap sandbox and trusted verdicts (`python -m autograder`)."""
