"""gptref.distributed on 2 gloo processes (CPU, a rendez-vous file): DataParallel in every mode, with
accumulation, and ShardedAdamW, against torch's DistributedDataParallel and one process on the whole batch.

One launch of the two ranks runs every variant (starting a process group costs about a second); the
parent compares. Rank 1 starts from different parameters, so a missing broadcast shows.
"""

from __future__ import annotations

import datetime
import os
import traceback

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from two_ranks import run_ranks

from gptref.distributed import DataParallel, ShardedAdamW

WORLD = 2
STEPS = 3
ACCUM = 2  # micro-steps per step in the accumulation variants
LR, BETAS, DECAY = 0.05, (0.9, 0.95), 0.1
VARIANTS = [("naive", 0.0, 1), ("flat", 0.0, 1), ("bucketed", 0.0005, 1), ("bucketed", 0.004, 1),
            ("bucketed", 100.0, 1), ("bucketed", 0.002, ACCUM), ("flat", 0.0, ACCUM), ("naive", 0.0, ACCUM)]


def make_model(seed: int) -> nn.Module:
    """A small float64 network with parameters of several sizes, so small buckets hold 1-3 of them."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 24), nn.Tanh(), nn.Linear(24, 5)).double()


def make_data() -> tuple[torch.Tensor, torch.Tensor]:
    """STEPS global batches of 8 * ACCUM rows: (STEPS, rows, 10) inputs and (STEPS, rows) labels."""
    g = torch.Generator().manual_seed(5)
    rows = 4 * WORLD * ACCUM
    x = torch.randn(STEPS, rows, 10, generator=g, dtype=torch.float64)  # (STEPS, rows, 10)
    return x, torch.randint(0, 5, (STEPS, rows), generator=g)


def adamw(params):
    return torch.optim.AdamW(params, lr=LR, betas=BETAS, weight_decay=DECAY)


def my_rows(batch: torch.Tensor, rank: int, accum: int) -> list[torch.Tensor]:
    """This rank's micro-batches of a global batch: the batch is (accum, world, rows) laid out."""
    per = batch.shape[0] // (accum * WORLD)
    return [batch[(m * WORLD + rank) * per:(m * WORLD + rank + 1) * per] for m in range(accum)]


def train_ranked(model, optimizer, rank, accum, finish=None, no_sync=None):
    """STEPS steps on this rank's rows; the loss of each micro-batch is scaled by 1/accum."""
    x_all, y_all = make_data()
    for step in range(STEPS):
        micro = list(zip(my_rows(x_all[step], rank, accum), my_rows(y_all[step], rank, accum)))
        optimizer.zero_grad(set_to_none=True)
        for m, (x, y) in enumerate(micro):
            quiet = no_sync() if (no_sync and m < accum - 1) else _nothing()
            with quiet:
                (F.cross_entropy(model(x), y) / accum).backward()
        if finish:
            finish()
        optimizer.step()


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def worker(rank: int, folder: str) -> None:
    """One rank: every variant, torch's DDP and ZeRO-1; rank 0 saves the parameters, each rank its state bytes."""
    torch.set_num_threads(1)
    try:
        dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=WORLD,
                                timeout=datetime.timedelta(seconds=60))
        results = {}
        for mode, bucket_mb, accum in VARIANTS:
            wrapped = DataParallel(make_model(seed=rank), mode=mode, bucket_mb=bucket_mb)  # rank 1 differs: broadcast
            train_ranked(wrapped, adamw(wrapped.parameters()), rank, accum, wrapped.finish_gradient_synchronization,
                         wrapped.no_sync)
            results[(mode, bucket_mb, accum)] = wrapped.module.state_dict()
        for accum in (1, ACCUM):
            reference = nn.parallel.DistributedDataParallel(make_model(seed=rank))
            train_ranked(reference, adamw(reference.parameters()), rank, accum, None, reference.no_sync)
            results[("torch", accum)] = reference.module.state_dict()
        wrapped = DataParallel(make_model(seed=rank), mode="bucketed", bucket_mb=0.002)
        groups = [{"params": [p for p in wrapped.parameters() if p.dim() == 2]},
                  {"params": [p for p in wrapped.parameters() if p.dim() < 2], "weight_decay": 0.0}]
        sharded = ShardedAdamW(groups, lr=LR, betas=BETAS, weight_decay=DECAY)
        train_ranked(wrapped, sharded, rank, 1, wrapped.finish_gradient_synchronization, wrapped.no_sync)
        results["zero"] = wrapped.module.state_dict()
        results["zero_bytes"] = sharded.state_bytes()
        torch.save(results, f"{folder}/rank{rank}.pt")
        dist.barrier()
        dist.destroy_process_group()
    except BaseException:
        with open(f"{folder}/error{rank}.txt", "w") as f:
            f.write(traceback.format_exc())
        os._exit(1)
    os._exit(0)


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Run the two ranks once: {rank: results}."""
    folder = str(tmp_path_factory.mktemp("ddp"))
    return run_ranks(worker, folder, WORLD, seconds=120)


def whole_batch(decay_groups: bool = False) -> dict[str, torch.Tensor]:
    """One process, plain AdamW, the whole global batch each step: what every data-parallel run must equal."""
    model = make_model(seed=0)
    params = list(model.parameters())
    if decay_groups:
        params = [{"params": [p for p in params if p.dim() == 2]},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    optimizer = adamw(params)
    x_all, y_all = make_data()
    for step in range(STEPS):
        optimizer.zero_grad()
        F.cross_entropy(model(x_all[step]), y_all[step]).backward()
        optimizer.step()
    return model.state_dict()


def max_difference(a: dict, b: dict) -> float:
    return max((a[k] - b[k]).abs().max().item() for k in b)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v[0]}-{v[1]}MB-accum{v[2]}")
def test_data_parallel_equals_whole_batch_and_torch_ddp(ranks, variant):
    got = ranks[0][variant]
    assert max_difference(got, whole_batch()) < 1e-12, f"{variant}: not one AdamW step on the whole batch"
    assert max_difference(got, ranks[0][("torch", variant[2])]) < 1e-12, f"{variant}: differs from torch's DDP"
    assert max_difference(got, ranks[1][variant]) == 0.0, f"{variant}: the ranks' copies differ"


def test_torch_ddp_equals_whole_batch(ranks):
    """The reference itself: torch's DDP on two half-batches is one step on the whole batch."""
    assert max_difference(ranks[0][("torch", 1)], whole_batch()) < 1e-12


def test_sharded_adamw_equals_plain_adamw(ranks):
    got = ranks[0]["zero"]
    assert max_difference(got, whole_batch(decay_groups=True)) < 1e-12, "ZeRO-1 differs from AdamW on the whole batch"
    assert max_difference(got, ranks[1]["zero"]) == 0.0, "the ranks' copies differ: broadcast every updated shard"


def test_sharded_state_is_split(ranks):
    """Each rank holds about half of AdamW's moments (2 float64 values per parameter element in all)."""
    n_elements = sum(p.numel() for p in make_model(0).parameters())
    per_rank = [ranks[r]["zero_bytes"] for r in range(WORLD)]
    moments = [b - b % 8 for b in per_rank]
    assert sum(per_rank) >= 2 * 8 * n_elements, per_rank
    assert max(per_rank) < 0.6 * 2 * 8 * n_elements + 1024, f"state per rank {per_rank}: not sharded ({moments})"
