"""`check NOTEBOOK` (student side): run the notebook top to bottom and its visible tests.

Exits 1 when a test cell fails (or the notebook cannot run), 0 when all pass. It runs on the
student's own machine with the student's own code, so there is no sandbox here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import nbformat

from .inside.cells import is_test_cell

INSIDE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inside")


def check(path: str, cell_timeout: int = 300, out=print) -> int:
    try:
        nbformat.read(path, as_version=4)
    except Exception as e:  # noqa: BLE001
        out(f"{path}: cannot read the notebook: {e}")
        return 2
    with tempfile.TemporaryDirectory(prefix="ag-check-") as tmp:
        job = {"notebook": os.path.abspath(path), "workdir": os.path.dirname(os.path.abspath(path)),
               "ipc_dir": os.path.join(tmp, "ipc"), "cell_timeout": cell_timeout, "seed": 0,
               "max_output_chars": 200_000, "out": os.path.join(tmp, "out.json")}
        with open(os.path.join(tmp, "job.json"), "w") as f:
            json.dump(job, f)
        r = subprocess.run([sys.executable, os.path.join(INSIDE, "run_notebook.py"), os.path.join(tmp, "job.json")],
                           capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists(job["out"]):
            out(f"{path}: the notebook could not be run:\n{r.stderr[-2000:]}")
            return 2
        answer = json.load(open(job["out"]))
    nb = nbformat.reads(answer["notebook"], as_version=4)
    failed, passed = [], []
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if not is_test_cell(cell):
            continue
        name = meta.get("grade_id", f"cell {i}")
        errors = [o for o in cell.outputs if o.output_type == "error"]
        (failed if errors else passed).append(name)
        if errors:
            e = errors[-1]
            out(f"FAIL {name}: {e.get('ename')}: {str(e.get('evalue'))[:300]}")
        else:
            out(f"ok   {name}")
    for i, cell in enumerate(nb.cells):  # errors outside the test cells are worth knowing too
        if cell.cell_type == "code" and not cell.metadata.get("nbgrader", {}).get("grade"):
            for o in cell.outputs:
                if o.output_type == "error":
                    out(f"note: cell {i} raised {o.get('ename')}: {str(o.get('evalue'))[:200]}")
    out(f"{len(passed)} of {len(passed) + len(failed)} visible test cells pass"
        + (" (hidden tests are run when your work is graded)" if not failed else ""))
    return 1 if failed else 0
