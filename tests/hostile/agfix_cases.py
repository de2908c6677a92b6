"""Hostile (and honest) submissions for the fixture course, each with its expected outcome.

`write_all(release_nb, src_dir, root)` writes every case into a collect-able folder. Each Case
says what the autograder must give: `score` (auto score of the 3 autograded points, the
written answer is manual), or `max_score` (at most that), `flag` (a substring that must be in
the report's reasons for that student) and `state`.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import nbformat

GOOD_SUM = "def scaled_sum(x, y, alpha):\n    return x + alpha * y\n"
BAD_SUM = "def scaled_sum(x, y, alpha):\n    return x + y\n"
GOOD_SOFTMAX = ("def softmax_rows(x):\n    e = np.exp(x - x.max(axis=-1, keepdims=True))\n"
                "    return e / e.sum(axis=-1, keepdims=True)\n")


@dataclass
class Case:
    student: str
    what: str
    score: float | None = None  # exact autograded score expected
    max_score: float | None = None  # at most this
    flag: str | None = None  # substring of a reason in the report
    state: str | None = None


def notebook(release_nb, sum_src=GOOD_SUM, softmax_src=GOOD_SOFTMAX, extra_after_sum: str | None = None,
             extra_first: str | None = None):
    nb = copy.deepcopy(release_nb)
    out = []
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid == "scaled_sum":
            cell.source = sum_src
        elif gid == "softmax_rows":
            cell.source = softmax_src
        elif gid == "why_max":
            cell.source = "To keep exp from overflowing."
        out.append(cell)
        if gid == "scaled_sum" and extra_first:
            out.insert(len(out) - 1, nbformat.v4.new_code_cell(extra_first))
        if gid == "test_scaled_sum" and extra_after_sum:
            out.append(nbformat.v4.new_code_cell(extra_after_sum))
    nb.cells = out
    return nb


def cases(release_nb, root: str) -> dict[str, tuple[Case, object]]:
    """student -> (Case, notebook or raw bytes)."""
    R = release_nb
    c: dict[str, tuple[Case, object]] = {}

    def add(case: Case, nb) -> None:
        c[case.student] = (case, nb)

    add(Case("honest", "correct work", score=3), notebook(R))
    add(Case("honest_warns", "correct code that warns (stderr)", score=3), notebook(R, sum_src=(
        "import warnings\ndef scaled_sum(x, y, alpha):\n    warnings.warn('this is fine')\n"
        "    import sys; print('note', file=sys.stderr)\n    return x + alpha * y\n")))
    add(Case("wrong_sum", "honest but wrong scaled_sum", score=1), notebook(R, sum_src=BAD_SUM))
    add(Case("infinite_loop", "infinite loop in a cell", score=3, flag=None),
        notebook(R, extra_after_sum="while True:\n    pass"))
    # a kernel that dies (or must be killed) never runs the later visible tests: their cells score 0 even where
    # the trusted check passes, since a verdict no longer restores a visible test that did not pass (issue 18.2)
    add(Case("sigint_ignored", "loop that ignores SIGINT", score=2, flag="kernel"), notebook(R, extra_after_sum=(
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass")))
    add(Case("long_sleep", "sleeps for a day", score=3), notebook(R, extra_after_sum="import time\ntime.sleep(86400)"))
    add(Case("sys_exit", "sys.exit()", score=3), notebook(R, extra_after_sum="import sys\nsys.exit(3)"))
    add(Case("os_exit", "os._exit() kills the kernel", score=2, flag="kernel died"),
        notebook(R, extra_after_sum="import os\nos._exit(0)"))
    add(Case("segfault", "segfault through ctypes", score=2, flag="kernel died"),
        notebook(R, extra_after_sum="import ctypes\nctypes.string_at(0)"))
    add(Case("memory_bomb", "allocates until it fails", score=3), notebook(R, extra_after_sum=(
        "blocks = []\ntry:\n    while True:\n        blocks.append(bytearray(256 * 2**20))\n"
        "except MemoryError:\n    print('refused after', len(blocks))\ndel blocks")))
    add(Case("fork_storm", "forks until refused (bounded)", score=3), notebook(R, extra_after_sum=(
        "import os, time\nkids = []\ntry:\n    for _ in range(300):\n        pid = os.fork()\n        if pid == 0:\n"
        "            time.sleep(120)\n            os._exit(0)\n        kids.append(pid)\nexcept OSError as e:\n"
        "    print('fork refused after', len(kids), e)")))
    add(Case("output_flood", "prints 200 MB", score=3), notebook(R, extra_after_sum=(
        "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(200):\n    sys.stdout.write(chunk)")))
    add(Case("setsid_child", "starts a detached setsid child", score=3), notebook(R, extra_after_sum=(
        "import subprocess\nsubprocess.Popen(['setsid', 'sleep', '4242'], start_new_session=True)")))

    nb = notebook(R)
    nb.cells = [x for x in nb.cells if x.metadata.get("nbgrader", {}).get("grade_id") != "test_softmax_rows"]
    add(Case("deleted_test_cell", "deleted a graded test cell", score=3, flag="deleted"), nb)

    nb = notebook(R, sum_src=BAD_SUM)
    for x in nb.cells:
        if x.metadata.get("nbgrader", {}).get("grade_id") == "test_scaled_sum":
            x.source = "pass"
    add(Case("edited_test", "wrong code, test cell replaced by pass", score=1), nb)

    nb = notebook(R, sum_src=BAD_SUM)
    for x in nb.cells:
        m = x.metadata.get("nbgrader", {})
        if m.get("grade_id") == "test_scaled_sum":
            x.source = "pass"
            m["locked"], m["grade"], m["points"], m["checksum"] = False, False, 0, "0" * 32
    add(Case("edited_metadata", "wrong code, test cell and its metadata+checksum edited", score=1, flag="metadata"), nb)

    add(Case("invalid_json", "not JSON", score=0, flag="invalid JSON"), b'{"cells": [ this is not json')
    other = notebook(R)
    for x in other.cells:
        m = x.metadata.get("nbgrader")
        if m:
            m["grade_id"] = "other_" + m["grade_id"]
    add(Case("other_assignment", "another assignment's notebook", score=0, flag="another assignment"), other)
    nb = notebook(R)
    nb.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    add(Case("wrong_kernel", "kernelspec of R", score=3), nb)
    raw = nbformat.writes(notebook(R)).encode()
    raw = raw.replace(b"To keep exp", b"To keep \xff\xfe exp", 1)
    add(Case("non_utf8", "invalid UTF-8 bytes", score=0, flag="UTF-8"), raw)

    sol = os.path.join(root, "solutions", "toy", "toy.ipynb")
    add(Case("reads_solutions", "tries to read solutions/ and the hidden tests", max_score=1, flag="reads paths"),
        notebook(R, sum_src=(
        "def scaled_sum(x, y, alpha):\n    try:\n        open(%r).read()\n        return x + alpha * y\n"
        "    except OSError:\n        return x - y\n" % sol)))
    db = os.path.join(root, "work", "gradebook.db")
    add(Case("writes_gradebook", "tries to write every score into the gradebook", score=1, flag="reads paths"),
        notebook(R, sum_src=BAD_SUM, extra_after_sum=(
        "import sqlite3\ntry:\n    con = sqlite3.connect(%r)\n    con.execute('update grade set auto_score = 100')\n"
        "    con.commit()\n    print('WROTE')\nexcept Exception as e:\n    print('no gradebook:', e)\n" % db)))
    add(Case("patched_allclose", "monkeypatched np.allclose with wrong code", score=1, flag="trusted check"),
        notebook(R, sum_src="np.allclose = lambda *a, **k: True\n" + BAD_SUM))
    add(Case("always_equal", "returns an always-equal ndarray subclass", score=1, flag="trusted check"),
        notebook(R, sum_src=(
        "class AE(np.ndarray):\n    def __eq__(self, other):\n        return True\n"
        "    def __bool__(self):\n        return True\n"
        "np.allclose = lambda a, b, *r, **k: True if isinstance(a, AE) else np.isclose(a, b, *r, **k).all()\n"
        "def scaled_sum(x, y, alpha):\n    return np.zeros(3).view(AE)\n")))
    add(Case("assert_stripper", "IPython AST transformer that deletes asserts", score=1, flag="trusted check"),
        notebook(R, sum_src=(
        "import ast\nclass _Strip(ast.NodeTransformer):\n    def visit_Assert(self, node):\n        return ast.Pass()\n"
        "get_ipython().ast_transformers.append(_Strip())\n" + BAD_SUM)))
    add(Case("frame_reader", "returns the test's `expected` read from the caller's frame", score=1,
             flag="trusted check"),
        notebook(R, sum_src=(
        "import sys, gc\ndef scaled_sum(x, y, alpha):\n    f = sys._getframe(1)\n    if 'expected' in f.f_locals:\n"
        "        return f.f_locals['expected']\n    if alpha == 2.0:\n        return x + 2.0 * y\n    return x\n")))
    add(Case("calls_reference", "calls the trusted reference (a forbidden call: the exercise scores 0)", score=1,
             flag="must not call"),
        notebook(R, sum_src=(
        "from agfix_ref import scaled_sum_ref\n"
        "def scaled_sum(x, y, alpha):\n    return scaled_sum_ref(x, y, alpha)\n")))
    add(Case("nbgrader_env", "branches on NBGRADER_EXECUTION", score=1, flag="NBGRADER"), notebook(R, sum_src=(
        "import os\ndef scaled_sum(x, y, alpha):\n    if os.environ.get('NBGRADER_EXECUTION'):\n"
        "        return x + alpha * y\n    if alpha == 2.0:\n        return x + 2.0 * y\n    return x\n")))
    add(Case("unseeded", "uses unseeded randomness", max_score=3), notebook(R, sum_src=(
        "def scaled_sum(x, y, alpha):\n    import random\n    return x + alpha * y if random.random() < 0.5 else x\n")))
    return c


def write_all(release_nb, src_dir: str, root: str) -> dict[str, Case]:
    """Write every case into `src_dir` in the layouts collect accepts; returns student -> Case."""
    os.makedirs(src_dir, exist_ok=True)
    out = {}
    layouts = ["folder", "flat", "zip"]
    for i, (student, (case, nb)) in enumerate(sorted(cases(release_nb, root).items())):
        data = nb if isinstance(nb, bytes) else nbformat.writes(nb).encode()
        layout = layouts[i % 3]
        if layout == "folder":
            os.makedirs(os.path.join(src_dir, student), exist_ok=True)
            with open(os.path.join(src_dir, student, "toy.ipynb"), "wb") as f:
                f.write(data)
        elif layout == "flat":
            with open(os.path.join(src_dir, f"{student}__toy.ipynb"), "wb") as f:
                f.write(data)
        else:
            import zipfile

            with zipfile.ZipFile(os.path.join(src_dir, f"{student}.zip"), "w") as z:
                z.writestr(f"{student}-submission/toy/toy.ipynb", data)
                z.writestr(f"{student}-submission/toy/notes.txt", "hello")
        out[student] = case
    # a shadowing module shipped beside the notebook: must not be collected
    d = os.path.join(src_dir, "shadower")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "toy.ipynb"), "wb") as f:
        f.write(nbformat.writes(notebook(release_nb)).encode())
    for mod in ("numpy.py", "sitecustomize.py"):
        with open(os.path.join(d, mod), "w") as f:
            f.write("raise SystemExit('shadowed!')\n")
    out["shadower"] = Case("shadower", "ships numpy.py and sitecustomize.py beside the notebook", score=3)
    # a renamed notebook
    d = os.path.join(src_dir, "renamer")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "toy_final.ipynb"), "wb") as f:
        f.write(nbformat.writes(notebook(release_nb)).encode())
    out["renamer"] = Case("renamer", "renamed the notebook", score=0, flag="renamed")
    return out
