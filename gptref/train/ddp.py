"""Distributed data parallel set-up from torchrun's environment (gloo on CPU, nccl on CUDA)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device: str) -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); otherwise a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world)
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
    return info


def cleanup(info: DistInfo) -> None:
    """Leave the process group once every rank is done and this rank's gloo threads are idle.

    A gloo worker thread destroys each finished work after `wait()` has returned, and needs the GIL for that when
    the work holds tensors with Python objects. When the last reference to the group goes (with torch DDP: the
    reducer, freed as train() returns), its destructor joins those threads while holding the GIL: a thread still
    destroying a work then waits forever (seen in tests/test_train_zero1.py about one run in three, py-spy:
    ~ProcessGroupGloo -> thread::join against AsyncGatherWork::~AsyncGatherWork -> decref). The barrier and a
    moment without the GIL let them finish first."""
    if info.enabled and dist.is_initialized():
        dist.barrier()
        time.sleep(0.2)  # releases the GIL to the worker threads
        dist.destroy_process_group()
