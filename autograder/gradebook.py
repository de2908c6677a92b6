"""The gradebook's address in one place: SQLite (one machine) or PostgreSQL (several graders).

Every part of the autograder opens the gradebook through `course.gradebook_url`, which is
`sqlalchemy_url(course.db_url)` (used directly here, so these functions take anything with a
`db_url`): SQLite gets a lock timeout, a `postgresql://` URL is sent through psycopg 3
(SQLAlchemy would pick psycopg2).
`backup(course)` copies the gradebook before grading: SQLite's online backup, `pg_dump` for
PostgreSQL, or, without pg_dump, a JSON export of every table.
"""

from __future__ import annotations

import datetime
import decimal
import os
import shutil
import sqlite3
import subprocess
import time
from urllib.parse import urlsplit, urlunsplit

from .atomic import write_json

SQLITE = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2")
SQLITE_TIMEOUT = 60  # seconds a writer waits for SQLite's lock
ENV = "AUTOGRADER_DB_URL"  # `python -m autograder --db URL` sets it, so worker processes see it too


def check_url(db_url: str) -> str:
    """The URL as given, or a ValueError naming what is wrong with it."""
    if not isinstance(db_url, str) or not db_url:
        raise ValueError("db_url is empty: give sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
    if db_url.startswith(SQLITE):
        if not db_url[len(SQLITE):].split("?")[0]:
            raise ValueError(f"db_url {db_url!r} names no file (sqlite:///PATH)")
        return db_url
    scheme = db_url.split("://", 1)[0] if "://" in db_url else ""
    if scheme not in POSTGRES_SCHEMES:
        raise ValueError(f"db_url must be sqlite:///PATH or postgresql://USER@HOST:PORT/DB, got {db_url!r}")
    if not urlsplit(db_url).path.strip("/"):
        raise ValueError(f"db_url {db_url!r} names no database (postgresql://USER@HOST:PORT/DB)")
    return db_url


def is_sqlite(db_url: str) -> bool:
    return db_url.startswith(SQLITE)


def sqlite_path(db_url: str) -> str | None:
    return db_url[len(SQLITE):].split("?")[0] if is_sqlite(db_url) else None


def sqlalchemy_url(db_url: str) -> str:
    """What nbgrader's Gradebook (SQLAlchemy) is given: SQLite with a lock timeout, PostgreSQL via psycopg 3."""
    if is_sqlite(db_url):
        return SQLITE + sqlite_path(db_url) + f"?timeout={SQLITE_TIMEOUT}"
    parts = urlsplit(db_url)
    scheme = "postgresql+psycopg" if parts.scheme in ("postgresql", "postgres") else parts.scheme
    return urlunsplit((scheme,) + tuple(parts[1:]))


def libpq_url(db_url: str) -> str:
    """The same PostgreSQL address for libpq tools (pg_dump, psql)."""
    parts = urlsplit(db_url)
    return urlunsplit(("postgresql",) + tuple(parts[1:]))


def display(db_url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(db_url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return db_url


def exists(course) -> bool:
    """Whether the gradebook has been created (by `release`)."""
    if is_sqlite(course.db_url):
        return os.path.exists(sqlite_path(course.db_url))
    from sqlalchemy import create_engine, inspect

    engine = create_engine(sqlalchemy_url(course.db_url))
    try:
        return "assignment" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def ensure_students(course, students) -> None:
    """Create the students' gradebook rows before parallel graders do (on PostgreSQL two graders
    creating the same student at once would make one fail a unique constraint)."""
    from nbgrader.api import Gradebook, InvalidEntry
    from sqlalchemy.exc import IntegrityError

    if not students:
        return
    course_id = course.config.CourseDirectory.get("course_id", "default_course")
    for attempt in range(5):
        try:
            Gradebook(sqlalchemy_url(course.db_url)).close()  # the course rows the workers' Gradebook() calls look up
            with Gradebook(sqlalchemy_url(course.db_url), course_id) as gb:
                for s in sorted(set(students)):
                    gb.update_or_create_student(s)
            return
        except (IntegrityError, InvalidEntry):  # another machine created one first (nbgrader wraps it): again
            time.sleep(0.2 * (attempt + 1))
    raise RuntimeError("could not create the students in the gradebook (unique-constraint conflicts kept recurring)")


def backup(course) -> str | None:
    """A timestamped copy of the gradebook under work/backups/; None when there is none yet."""
    if not exists(course):
        return None
    os.makedirs(course.backups, exist_ok=True)
    stem = os.path.join(course.backups, time.strftime("gradebook-%Y%m%dT%H%M%S", time.gmtime()) + f"-{os.getpid()}")
    if is_sqlite(course.db_url):
        dest = stem + ".db"
        src = sqlite3.connect(sqlite_path(course.db_url), timeout=SQLITE_TIMEOUT)
        dst = sqlite3.connect(dest)
        with dst:
            src.backup(dst)
        src.close()
        dst.close()
        return dest
    pg_dump = shutil.which("pg_dump")
    if pg_dump:
        dest = stem + ".pgdump"
        r = subprocess.run([pg_dump, "--format=custom", "--no-owner", "--file", dest, libpq_url(course.db_url)],
                           capture_output=True, text=True, timeout=600)
        if r.returncode == 0:
            return dest
        try:  # e.g. a pg_dump older than the server: fall back to the logical export
            os.unlink(dest)
        except FileNotFoundError:
            pass
    return export_json(course, stem + ".json")


def export_json(course, dest: str) -> str:
    """Every gradebook table as JSON rows (restorable by hand; needs only SQLAlchemy)."""
    from sqlalchemy import MetaData, create_engine, select

    def plain(v):
        if isinstance(v, (datetime.datetime, datetime.date)):
            return v.isoformat()
        if isinstance(v, decimal.Decimal):
            return float(v)
        return v

    engine = create_engine(sqlalchemy_url(course.db_url))
    try:
        meta = MetaData()
        meta.reflect(bind=engine)
        out = {}
        with engine.connect() as conn:
            for name, table in sorted(meta.tables.items()):
                out[name] = [{k: plain(v) for k, v in row._mapping.items()} for row in conn.execute(select(table))]
    finally:
        engine.dispose()
    write_json(dest, out, indent=0, sort_keys=True)
    return dest


def manual_columns(gb, assignment: str, student: str) -> dict:
    """grades.csv's manual-grading columns for one submission, read from an open Gradebook:
    automatic and manual points, and the written answers still waiting for a grader."""
    from nbgrader.api import MissingEntry

    try:
        sub = gb.find_submission(assignment, student)
    except MissingEntry:
        return {"auto_score": None, "manual_score": None, "ungraded": ""}
    auto = manual = 0.0
    ungraded = []
    for nb in sub.notebooks:
        for g in nb.grades:
            if g.manual_score is not None:
                manual += g.manual_score
            elif g.auto_score is not None:
                auto += g.auto_score
            if g.needs_manual_grade:
                ungraded.append(f"{nb.name}:{g.name}")
    return {"auto_score": auto, "manual_score": manual, "ungraded": " ".join(sorted(ungraded))}


MANUAL_FIELDS = ["auto_score", "manual_score", "ungraded"]
