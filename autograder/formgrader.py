"""`formgrader`: JupyterLab with nbgrader's formgrader on this course, for grading written answers.

nbgrader's server extensions read `nbgrader_config.py` from the working directory, so we start
JupyterLab from a small folder (work/formgrader/) whose config loads the course's and sets the
gradebook (--db included) and the exchange; JupyterLab's root is the course root.
"""

from __future__ import annotations

import os
import sys

from .course import Course

CONFIG = '''# written by `python -m autograder formgrader`; rewritten on every start
c = get_config()  # noqa: F821
load_subconfig({config!r})  # noqa: F821  (the course's own config)
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = {db_url!r}
c.Exchange.root = {exchange!r}
c.FormgradeExtension.debug = False
'''


def write_config(course: Course) -> str:
    """The folder holding the formgrader's nbgrader_config.py."""
    from .settings import DEFAULT_CONFIG

    here = os.path.join(course.work, "formgrader")
    os.makedirs(here, exist_ok=True)
    exchange = course.config.Exchange.get("root") or os.path.join(course.work, "exchange")
    os.makedirs(exchange, exist_ok=True)
    os.chmod(exchange, 0o777 | 0o1000)  # nbgrader wants a world-writable, sticky exchange
    course_config = course.config_path or os.environ.get("AUTOGRADER_CONFIG", DEFAULT_CONFIG)
    text = CONFIG.format(config=os.path.abspath(course_config), root=course.root, db_url=course.gradebook_url,
                         exchange=exchange)
    with open(os.path.join(here, "nbgrader_config.py"), "w") as config_file:
        config_file.write(text)
    return here


def command(course: Course, port: int, ip: str = "127.0.0.1", no_browser: bool = False,
            token: str | None = None) -> list[str]:
    """The JupyterLab command line that serves the formgrader on this course."""
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={course.root}", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--ServerApp.ip={ip}"]
    if no_browser:
        cmd.append("--no-browser")
    if token is not None:
        cmd.append(f"--IdentityProvider.token={token}")
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


def formgrader(course: Course, port: int = 8888, ip: str = "127.0.0.1", no_browser: bool = False) -> None:
    """Become JupyterLab serving the formgrader (this process is replaced)."""
    here = write_config(course)
    print(f"formgrader: http://{ip}:{port}/formgrader (JupyterLab root {course.root}; gradebook "
          f"{course.db_url if course.db_path else 'PostgreSQL'})\nafter grading by hand: `python -m autograder report` "
          "(grades.csv with manual scores) and `python -m autograder feedback`", flush=True)
    cmd = command(course, port, ip, no_browser)
    os.chdir(here)
    os.execv(cmd[0], cmd)  # this process becomes JupyterLab: a stop signal reaches the server, none is left behind
