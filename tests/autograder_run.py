"""Running the autograder from the tests: its command line, and config files that build on the course's own
nbgrader config (autograder/nbgrader_config.py), so a test course differs from the real one only where it says."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COURSE_CONFIG = os.path.join(REPO, "autograder", "nbgrader_config.py")


def cli(cfg: str | os.PathLike, *args: str, db: str | None = None, check: bool = False, timeout: float | None = 900,
        **kw: Any) -> subprocess.CompletedProcess:
    """`python -m autograder --config cfg [--db db] args...` from the repository root, output captured as text;
    check=True asserts it exited 0 (the message holds the ends of its output)."""
    pre = ["--db", db] if db else []
    done = subprocess.run([sys.executable, "-m", "autograder", "--config", str(cfg), *pre, *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, **kw)
    if check:
        assert done.returncode == 0, f"autograder {args[0] if args else ''} exited {done.returncode}\n" \
                                     f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def config_text(work: str | os.PathLike, base: str | os.PathLike = COURSE_CONFIG, **settings: Any) -> str:
    """An nbgrader config that loads `base` (default: the course's own config), puts every instructor-side folder
    under `work`, then sets `settings` ({"Autograder__cell_timeout": 5} sets c.Autograder.cell_timeout = 5)."""
    work = os.fspath(work)
    lines = ["c = get_config()  # noqa: F821", f"load_subconfig({os.fspath(base)!r})  # noqa: F821"]
    folders = {
        "CourseDirectory.submitted_directory": os.path.join(work, "submitted"),
        "CourseDirectory.autograded_directory": os.path.join(work, "autograded"),
        "CourseDirectory.feedback_directory": os.path.join(work, "feedback"),
        "CourseDirectory.db_url": "sqlite:///" + os.path.join(work, "gradebook.db"),
        "Exchange.root": os.path.join(work, "exchange"),
    }
    folders.update({name.replace("__", "."): value for name, value in settings.items()})
    lines += [f"c.{name} = {value!r}" for name, value in folders.items()]
    return "\n".join(lines) + "\n"
