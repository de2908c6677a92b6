"""Scripts that run INSIDE the grading sandbox (bound read-only at /opt/autograder there).

They import nothing from the rest of `autograder` (the sandbox sees only this folder), only
the standard library, numpy/torch, nbclient and IPython.
"""
