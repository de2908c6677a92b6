"""The yardstick for grading's cost: the same notebooks run plainly (nbclient, no sandbox, no verdict).

`plain_run(jobs, workers)` executes each (notebook, support folder) top to bottom in a fresh folder
with `workers` processes, one kernel per notebook as nbclient starts it, and returns wall seconds and
the CPU seconds (user + sys) of the whole process tree, read from the `cpu_seconds` clock it is given
(the benchmark's cgroup meter; by default `RUSAGE_CHILDREN`, which counts the pool and its kernels
once they are reaped).
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import shutil
import tempfile
import time


def children_cpu_seconds() -> float:
    """User + sys CPU seconds of every reaped descendant of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_one(job: tuple[str, str]) -> tuple[str, float, int]:
    """Execute one notebook in a temp copy of its support folder; (notebook, seconds, cells with an error)."""
    import nbformat
    from nbclient import NotebookClient

    notebook, support = job
    folder = tempfile.mkdtemp(prefix="plain-run-")
    try:
        for name in os.listdir(support) if support and os.path.isdir(support) else []:
            src = os.path.join(support, name)
            if not name.endswith(".ipynb") and not name.startswith("."):
                (shutil.copytree if os.path.isdir(src) else shutil.copy2)(src, os.path.join(folder, name))
        nb = nbformat.read(notebook, as_version=4)
        start = time.monotonic()
        NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": folder}}).execute()
        errors = sum(1 for cell in nb.cells
                     if any(out.get("output_type") == "error" for out in cell.get("outputs", [])))
        return notebook, time.monotonic() - start, errors
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def plain_run(jobs: list[tuple[str, str]], workers: int, cpu_seconds=children_cpu_seconds) -> dict:
    """Run every job with `workers` processes; wall and core seconds of the whole run."""
    cpu_before, wall_before = cpu_seconds(), time.monotonic()
    env_threads = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MPLBACKEND")}
    os.environ.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"})  # as the sandbox sets
    try:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            done = pool.map(run_one, jobs, chunksize=1)
            pool.close()
            pool.join()
    finally:
        for key, value in env_threads.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    return {"workers": workers, "wall_s": round(time.monotonic() - wall_before, 1),
            "cpu_s": round(cpu_seconds() - cpu_before, 1),
            "notebooks": [{"notebook": os.path.basename(nb), "seconds": round(sec, 1), "error_cells": errors}
                          for nb, sec, errors in done]}
