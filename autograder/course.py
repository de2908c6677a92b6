"""Where things are: the course folders as the nbgrader config names them."""

from __future__ import annotations

import os
import re
import sys

from traitlets.config import Config

from . import gradebook
from .settings import Autograder, load_config

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def put_scripts_on_path() -> None:
    """nbgrader runs `alembic` by name: make this interpreter's scripts (its bin folder) findable."""
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


class Course:
    def __init__(self, config_path: str | None = None, db_url: str | None = None):
        put_scripts_on_path()
        self.config = load_config(config_path)
        self.config_path = config_path
        directories = self.config.CourseDirectory
        self.root = os.path.abspath(directories.get("root", os.getcwd()))

        def at(value: str, default: str) -> str:
            folder = value if isinstance(value, str) and value else default
            return folder if os.path.isabs(folder) else os.path.join(self.root, folder)

        self.source = at(directories.get("source_directory"), "source")
        self.release = at(directories.get("release_directory"), "release")
        self.submitted = at(directories.get("submitted_directory"), "submitted")
        self.autograded = at(directories.get("autograded_directory"), "autograded")
        self.feedback = at(directories.get("feedback_directory"), "feedback")
        # the gradebook: --db (passed on to workers through the environment), else the config's db_url
        default_db = "sqlite:///" + os.path.join(self.root, "gradebook.db")
        self.db_url = gradebook.check_url(db_url or os.environ.get(gradebook.ENV)
                                          or directories.get("db_url", default_db))
        self.db_path = gradebook.sqlite_path(self.db_url)  # None for PostgreSQL
        # this machine's own files (status, staging, backups, grades.csv): next to a SQLite gradebook,
        # else the folder holding submitted/ (each machine of a sharded run has its own)
        self.work = os.path.dirname(self.db_path) if self.db_path else os.path.dirname(self.submitted.rstrip(os.sep))
        self.status = os.path.join(self.work, "status")
        self.staging = os.path.join(self.work, "staging")
        self.backups = os.path.join(self.work, "backups")
        self.settings = Autograder(config=self.config)
        self.secret_file = self.settings.secret_file or os.path.join(self.work, "secret")

    @property
    def gradebook_url(self) -> str:
        """The URL to open the gradebook with (SQLite lock timeout; PostgreSQL through psycopg 3)."""
        return gradebook.sqlalchemy_url(self.db_url)

    def assignments(self) -> list[str]:
        """Every folder of the source directory holding a notebook."""
        if not os.path.isdir(self.source):
            return []
        return sorted(name for name in os.listdir(self.source)
                      if os.path.isdir(os.path.join(self.source, name)) and not name.startswith(".")
                      and any(file.endswith(".ipynb") for file in os.listdir(os.path.join(self.source, name))))

    def notebooks(self, assignment: str) -> list[str]:
        """Notebook ids (file names without .ipynb) of an assignment, from the release."""
        folder = os.path.join(self.release, assignment)
        if not os.path.isdir(folder):
            folder = os.path.join(self.source, assignment)
        if not os.path.isdir(folder):
            return []
        return sorted(name[:-6] for name in os.listdir(folder) if name.endswith(".ipynb"))

    def all_notebooks(self) -> dict[str, str]:
        """notebook id -> assignment, over the whole course."""
        return {notebook: assignment for assignment in self.assignments() for notebook in self.notebooks(assignment)}

    def api(self, extra: Config | None = None):
        from nbgrader.apps.api import NbGraderAPI

        cfg = Config(self.config)
        cfg.CourseDirectory.db_url = self.gradebook_url
        if extra is not None:
            cfg.merge(extra)
        return NbGraderAPI(config=cfg)
