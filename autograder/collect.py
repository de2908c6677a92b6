"""`collect SRC_DIR`: student notebooks into autograder/work/submitted/<student>/<assignment>/.

Accepted layouts (student ids: letters, digits, '_', '-', '.'; not starting with '.'):
  SRC/alice.zip                  any path inside whose file name is an expected notebook
  SRC/alice/02_attention.ipynb   (also nested deeper, e.g. alice/02_attention/02_attention.ipynb)
  SRC/alice__02_attention.ipynb
Only the expected notebooks (the released <id>.ipynb names) are taken, byte for byte; nothing
else is copied beside them, and every other file is reported. Zip members are read in memory
(never extracted), with a size cap.
"""

from __future__ import annotations

import json
import os
import zipfile

from .course import STUDENT_ID, Course

MAX_NOTEBOOK = 50 * 1024 * 1024


def _store(course: Course, student: str, assignment: str, nb: str, data: bytes, taken: dict) -> None:
    key = (student, assignment, nb)
    if key in taken:
        taken[key].append("duplicate ignored")
        return
    d = os.path.join(course.submitted, student, assignment)
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, f"{nb}.ipynb")
    with open(p + ".tmp", "wb") as f:
        f.write(data)
    os.replace(p + ".tmp", p)
    taken[key] = []


def collect(course: Course, src: str, out=print) -> int:
    expected = course.all_notebooks()  # notebook id -> assignment
    if not expected:
        out(f"error: no released notebooks under {course.release}; run `python -m autograder release` first")
        return 2
    taken: dict = {}
    ignored: list[str] = []
    renamed: dict = {}

    def take(student: str, name: str, data_fn, where: str) -> None:
        base = os.path.basename(name)
        nb = base[:-6] if base.endswith(".ipynb") else None
        if nb in expected:
            try:
                data = data_fn()
            except ValueError as e:
                ignored.append(f"{where}: {e}")
                return
            _store(course, student, expected[nb], nb, data, taken)
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

                        def read(info=info, z=z):
                            if info.file_size > MAX_NOTEBOOK:
                                raise ValueError(f"larger than {MAX_NOTEBOOK >> 20} MB")
                            data = z.open(info).read(MAX_NOTEBOOK + 1)
                            if len(data) > MAX_NOTEBOOK:
                                raise ValueError(f"larger than {MAX_NOTEBOOK >> 20} MB")
                            return data

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

                    def read(p=p):
                        if os.path.getsize(p) > MAX_NOTEBOOK:
                            raise ValueError(f"larger than {MAX_NOTEBOOK >> 20} MB")
                        return open(p, "rb").read()

                    take(entry, f, read, rel)
        elif "__" in entry and entry.endswith(".ipynb"):
            student, _, name = entry.partition("__")
            if not STUDENT_ID.match(student):
                ignored.append(f"{entry} (not a valid student id)")
                continue
            take(student, name, lambda p=path: open(p, "rb").read(), entry)
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
    for (student, a, _nb) in taken:
        if (student, a) not in renamed:
            notes.get(student, {}).pop(a, None)
    os.makedirs(course.work, exist_ok=True)
    with open(notes_path + ".tmp", "w") as f:
        json.dump(notes, f, indent=1)
    os.replace(notes_path + ".tmp", notes_path)
    students = sorted({s for s, _, _ in taken})
    out(f"collected {len(taken)} notebooks from {len(students)} students into {course.submitted}")
    for (s, a, nb), notes in sorted(taken.items()):
        if notes:
            out(f"  {s}/{a}/{nb}.ipynb: {', '.join(notes)}")
    if ignored:
        out(f"not taken ({len(ignored)}):")
        for i in ignored:
            out(f"  {i}")
    return 0
