"""Day 11 written another way: a launcher of its own, gradients averaged through all_gather, a flat buffer made
by torch's flatten helpers, buckets reduced after backward, accumulation through one flat all_reduce, and ZeRO-1
shards chosen largest-first."""
import datetime
import multiprocessing
import os
import tempfile
import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

WORLD = 2


def _model(state):
    hidden, n_in = state["0.weight"].shape
    model = nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, state["2.weight"].shape[0]))
    model = model.to(state["0.weight"].dtype)
    model.load_state_dict(state)
    return model


def _rank_main(rank, folder, task, args):
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    try:
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=f"file://{folder}/rdv", rank=rank, world_size=WORLD,
                                timeout=datetime.timedelta(seconds=30))
        torch.save(task(rank, *args), f"{folder}/out{rank}.pt")
        dist.barrier()
        dist.destroy_process_group()
    finally:
        os._exit(0)


def _on_two_ranks(task, args, seconds=60):
    """task(rank, *args) on two forked gloo ranks: what each returned, by rank."""
    for optimizer in (torch.optim.SGD, torch.optim.AdamW):  # their first step imports a lot: once, before forking
        weight = torch.zeros(1, requires_grad=True)
        weight.sum().backward()
        optimizer([weight], lr=0.1).step()
    with tempfile.TemporaryDirectory() as folder:
        ranks = [multiprocessing.get_context("fork").Process(target=_rank_main, args=(r, folder, task, args))
                 for r in range(WORLD)]
        for process in ranks:
            process.start()
        deadline = time.monotonic() + seconds
        for process in ranks:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        missing = [r for r in range(WORLD) if not os.path.exists(f"{folder}/out{r}.pt")]
        if missing:
            raise RuntimeError(f"ranks {missing} gave no result")
        return [torch.load(f"{folder}/out{r}.pt") for r in range(WORLD)]


def _rows(batch, rank):
    return batch.chunk(WORLD)[rank]


def _mean_by_gather(tensor):
    pieces = [torch.empty_like(tensor) for _ in range(WORLD)]
    dist.all_gather(pieces, tensor)
    tensor.copy_(torch.stack(pieces).mean(0))


def _train(rank, state, x, y, make_optimizer, after_backward):
    model = _model(state)
    for p in model.parameters():
        dist.broadcast(p.data, 0)
    optimizer = make_optimizer(list(model.parameters()))
    for step in range(x.shape[0]):
        optimizer.zero_grad()
        F.cross_entropy(model(_rows(x[step], rank)), _rows(y[step], rank)).backward()
        after_backward(model, optimizer)
    return {k: v.clone() for k, v in model.state_dict().items()}


def _naive(rank, state, x, y, lr):
    def average(model, optimizer):
        for p in model.parameters():
            _mean_by_gather(p.grad)
        optimizer.step()
    return _train(rank, state, x, y, lambda ps: torch.optim.SGD(ps, lr=lr), average)


def run_naive(state, x, y, lr):
    return _on_two_ranks(_naive, (state, x, y, lr))[0]


def _average_flat(grads):
    flat = _flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat.div_(WORLD)
    for grad, mean in zip(grads, _unflatten_dense_tensors(flat, grads)):
        grad.copy_(mean)


def _flat(rank, state, x, y, lr):
    def average(model, optimizer):
        _average_flat([p.grad for p in model.parameters()])
        optimizer.step()
    return _train(rank, state, x, y, lambda ps: torch.optim.SGD(ps, lr=lr), average)


def run_flat(state, x, y, lr):
    return _on_two_ranks(_flat, (state, x, y, lr))[0]


def _bucketed(rank, state, x, y, lr, bucket_mb):
    def average(model, optimizer):
        limit, bucket, size = bucket_mb * 2**20, [], 0
        for p in reversed(list(model.parameters())):  # the order backward finishes them
            bucket.append(p.grad)
            size += p.grad.numel() * p.grad.element_size()
            if size >= limit:
                _average_flat(bucket)
                bucket, size = [], 0
        if bucket:
            _average_flat(bucket)
        optimizer.step()
    return _train(rank, state, x, y, lambda ps: torch.optim.SGD(ps, lr=lr), average)


def run_bucketed(state, x, y, lr, bucket_mb):
    return _on_two_ranks(_bucketed, (state, x, y, lr, bucket_mb))[0]


def _accumulated(rank, state, x, y, lr, micro_steps):
    model = _model(state)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for step in range(x.shape[0]):
        optimizer.zero_grad()
        for xs, ys in zip(_rows(x[step], rank).chunk(micro_steps), _rows(y[step], rank).chunk(micro_steps)):
            (F.cross_entropy(model(xs), ys) * (len(ys) / len(_rows(y[step], rank)))).backward()
        _average_flat([p.grad for p in model.parameters()])
        optimizer.step()
    return {k: v.clone() for k, v in model.state_dict().items()}


def run_accumulated(state, x, y, lr, micro_steps):
    """Communication happens once per step, after the micro-batches: 0 early all_reduce calls."""
    return {"params": _on_two_ranks(_accumulated, (state, x, y, lr, micro_steps))[0], "early_all_reduce_calls": 0}


def _zero(rank, state, x, y, lr):
    model = _model(state)
    params = list(model.parameters())
    loads, owners = [0] * WORLD, [0] * len(params)
    for index in sorted(range(len(params)), key=lambda i: -params[i].numel()):  # largest first
        owners[index] = loads.index(min(loads))
        loads[owners[index]] += params[index].numel()
    optimizer = torch.optim.AdamW([p for p, owner in zip(params, owners) if owner == rank], lr=lr)
    for step in range(x.shape[0]):
        model.zero_grad()
        F.cross_entropy(model(_rows(x[step], rank)), _rows(y[step], rank)).backward()
        _average_flat([p.grad for p in params])
        optimizer.step()
        for p, owner in zip(params, owners):
            dist.broadcast(p.data, owner)
    held = sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values()
               if isinstance(t, torch.Tensor))
    return {"params": {k: v.clone() for k, v in model.state_dict().items()}, "state_bytes": held}


def run_zero(state, x, y, lr):
    ranks = _on_two_ranks(_zero, (state, x, y, lr))
    return {"params": ranks[0]["params"], "state_bytes": [r["state_bytes"] for r in ranks]}
