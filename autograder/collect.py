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


def _mb(size: int) -> str:
    """A byte count in whole megabytes, for messages."""
    return f"{size / 2**20:.0f} MB"


def read_capped(path: str, notes: list) -> bytes:
    """The notebook's bytes: as they are under the cap, else without outputs (streamed), else Refused."""
    size = os.path.getsize(path)
    if size <= MAX_NOTEBOOK:
        with open(path, "rb") as notebook_file:
            return notebook_file.read(MAX_NOTEBOOK + 1)
    if size > MAX_RAW:
        raise Refused(f"{_mb(size)}, over the {_mb(MAX_RAW)} collect reads at all")
    try:
        data = strip_file(path, MAX_NOTEBOOK)
    except TooBig:
        raise Refused(f"{_mb(size)}, and still over {_mb(MAX_NOTEBOOK)} without outputs (too much source)") from None
    except ValueError as error:
        raise Refused(f"{_mb(size)}, over {_mb(MAX_NOTEBOOK)} and not notebook JSON ({error})") from None
    notes.append(f"outputs stripped at collect ({_mb(size)} -> {_mb(len(data))}; grading regenerates them)")
    return data


def read_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, notes: list) -> bytes:
    """read_capped for a zip member, copied in chunks to a private temp file (never past MAX_RAW)."""
    if info.file_size <= MAX_NOTEBOOK:
        data = archive.open(info).read(MAX_NOTEBOOK + 1)
        if len(data) <= MAX_NOTEBOOK:
            return data
    if info.file_size > MAX_RAW:
        raise Refused(f"{_mb(info.file_size)}, over the {_mb(MAX_RAW)} collect reads at all")
    fd, tmp = tempfile.mkstemp(suffix=".ipynb")
    try:
        with os.fdopen(fd, "wb") as out, archive.open(info) as member:
            total = 0
            while chunk := member.read(1 << 20):
                total += len(chunk)
                if total > MAX_RAW:
                    raise Refused(f"over the {_mb(MAX_RAW)} collect reads at all")
                out.write(chunk)
        return read_capped(tmp, notes)
    finally:
        os.unlink(tmp)


def _store(course: Course, student: str, assignment: str, notebook: str, data: bytes, taken: dict,
           notes=()) -> None:
    """Write one notebook into submitted/; a second copy of the same notebook is noted and ignored."""
    key = (student, assignment, notebook)
    if key in taken:
        taken[key].append("duplicate ignored")
        return
    folder = os.path.join(course.submitted, student, assignment)
    write_atomic(os.path.join(folder, f"{notebook}.ipynb"), data, "wb")
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
        notebook = base[:-6] if base.endswith(".ipynb") else None
        if notebook in self.expected:
            notes: list[str] = []
            try:
                data = data_fn(notes)
            except Refused as error:
                self.refused.setdefault((student, self.expected[notebook]), []).append(
                    f"{notebook}.ipynb ({where}): {error}")
                return
            except (OSError, ValueError) as error:
                self.ignored.append(f"{where}: {error}")
                return
            _store(self.course, student, self.expected[notebook], notebook, data, self.taken, notes)
        else:
            self.ignored.append(where)
            stem = base[:-6] if base.endswith(".ipynb") else ""
            for nb_id, assignment in self.expected.items():
                if stem and nb_id in stem:
                    self.renamed.setdefault((student, assignment), []).append(
                        f"found {base!r} instead of {nb_id}.ipynb (renamed?)")

    def from_zip(self, entry: str, path: str) -> None:
        """SRC/<student>.zip: its members, read in place."""
        student = entry[:-4]
        if not STUDENT_ID.match(student):
            self.ignored.append(f"{entry} (not a valid student id)")
            return
        try:
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if info.is_dir() or "__MACOSX" in info.filename:
                        continue

                    def read(notes, info=info, archive=archive):
                        return read_zip_member(archive, info, notes)

                    self.take(student, info.filename, read, f"{entry}:{info.filename}")
        except zipfile.BadZipFile:
            self.ignored.append(f"{entry} (not a readable zip)")

    def from_folder(self, src: str, entry: str, path: str) -> None:
        """SRC/<student>/...: every file below, symlinks and checkpoints not followed."""
        if not STUDENT_ID.match(entry):
            self.ignored.append(f"{entry}/ (not a valid student id)")
            return
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(name for name in dirnames if not os.path.islink(os.path.join(dirpath, name)))
            for filename in sorted(filenames):
                file_path = os.path.join(dirpath, filename)
                rel = os.path.relpath(file_path, src)
                if os.path.islink(file_path) or ".ipynb_checkpoints" in file_path:
                    self.ignored.append(rel)
                    continue

                def read(notes, file_path=file_path):
                    return read_capped(file_path, notes)

                self.take(entry, filename, read, rel)

    def from_flat(self, entry: str, path: str) -> None:
        """SRC/<student>__<notebook>.ipynb."""
        student, _, name = entry.partition("__")
        if not STUDENT_ID.match(student):
            self.ignored.append(f"{entry} (not a valid student id)")
            return
        self.take(student, name, lambda notes, file_path=path: read_capped(file_path, notes), entry)

    def record(self) -> None:
        """collect_notes.json (why a submission is graded as missing) and refused.json, for grading."""
        course = self.course
        notes_path = os.path.join(course.work, "collect_notes.json")
        try:
            notes = json.load(open(notes_path))
        except (OSError, ValueError):
            notes = {}
        for (student, assignment), messages in self.renamed.items():
            # graded as missing, with the reason
            os.makedirs(os.path.join(course.submitted, student, assignment), exist_ok=True)
            notes.setdefault(student, {})[assignment] = messages
        for (student, assignment), reasons in self.refused.items():
            os.makedirs(os.path.join(course.submitted, student, assignment), exist_ok=True)
            notes.setdefault(student, {})[assignment] = ([f"refused at collect: {reason}" for reason in reasons]
                                                         + self.renamed.get((student, assignment), []))
        for (student, assignment, _notebook) in self.taken:
            if (student, assignment) not in self.renamed and (student, assignment) not in self.refused:
                notes.get(student, {}).pop(assignment, None)
        write_json(notes_path, notes)
        refusals.update(course, self.refused, {(student, assignment) for student, assignment, _ in self.taken})

    def summary(self, out) -> None:
        """Print what was taken (with notes), refused and not taken."""
        students = sorted({student for student, _, _ in self.taken})
        out(f"collected {len(self.taken)} notebooks from {len(students)} students into {self.course.submitted}")
        for (student, assignment, notebook), notes in sorted(self.taken.items()):
            if notes:
                out(f"  {student}/{assignment}/{notebook}.ipynb: {', '.join(notes)}")
        if self.refused:
            out(f"REFUSED ({len(self.refused)}; in grades.csv and the report as state 'refused'):")
            for (student, assignment), reasons in sorted(self.refused.items()):
                out(f"  {student}/{assignment}: {'; '.join(reasons)}")
        if self.ignored:
            out(f"not taken ({len(self.ignored)}):")
            for ignored in self.ignored:
                out(f"  {ignored}")


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
