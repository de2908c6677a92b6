"""Execute one notebook cell by cell with nbclient, inside the sandbox; send it back signed.

Usage: python run_notebook.py JOB.json  (JOB: notebook, workdir, ipc_dir, cell_timeout, seed,
max_output_chars). The result channel (fd 3, key on fd 4, see channel.py) is moved to private
non-inheritable fds before anything else; the kernel is a child of this process that inherits
neither and cannot read our /proc entries (we are non-dumpable). Per cell: a timeout that
interrupts the kernel and, if the kernel ignores the interrupt, kills it; a dead kernel marks
every cell that did not run with an error, so unexecuted tests never count as passed.
Test cells run without history, and `hidden.py` wipes what they left in the kernel.
Without a channel (the student-side `check`), the result goes to the path in JOB["out"].
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import channel  # noqa: E402

CHANNEL = channel.take()  # first thing: fd 3/4 leave their well-known numbers before any kernel exists
from startup import skip_slow_optional_imports  # noqa: E402

skip_slow_optional_imports()  # before nbclient imports nbformat: 2 s less per run
from cells import is_test_cell  # noqa: E402
from forked_kernel import install as fork_kernels  # noqa: E402
from hidden import AFTER_TEST, BEFORE_TEST  # noqa: E402
from seeding import kernel_code  # noqa: E402


def _no_dump() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0
    except Exception:
        pass


def _error(ename: str, evalue: str):
    import nbformat

    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _make_client(nb, job):
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    cap = int(job.get("max_output_chars", 200_000))

    class CappedClient(NotebookClient):
        """Drops outputs past `cap` characters per cell (a flood cannot fill memory or disk)."""

        used: dict = {}
        truncated: set = set()

        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            size = len(content.get("text", "")) if isinstance(content.get("text"), str) else 0
            for v in (content.get("data") or {}).values():
                size += len(v) if isinstance(v, str) else 200
            size += sum(len(x) for x in content.get("traceback", []) if isinstance(x, str))
            total = self.used.get(cell_index, 0) + size
            self.used[cell_index] = total
            if total > cap:
                self.truncated.add(cell_index)
                return None
            return super().output(outs, msg, display_id, cell_index)

    os.makedirs(job["ipc_dir"], exist_ok=True)
    km = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(job["ipc_dir"], "k"))
    client = CappedClient(
        nb,
        km=km,
        timeout=int(job["cell_timeout"]),
        allow_errors=True,
        interrupt_on_timeout=False,
        startup_timeout=120,
        iopub_timeout=5,
        record_timing=False,
        shutdown_kernel="immediate",  # every output is in once the last cell is idle: no graceful wait for its exit
        extra_arguments=["--HistoryManager.enabled=False", "--HistoryManager.hist_file=:memory:"],
        resources={"metadata": {"path": job["workdir"]}},
    )
    client.used, client.truncated, client.replies = {}, set(), {}
    client.on_cell_executed = lambda cell, cell_index, execute_reply: client.replies.__setitem__(cell_index,
                                                                                              execute_reply)
    return client


def _reply_says_more(cell, reply: dict | None) -> str | None:
    """A cell whose execute_reply reports an error (or an abort) but whose outputs hold no error: the error
    output never arrived (student code that silences tracebacks, or iopub messages lost after an interrupt).
    Returns the error's name to record, else None: a test cell must not pass on a failure nobody saw."""
    content = (reply or {}).get("content", {})
    if content.get("status") not in ("error", "aborted"):
        return None
    if any(out.get("output_type") == "error" for out in cell.outputs):
        return None
    return content.get("ename") or ("Aborted" if content.get("status") == "aborted" else "Error")


async def _run_extra(client, source: str) -> None:
    """Run code that is not a notebook cell, outside the history (nbclient stores a cell back
    at its index, so the helper cell is appended for the call and removed after)."""
    import nbformat

    cells = client.nb.cells
    cells.append(nbformat.v4.new_code_cell(source))
    try:
        await client.async_execute_cell(cells[-1], len(cells) - 1, store_history=False)
    finally:
        cells.pop()


async def _alive(client, timeout: float = 10) -> bool:
    """After an interrupt: does the kernel answer a trivial request?"""
    old = client.timeout, client.iopub_timeout
    client.timeout, client.iopub_timeout = timeout, 1
    try:
        await _run_extra(client, "pass")
        return True
    except Exception:
        return False
    finally:
        client.timeout, client.iopub_timeout = old


async def _execute(nb, job) -> dict:
    import nbformat
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    client = _make_client(nb, job)
    events: list[dict] = []
    dead_reason = None
    t0 = time.monotonic()
    async with client.async_setup_kernel():
        try:
            await _run_extra(client, kernel_code(int(job["seed"])))
        except Exception as e:  # the seed preamble never fails on a healthy kernel
            events.append({"cell": None, "event": "seed-failed", "detail": repr(e)[:200]})
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if dead_reason:
                cell.outputs = [_error("KernelDied", f"not run: {dead_reason}")]
                continue
            cell.outputs = []
            test = is_test_cell(cell)
            try:
                if test:
                    await _run_extra(client, BEFORE_TEST)
                await client.async_execute_cell(cell, i, store_history=not test)
                unseen = _reply_says_more(cell, client.replies.pop(i, None))
                if unseen:
                    cell.outputs.append(_error(unseen, "the kernel reported this error for the cell, but no "
                                                       "error output arrived (tracebacks silenced or lost): "
                                                       "counted as failed"))
                    events.append({"cell": i, "event": "unseen-error"})
            except CellTimeoutError:
                cell.outputs.append(_error("CellTimeoutError",
                                           f"cell ran longer than {job['cell_timeout']} s and was interrupted"))
                events.append({"cell": i, "event": "timeout"})
                try:
                    await client.km.interrupt_kernel()
                except Exception:
                    pass
                if not await _alive(client):
                    dead_reason = f"the kernel ignored the interrupt after a timeout in cell {i} and was stopped"
                    events.append({"cell": i, "event": "kernel-killed"})
                    try:
                        await client.km.shutdown_kernel(now=True)
                    except Exception:
                        pass
            except DeadKernelError:
                cell.outputs.append(_error("KernelDied", "the kernel died while running this cell"))
                dead_reason = f"the kernel died in cell {i}"
                events.append({"cell": i, "event": "kernel-died"})
            except Exception as e:
                cell.outputs.append(_error("ExecutionError", repr(e)[:500]))
                events.append({"cell": i, "event": "error", "detail": repr(e)[:200]})
            if test and not dead_reason:
                try:
                    await _run_extra(client, AFTER_TEST)
                except Exception as e:
                    events.append({"cell": i, "event": "error", "detail": "cleanup after the test: " + repr(e)[:200]})
            if i in client.truncated:
                cell.outputs.append(nbformat.v4.new_output("stream", name="stdout",
                                                           text="\n[output truncated by the autograder]\n"))
                events.append({"cell": i, "event": "output-truncated"})
    return {"events": events, "dead": dead_reason, "seconds": round(time.monotonic() - t0, 2)}


def main() -> int:
    _no_dump()
    job = json.load(open(sys.argv[1]))
    import nbformat

    nb = nbformat.read(job["notebook"], as_version=4)
    if CHANNEL is not None:  # grading: the file holds the hidden tests; the kernel must not find it on disk
        os.unlink(job["notebook"])
    os.chdir(job["workdir"])
    forked = fork_kernels()  # a runner forked from the zygote holds ipykernel and torch: the kernel is forked too
    info = asyncio.run(_execute(nb, job))
    info["kernel"] = "forked from the runner" if forked else "a new interpreter"
    payload = json.dumps({"notebook": nbformat.writes(nb), "info": info})
    if job.get("out"):  # the student-side check
        with open(job["out"], "w") as f:
            f.write(payload)
    elif CHANNEL is not None:
        CHANNEL.send(payload.encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
