"""The notebook runner counts every error the kernel reports, even one whose output never arrived.

nbgrader scores a test cell by its outputs: no error output, full points. Student code can silence IPython's
tracebacks (`get_ipython().showtraceback = ...`), and after an interrupted cell ipykernel can lose the iopub
messages of the next cells; either way the kernel's execute_reply still says "error". The runner
(autograder/inside/run_notebook.py) adds the error output itself then, so such a cell fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat

RUNNER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "autograder", "inside",
                      "run_notebook.py")
SILENCER = ("ip = get_ipython()\n"
            "ip._showtraceback = lambda *args, **kwargs: None\n"
            "ip.showtraceback = lambda *args, **kwargs: None\n")


def _run(tmp_path, sources: list[str]) -> tuple[list, dict]:
    """The runner as `./run check` starts it (a fresh interpreter, the result in a file)."""
    work = tmp_path / "work"
    work.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    nbformat.write(nb, str(work / "nb.ipynb"))
    job = {"notebook": str(work / "nb.ipynb"), "workdir": str(work), "ipc_dir": str(tmp_path / "ipc"),
           "cell_timeout": 60, "seed": 0, "out": str(tmp_path / "out.json")}
    (tmp_path / "job.json").write_text(json.dumps(job))
    done = subprocess.run([sys.executable, RUNNER, str(tmp_path / "job.json")], capture_output=True, text=True,
                          timeout=300, cwd=str(work))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    answer = json.loads((tmp_path / "out.json").read_text())
    return nbformat.reads(answer["notebook"], as_version=4).cells, answer["info"]


def _errors(cell) -> list[str]:
    return [out["ename"] for out in cell.outputs if out["output_type"] == "error"]


def test_a_failing_cell_with_silenced_tracebacks_still_shows_its_error(tmp_path):
    cells, info = _run(tmp_path, [SILENCER, "assert 1 == 2, 'a failing test'", "print('fine')", "x = 1 / 0"])
    assert _errors(cells[1]) == ["AssertionError"], cells[1].outputs
    assert _errors(cells[2]) == [] and "fine" in cells[2].outputs[0]["text"]
    assert _errors(cells[3]) == ["ZeroDivisionError"], cells[3].outputs
    assert [event["cell"] for event in info["events"] if event["event"] == "unseen-error"] == [1, 3], info


def test_an_error_with_its_output_is_recorded_once(tmp_path):
    cells, info = _run(tmp_path, ["assert 1 == 2, 'a failing test'"])
    assert _errors(cells[0]) == ["AssertionError"] and not info["events"], (cells[0].outputs, info)
