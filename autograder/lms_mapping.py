"""The instructor's mapping files for `export`: our student ids to the LMS's, our assignments to its columns.

Both are CSV files with a header row. Every problem is a MappingError naming the file, the line and what to
fix, so a bad file never turns into a silently wrong upload.
"""

from __future__ import annotations

import csv
import os

# the LMS's identity of a student: the columns each format needs in the student mapping (beyond student_id)
REQUIRED = {"canvas": ("name", "canvas_id"), "moodle": ()}
OPTIONAL = {"canvas": ("sis_user_id", "sis_login_id", "section"),
            "moodle": ("first_name", "last_name", "email", "idnumber", "username")}
MOODLE_IDS = ("idnumber", "email", "username")  # Moodle can match users on any one of these; the first present wins


class MappingError(ValueError):
    """A mapping file that cannot be used, with the reason."""


def read_rows(path: str, what: str) -> tuple[list[str], list[tuple[int, dict]]]:
    """(header, [(line number, row)]) of a CSV file; MappingError for a missing, non-UTF-8 or empty file."""
    if not os.path.isfile(path):
        raise MappingError(f"{what} {path}: no such file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            rows = []
            for row in reader:
                if None in row:
                    raise MappingError(f"{what} {path}, line {reader.line_num}: more fields than the header has")
                rows.append((reader.line_num, {k: (v or "").strip() for k, v in row.items()}))
    except UnicodeDecodeError as e:
        raise MappingError(f"{what} {path}: not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8 CSV")
    except csv.Error as e:
        raise MappingError(f"{what} {path}: not a readable CSV file ({e})")
    if not header:
        raise MappingError(f"{what} {path}: empty file (a header row is needed)")
    if len(set(header)) != len(header):
        raise MappingError(f"{what} {path}: a column name appears twice in the header {header}")
    return header, rows


def students(path: str, fmt: str) -> list[dict]:
    """The student mapping: one dict per LMS student, in the file's order, with `student_id` and the format's
    columns. Each of our ids and each LMS id at most once."""
    what = "student mapping"
    header, rows = read_rows(path, what)
    needed = ("student_id",) + REQUIRED[fmt]
    missing = [c for c in needed if c not in header]
    if missing:
        raise MappingError(f"{what} {path}: missing column(s) {', '.join(missing)} "
                           f"(the header is {', '.join(header)}; {fmt} needs {', '.join(needed)})")
    if fmt == "moodle" and not any(c in header for c in MOODLE_IDS):
        raise MappingError(f"{what} {path}: Moodle needs a column identifying the user: one of {', '.join(MOODLE_IDS)}")
    key = "canvas_id" if fmt == "canvas" else next(c for c in MOODLE_IDS if c in header)
    seen_ours: dict[str, int] = {}
    seen_lms: dict[str, int] = {}
    out = []
    for line, row in rows:
        if not any(row.values()):
            continue  # a blank line
        for column in needed + (key,):
            if not row.get(column):
                raise MappingError(f"{what} {path}, line {line}: empty {column}")
        ours, theirs = row["student_id"], row[key]
        if ours in seen_ours:
            raise MappingError(f"{what} {path}, line {line}: student_id {ours!r} again "
                               f"(first on line {seen_ours[ours]})")
        if theirs in seen_lms:
            raise MappingError(f"{what} {path}, line {line}: {key} {theirs!r} again (first on line {seen_lms[theirs]})")
        if fmt == "canvas" and not theirs.isdigit():
            raise MappingError(f"{what} {path}, line {line}: canvas_id {theirs!r} is not a number "
                               "(Canvas's user id, the ID column of its gradebook export)")
        seen_ours[ours], seen_lms[theirs] = line, line
        out.append({c: row.get(c, "") for c in ("student_id",) + REQUIRED[fmt] + OPTIONAL[fmt]} | {"lms_key": key})
    if not out:
        raise MappingError(f"{what} {path}: no students in it")
    return out


def columns(path: str | None, assignments: list[str]) -> dict[str, str]:
    """assignment -> the LMS's column name: from the file (columns assignment, column) where given, the
    assignment's own name otherwise."""
    names = {a: a for a in assignments}
    if not path:
        return names
    what = "column mapping"
    header, rows = read_rows(path, what)
    if "assignment" not in header or "column" not in header:
        raise MappingError(f"{what} {path}: needs the columns assignment and column "
                           f"(the header is {', '.join(header)})")
    for line, row in rows:
        if not any(row.values()):
            continue
        if row["assignment"] not in names:
            raise MappingError(f"{what} {path}, line {line}: no assignment {row['assignment']!r} in the gradebook "
                               f"(it has {', '.join(assignments)})")
        if not row["column"]:
            raise MappingError(f"{what} {path}, line {line}: empty column name for {row['assignment']}")
        names[row["assignment"]] = row["column"]
    taken = [n for n in names.values() if list(names.values()).count(n) > 1]
    if taken:
        raise MappingError(f"{what} {path}: two assignments map to the column {taken[0]!r}")
    return names
