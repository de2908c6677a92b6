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

from . import refused as refusals
from .atomic import write_atomic, write_json
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


class _Haul:
    """What one collect found: notebooks taken, files not taken, likely renames and refusals."""

    def __init__(self, course: Course, expected: dict[str, str]):
        self.course, self.expected = course, expected  # notebook id -> assignment
        self.taken: dict = {}  # (student, assignment, notebook) -> notes
        self.ignored: list[str] = []
        self.renamed: dict = {}  # (student, assignment) -> messages
        self.refused: dict = {}  # (student, assignment) -> reasons

    def take(self, student: str, name: str, data_fn, where: str) -> None:
        """Store `name` if it is an expected notebook (data_fn(notes) reads it), else note why not."""
        base = os.path.basename(name)
        nb = base[:-6] if base.endswith(".ipynb") else None
        if nb in self.expected:
            notes: list[str] = []
            try:
                data = data_fn(notes)
            except Refused as e:
                self.refused.setdefault((student, self.expected[nb]), []).append(f"{nb}.ipynb ({where}): {e}")
                return
            except (OSError, ValueError) as e:
                self.ignored.append(f"{where}: {e}")
                return
            _store(self.course, student, self.expected[nb], nb, data, self.taken, notes)
        else:
            self.ignored.append(where)
            stem = base[:-6] if base.endswith(".ipynb") else ""
            for nb_id, a in self.expected.items():
                if stem and nb_id in stem:
                    self.renamed.setdefault((student, a), []).append(f"found {base!r} instead of {nb_id}.ipynb (renamed?)")

    def from_zip(self, entry: str, path: str) -> None:
        """SRC/<student>.zip: its members, read in place."""
        student = entry[:-4]
        if not STUDENT_ID.match(student):
            self.ignored.append(f"{entry} (not a valid student id)")
            return
        try:
            with zipfile.ZipFile(path) as z:
                for info in z.infolist():
                    if info.is_dir() or "__MACOSX" in info.filename:
                        continue

                    def read(notes, info=info, z=z):
                        return read_zip_member(z, info, notes)

                    self.take(student, info.filename, read, f"{entry}:{info.filename}")
        except zipfile.BadZipFile:
            self.ignored.append(f"{entry} (not a readable zip)")

    def from_folder(self, src: str, entry: str, path: str) -> None:
        """SRC/<student>/...: every file below, symlinks and checkpoints not followed."""
        if not STUDENT_ID.match(entry):
            self.ignored.append(f"{entry}/ (not a valid student id)")
            return
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
            for f in sorted(filenames):
                p = os.path.join(dirpath, f)
                rel = os.path.relpath(p, src)
                if os.path.islink(p) or ".ipynb_checkpoints" in p:
                    self.ignored.append(rel)
                    continue

                def read(notes, p=p):
                    return read_capped(p, notes)

                self.take(entry, f, read, rel)

    def from_flat(self, entry: str, path: str) -> None:
        """SRC/<student>__<notebook>.ipynb."""
        student, _, name = entry.partition("__")
        if not STUDENT_ID.match(student):
            self.ignored.append(f"{entry} (not a valid student id)")
            return
        self.take(student, name, lambda notes, p=path: read_capped(p, notes), entry)

    def record(self) -> None:
        """collect_notes.json (why a submission is graded as missing) and refused.json, for grading."""
        course = self.course
        notes_path = os.path.join(course.work, "collect_notes.json")
        try:
            notes = json.load(open(notes_path))
        except (OSError, ValueError):
            notes = {}
        for (student, a), msgs in self.renamed.items():
            os.makedirs(os.path.join(course.submitted, student, a), exist_ok=True)  # graded as missing, with the reason
            notes.setdefault(student, {})[a] = msgs
        for (student, a), reasons in self.refused.items():
            os.makedirs(os.path.join(course.submitted, student, a), exist_ok=True)  # graded as missing, with the reason
            notes.setdefault(student, {})[a] = [f"refused at collect: {r}" for r in reasons] + self.renamed.get((student, a), [])
        for (student, a, _nb) in self.taken:
            if (student, a) not in self.renamed and (student, a) not in self.refused:
                notes.get(student, {}).pop(a, None)
        write_json(notes_path, notes)
        refusals.update(course, self.refused, {(s, a) for s, a, _ in self.taken})

    def summary(self, out) -> None:
        students = sorted({s for s, _, _ in self.taken})
        out(f"collected {len(self.taken)} notebooks from {len(students)} students into {self.course.submitted}")
        for (s, a, nb), notes in sorted(self.taken.items()):
            if notes:
                out(f"  {s}/{a}/{nb}.ipynb: {', '.join(notes)}")
        if self.refused:
            out(f"REFUSED ({len(self.refused)}; in grades.csv and the report as state 'refused'):")
            for (s, a), reasons in sorted(self.refused.items()):
                out(f"  {s}/{a}: {'; '.join(reasons)}")
        if self.ignored:
            out(f"not taken ({len(self.ignored)}):")
            for i in self.ignored:
                out(f"  {i}")


def collect(course: Course, src: str, out=print) -> int:
    """Take the expected notebooks from SRC (the layouts above), record refusals and notes, report."""
    expected = course.all_notebooks()  # notebook id -> assignment
    if not expected:
        out(f"error: no released notebooks under {course.release}; run `python -m autograder release` first")
        return 2
    haul = _Haul(course, expected)
    for entry in sorted(os.listdir(src)):
        path = os.path.join(src, entry)
        if os.path.islink(path):
            haul.ignored.append(f"{entry} (symlink)")
        elif entry.endswith(".zip") and os.path.isfile(path):
            haul.from_zip(entry, path)
        elif os.path.isdir(path):
            haul.from_folder(src, entry, path)
        elif "__" in entry and entry.endswith(".ipynb"):
            haul.from_flat(entry, path)
        else:
            haul.ignored.append(entry)
    haul.record()
    haul.summary(out)
    return 0
