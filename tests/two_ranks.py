"""Run a test's gloo ranks as fresh processes and collect what each saved: the one launcher of the multi-process tests.

Spawned, not forked: a child forked from a pytest worker that already runs threads (xdist's, torch's) can inherit a
lock one of them held and wait on it forever (seen in a full suite run: one rank asleep on a futex). The worker
function is module-level in its test file, so a spawned child can import it.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any, Callable

import torch


def run_ranks(worker: Callable[[int, str], None], folder: str, world_size: int, seconds: float) -> dict[int, Any]:
    """worker(rank, folder) on `world_size` processes; {rank: torch.load(folder/rank<r>.pt)}. A rank writes its
    traceback to folder/error<r>.txt when it fails; the first such error, or a rank that never finished, fails."""
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=worker, args=(rank, folder)) for rank in range(world_size)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(seconds)
        if process.is_alive():
            process.kill()
            process.join()
    errors = [open(f"{folder}/error{rank}.txt").read() for rank in range(world_size)
              if os.path.exists(f"{folder}/error{rank}.txt")]
    assert not errors, errors[0]
    unfinished = [rank for rank in range(world_size) if not os.path.exists(f"{folder}/rank{rank}.pt")]
    assert not unfinished, (f"ranks {unfinished} did not finish within {seconds:.0f} s "
                            "(a collective one rank never joined?)")
    return {rank: torch.load(f"{folder}/rank{rank}.pt") for rank in range(world_size)}
