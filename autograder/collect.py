"""`collect SRC_DIR`: student notebooks into autograder/work/submitted/<student>/<assignment>/.

Accepted layouts (student ids: letters, digits, '_', '-', '.'; not starting with '.'):
  SRC/alice.zip                  any path inside whose file name is an expected notebook
  SRC/alice/02_attention.ipynb   (also nested deeper, e.g. alice/02_attention/02_attention.ipynb)
  SRC/alice__02_attention.ipynb
Only the expected notebooks (the released <id>.ipynb names) are taken, byte for byte; nothing
else is copied beside them, and every other file is reported. Zip members are never extracted
beside the notebooks.

Size: a notebook over MAX_NOTEBOOK has its code cells' outputs stripped (grading regenerates them),
streamed (autograder.slim), so an honest notebook with big images is taken; one still over the cap
without outputs, over MAX_RAW, or not readable is refused: recorded with the reason in
work/refused.json and collect_notes.json, so grades.csv and the report show it (score 0).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile

from .atomic import write_atomic, write_json
from . import refused as refusals
from .course import STUDENT_ID, Course
from .slim import TooBig, strip_file

MAX_NOTEBOOK = 50 * 1024 * 1024  # the cap, after outputs are stripped
MAX_RAW = 1024 * 1024 * 1024  # never looked at beyond this


class Refused(ValueError):
    """A notebook that cannot be taken, with the reason."""


def _mb(n: int) -> str:
    return f"{n / 2**20:.0f} MB"


def read_capped(path: str, notes: list) -> bytes:
    """The notebook's bytes: as they are under the cap, else without outputs (streamed), else Refused."""
    size = os.path.getsize(path)
    if size <= MAX_NOTEBOOK:
        with open(path, "rb") as f:
            return f.read(MAX_NOTEBOOK + 1)
    if size > MAX_RAW:
        raise Refused(f"{_mb(size)}, over the {_mb(MAX_RAW)} collect reads at all")
    try:
        data = strip_file(path, MAX_NOTEBOOK)
    except TooBig:
        raise Refused(f"{_mb(size)}, and still over {_mb(MAX_NOTEBOOK)} without outputs (too much source)") from None
    except ValueError as e:
        raise Refused(f"{_mb(size)}, over {_mb(MAX_NOTEBOOK)} and not notebook JSON ({e})") from None
    notes.append(f"outputs stripped at collect ({_mb(size)} -> {_mb(len(data))}; grading regenerates them)")
    return data


def read_zip_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, notes: list) -> bytes:
    """read_capped for a zip member, copied in chunks to a private temp file (never past MAX_RAW)."""
    if info.file_size <= MAX_NOTEBOOK:
        data = z.open(info).read(MAX_NOTEBOOK + 1)
        if len(data) <= MAX_NOTEBOOK:
            return data
    if info.file_size > MAX_RAW:
        raise Refused(f"{_mb(info.file_size)}, over the {_mb(MAX_RAW)} collect reads at all")
    fd, tmp = tempfile.mkstemp(suffix=".ipynb")
    try:
        with os.fdopen(fd, "wb") as out, z.open(info) as src:
            total = 0
            while chunk := src.read(1 << 20):
                total += len(chunk)
                if total > MAX_RAW:
                    raise Refused(f"over the {_mb(MAX_RAW)} collect reads at all")
                out.write(chunk)
        return read_capped(tmp, notes)
    finally:
        os.unlink(tmp)


def _store(course: Course, student: str, assignment: str, nb: str, data: bytes, taken: dict, notes=()) -> None:
    key = (student, assignment, nb)
    if key in taken:
        taken[key].append("duplicate ignored")
        return
    d = os.path.join(course.submitted, student, assignment)
    write_atomic(os.path.join(d, f"{nb}.ipynb"), data, "wb")
    taken[key] = list(notes)


def collect(course: Course, src: str, out=print) -> int:
    expected = course.all_notebooks()  # notebook id -> assignment
    if not expected:
        out(f"error: no released notebooks under {course.release}; run `python -m autograder release` first")
        return 2
    taken: dict = {}
    ignored: list[str] = []
    renamed: dict = {}
    refused: dict = {}  # (student, assignment) -> reasons

    def take(student: str, name: str, data_fn, where: str) -> None:
        base = os.path.basename(name)
        nb = base[:-6] if base.endswith(".ipynb") else None
        if nb in expected:
            notes: list[str] = []
            try:
                data = data_fn(notes)
            except Refused as e:
                refused.setdefault((student, expected[nb]), []).append(f"{nb}.ipynb ({where}): {e}")
                return
            except (OSError, ValueError) as e:
                ignored.append(f"{where}: {e}")
                return
            _store(course, student, expected[nb], nb, data, taken, notes)
        else:
            ignored.append(where)
            stem = base[:-6] if base.endswith(".ipynb") else ""
            for nb_id, a in expected.items():
                if stem and nb_id in stem:
                    renamed.setdefault((student, a), []).append(f"found {base!r} instead of {nb_id}.ipynb (renamed?)")

    for entry in sorted(os.listdir(src)):
        path = os.path.join(src, entry)
        if os.path.islink(path):
            ignored.append(f"{entry} (symlink)")
        elif entry.endswith(".zip") and os.path.isfile(path):
            student = entry[:-4]
            if not STUDENT_ID.match(student):
                ignored.append(f"{entry} (not a valid student id)")
                continue
            try:
                with zipfile.ZipFile(path) as z:
                    for info in z.infolist():
                        if info.is_dir() or "__MACOSX" in info.filename:
                            continue

                        def read(notes, info=info, z=z):
                            return read_zip_member(z, info, notes)

                        take(student, info.filename, read, f"{entry}:{info.filename}")
            except zipfile.BadZipFile:
                ignored.append(f"{entry} (not a readable zip)")
        elif os.path.isdir(path):
            if not STUDENT_ID.match(entry):
                ignored.append(f"{entry}/ (not a valid student id)")
                continue
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
                for f in sorted(filenames):
                    p = os.path.join(dirpath, f)
                    rel = os.path.relpath(p, src)
                    if os.path.islink(p) or ".ipynb_checkpoints" in p:
                        ignored.append(rel)
                        continue

                    def read(notes, p=p):
                        return read_capped(p, notes)

                    take(entry, f, read, rel)
        elif "__" in entry and entry.endswith(".ipynb"):
            student, _, name = entry.partition("__")
            if not STUDENT_ID.match(student):
                ignored.append(f"{entry} (not a valid student id)")
                continue
            take(student, name, lambda notes, p=path: read_capped(p, notes), entry)
        else:
            ignored.append(entry)
    notes_path = os.path.join(course.work, "collect_notes.json")
    try:
        notes = json.load(open(notes_path))
    except (OSError, ValueError):
        notes = {}
    for (student, a), msgs in renamed.items():
        os.makedirs(os.path.join(course.submitted, student, a), exist_ok=True)  # graded as missing, with the reason
        notes.setdefault(student, {})[a] = msgs
    for (student, a), reasons in refused.items():
        os.makedirs(os.path.join(course.submitted, student, a), exist_ok=True)  # graded as missing, with the reason
        notes.setdefault(student, {})[a] = [f"refused at collect: {r}" for r in reasons] + renamed.get((student, a), [])
    for (student, a, _nb) in taken:
        if (student, a) not in renamed and (student, a) not in refused:
            notes.get(student, {}).pop(a, None)
    write_json(notes_path, notes)
    refusals.update(course, refused, {(s, a) for s, a, _ in taken})
    students = sorted({s for s, _, _ in taken})
    out(f"collected {len(taken)} notebooks from {len(students)} students into {course.submitted}")
    for (s, a, nb), notes in sorted(taken.items()):
        if notes:
            out(f"  {s}/{a}/{nb}.ipynb: {', '.join(notes)}")
    if refused:
        out(f"REFUSED ({len(refused)}; in grades.csv and the report as state 'refused'):")
        for (s, a), reasons in sorted(refused.items()):
            out(f"  {s}/{a}: {'; '.join(reasons)}")
    if ignored:
        out(f"not taken ({len(ignored)}):")
        for i in ignored:
            out(f"  {i}")
    return 0
