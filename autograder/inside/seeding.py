"""One seed for every random number generator a graded notebook may use: random, numpy, and torch once imported.

The notebook runner sends `kernel_code(seed)` to the student's kernel; the verdict runner calls
`seed_everything` in its own process. Both therefore seed exactly the same way.
"""

from __future__ import annotations

import inspect


def seed_everything(s: int) -> None:
    import random
    import sys

    random.seed(s)
    try:
        import numpy

        numpy.random.seed(s % 2**32)
    except Exception:
        pass
    if "torch" in sys.modules:  # otherwise torch starts from its fixed default seed
        sys.modules["torch"].manual_seed(s)


def kernel_code(s: int) -> str:
    """Source that runs seed_everything(s) in a kernel and leaves no new name in the student's namespace."""
    source = inspect.getsource(seed_everything).replace("def seed_everything(", "def _autograder_seed(", 1)
    return f"{source}\n_autograder_seed({int(s)})\ndel _autograder_seed\n"
