"""The trusted verdict's sandbox runs while the notebook's does, in a lane of its own (its own uid as root)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UID_BASE = int(os.environ.get("REAL_COURSE_UID_BASE", "62000")) + 50  # a corner of the pool no other test uses


def test_each_lane_of_a_worker_leases_its_own_uid(tmp_path):
    """Two sandboxes of one worker running at once never share a uid (so killing one's uid spares the other)."""
    code = ("from autograder import uidpool\n"
            f"args = ({str(tmp_path)!r}, {UID_BASE}, 4)\n"
            "print(uidpool.lease(*args), uidpool.lease(*args, lane=1),\n"
            "      uidpool.lease(*args), uidpool.lease(*args, 1))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lane0, lane1, lane0_again, lane1_again = map(int, done.stdout.split())
    assert lane0 != lane1
    assert (lane0, lane1) == (lane0_again, lane1_again)  # a lane keeps its lease for the process's life
    assert {lane0, lane1} <= set(range(UID_BASE, UID_BASE + 4))


class FakeSandbox:
    """Stands for autograder.sandbox.Sandbox: remembers its lane."""

    def __init__(self, settings, slot=0, unsafe=False, lane=0):
        self.lane = lane


def _notebook():
    cell = nbformat.v4.new_code_cell("def f(x):\n    return x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="from the submission\n")]
    return nbformat.v4.new_notebook(cells=[cell])


@pytest.mark.parametrize("concurrent", [True, False])
def test_the_verdict_starts_before_the_notebook_run_ends_only_when_concurrent(monkeypatch, concurrent):
    from autograder import execute
    from autograder.settings import Autograder

    started, seen = threading.Event(), {}

    def fake_verdict(nb, exercises, seeds, sandbox, settings):
        seen.update(lane=sandbox.lane, sources=[cell.source for cell in nb.cells],
                    outputs=[cell.outputs for cell in nb.cells], same=nb)
        started.set()
        return {"f": {"status": "pass"}}

    monkeypatch.setattr(execute, "trusted_verdict", fake_verdict)
    monkeypatch.setattr(execute, "Sandbox", FakeSandbox)
    settings = Autograder(concurrent_verdict=concurrent)
    step = execute.SandboxedExecute(slot=3)
    nb = _notebook()
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = step._start_verdict(pool, nb, ["an exercise"], {"__run__": 1}, FakeSandbox(settings), settings)
        # what the notebook run does meanwhile: it waits for the verdict (which only a concurrent one can answer)
        overlapped = started.wait(timeout=60 if concurrent else 0.5)
        nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="written by the run\n")]
        assert pending.result() == {"f": {"status": "pass"}}
    assert overlapped is concurrent
    assert seen["lane"] == (1 if concurrent else 0)  # at once: another lane; one after the other: the run's sandbox
    assert seen["sources"] == ["def f(x):\n    return x"] and seen["outputs"] == [[]]  # the trusted sources only
    assert seen["same"] is not nb


def test_no_verdict_is_started_without_exercises(monkeypatch):
    from autograder import execute
    from autograder.settings import Autograder

    monkeypatch.setattr(execute, "trusted_verdict", lambda *args: pytest.fail("a verdict without exercises"))
    settings = Autograder()
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert execute.SandboxedExecute()._start_verdict(pool, _notebook(), [], {}, FakeSandbox(settings),
                                                         settings) is None
