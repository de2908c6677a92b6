"""Day 11, distributed training: naive, flat and bucketed DDP, gradient accumulation and ZeRO-1, each on two
gloo processes the notebook starts.

References: one process on the WHOLE batch (SGD for the DDP exercises and accumulation, torch's AdamW for
ZeRO-1). Every rank's run must end with those parameters; ZeRO-1 must also hold about half of AdamW's state
per rank. Cases are one toy problem per seed (a launch of two processes costs about a second); its shapes
keep a balanced shard possible and put the last layer's weight and bias into one bucket.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gptref.distributed import DataParallel, ShardedAdamW
from gptref.grading.data_parallel import mlp_from_state
from gptref.grading.spec import Exercise

DAY = "11_distributed"


def _whole_batch(state, x, y, optimizer):
    model = mlp_from_state(state)
    opt = optimizer(model.parameters())
    for step in range(x.shape[0]):
        opt.zero_grad()
        F.cross_entropy(model(x[step]), y[step]).backward()
        opt.step()
    params = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return params, opt


def reference_sgd(state, x, y, lr, **_):
    """SGD steps of one process on the whole batches x[s], y[s]: what every rank must end with."""
    return _whole_batch(state, x, y, lambda ps: torch.optim.SGD(ps, lr=lr))[0]


def reference_accumulated(state, x, y, lr, micro_steps):
    """The whole-batch SGD parameters, and no all_reduce before a step's last micro-batch."""
    return {"params": reference_sgd(state, x, y, lr), "early_all_reduce_calls": 0}


def _state_bytes(opt) -> list[int]:
    """The bytes of optimizer state each parameter holds, in parameter order."""
    return [sum(t.numel() * t.element_size() for t in opt.state[p].values() if isinstance(t, torch.Tensor))
            for group in opt.param_groups for p in group["params"]]


def _full_state_bytes(state, x, y, lr) -> int:
    """The bytes of state one unsharded AdamW holds after the steps."""
    return sum(_state_bytes(_whole_batch(state, x, y, lambda ps: torch.optim.AdamW(ps, lr=lr))[1]))


def reference_zero(state, x, y, lr):
    """The whole-batch AdamW parameters, and the state bytes per rank when each parameter goes, in order, to the
    rank with the fewest elements so far (2 ranks)."""
    params, opt = _whole_batch(state, x, y, lambda ps: torch.optim.AdamW(ps, lr=lr))
    elements, per_rank = [0, 0], [0, 0]
    for value, nbytes in zip(state.values(), _state_bytes(opt)):
        owner = elements.index(min(elements))
        elements[owner] += value.numel()
        per_rank[owner] += nbytes
    return {"params": params, "state_bytes": per_rank}


def _toy(seed: int, offset: int, rows: int = 8) -> dict:
    """Float64 weights, 2 steps of `rows` rows; n_in is n_out + 1 or + 2, so the first layer and the rest balance."""
    g = torch.Generator().manual_seed(1000 * offset + seed)
    n_out = int(torch.randint(2, 6, (1,), generator=g))
    n_in = n_out + 1 + int(torch.randint(0, 2, (1,), generator=g))
    hidden = int(torch.randint(8, 21, (1,), generator=g))
    shapes = {"0.weight": (hidden, n_in), "0.bias": (hidden,), "2.weight": (n_out, hidden), "2.bias": (n_out,)}
    state = {k: torch.randn(*s, generator=g, dtype=torch.float64) / s[-1] ** 0.5 for k, s in shapes.items()}
    x = torch.randn(2, rows, n_in, generator=g, dtype=torch.float64)
    return {"state": state, "x": x, "y": torch.randint(0, n_out, (2, rows), generator=g), "lr": 0.5}


def _naive_cases(seed):
    return [_toy(seed, 1), _toy(seed, 11)]


def _flat_cases(seed):
    return [_toy(seed, 2), _toy(seed, 12)]


def _bucketed_cases(seed):
    """A bucket that just holds the last layer's weight and bias (launched only when both are ready), then one
    bucket for everything."""
    case = _toy(seed, 3)
    last = (case["state"]["2.weight"].numel() + case["state"]["2.bias"].numel()) * 8
    return [dict(case, bucket_mb=1.01 * last / 2**20), dict(_toy(seed, 13), bucket_mb=100.0)]


def _accumulated_cases(seed):
    """12 rows per rank: micro-batches of 6 and 3 rows, never N rows, so a loss summed over a micro-batch is not
    mistaken for a loss left undivided by N."""
    return [dict(_toy(seed, 4, rows=24), micro_steps=2), dict(_toy(seed, 14, rows=24), micro_steps=4)]


def _zero_cases(seed):
    return [dict(_toy(seed, 5), lr=0.05), dict(_toy(seed, 15), lr=0.05)]


def _params(value):
    return value["params"] if isinstance(value, dict) and "params" in value else value


def compare_params(got, expected, case) -> str | None:
    """Rank 0's parameters against one process on the whole batch (float64: up to 1e-9)."""
    got, expected = _params(got), _params(expected)
    if not isinstance(got, dict) or set(got) != set(expected):
        return f"return rank 0's state_dict (keys {sorted(expected)}), got {type(got).__name__}"
    for key, want in expected.items():
        if not isinstance(got[key], torch.Tensor) or got[key].shape != want.shape:
            return f"{key} should be a tensor of shape {tuple(want.shape)}"
    err = max((got[k].to(v.dtype) - v).abs().max().item() for k, v in expected.items())
    if err <= 1e-9:
        return None
    return (f"after {case['x'].shape[0]} steps rank 0's parameters differ from one process on the whole batch "
            f"by up to {err:.3g}")


def _no_early_communication(got, case) -> str | None:
    early = got.get("early_all_reduce_calls") if isinstance(got, dict) else None
    if early:
        return (f"{early} all_reduce calls came before a step's last micro-batch: communicate once per step, after "
                "the last micro-batch, not after each one")
    return None


def _one_optimizer_step_per_call(got, case) -> str | None:
    steps = got.get("optimizer_steps") if isinstance(got, dict) else None
    if steps is not None and steps != case["x"].shape[0]:
        return (f"optimizer.step() ran {steps} times in {case['x'].shape[0]} calls of accumulated_step: the "
                "micro-batches' gradients add up in p.grad, and ONE optimizer.step() follows the last micro-batch")
    return None


def _sharded_memory(got, case) -> str | None:
    if not isinstance(got, dict) or not isinstance(got.get("state_bytes"), (list, tuple)):
        return "run_zero returns {'params': ..., 'state_bytes': [bytes on rank 0, bytes on rank 1]}"
    full = _full_state_bytes(case["state"], case["x"], case["y"], case["lr"])
    mine = list(got["state_bytes"])
    if sum(mine) < full:
        return (f"the ranks hold {sum(mine)} bytes of AdamW state together, one AdamW {full}: every parameter "
                "needs an owner")
    if max(mine) >= full:
        return (f"state per rank {mine} bytes, a whole AdamW holds {full}: build the local optimizer over this "
                "rank's own parameters only")
    if max(mine) > 0.7 * full:
        return (f"state per rank {mine} bytes of {full}: the shards are unbalanced; give each parameter to the "
                "rank with the fewest ELEMENTS so far")
    return None


_DDP_FORBIDDEN = (torch.nn.parallel.DistributedDataParallel.__init__, DataParallel.__init__)

EXERCISES = [
    Exercise(day=DAY, name="run_naive", grade_ids=("test_naive_ddp",), make_cases=_naive_cases,
             reference=reference_sgd, compare=compare_params, forbidden=_DDP_FORBIDDEN,
             edge_cases=("rank 1 starts from other values (a missing broadcast shows)", "two steps, so a rank that "
                         "drifts in step 1 changes rank 0's step 2"),
             description="naive DDP on 2 gloo ranks: broadcast, one all_reduce per parameter, average"),
    Exercise(day=DAY, name="run_flat", grade_ids=("test_flat_ddp",), make_cases=_flat_cases,
             reference=reference_sgd, compare=compare_params, forbidden=_DDP_FORBIDDEN,
             edge_cases=("gradients of different shapes and numbers of dimensions (weights 2-D, biases 1-D)",),
             description="flat DDP: one all_reduce of all gradients flattened together"),
    Exercise(day=DAY, name="run_bucketed", grade_ids=("test_bucketed_ddp",), make_cases=_bucketed_cases,
             reference=reference_sgd, compare=compare_params, forbidden=_DDP_FORBIDDEN,
             edge_cases=("a bucket holding two gradients, launched only when both are ready",
                         "one bucket for everything", "two steps (the countdown must start again)"),
             description="overlapped bucketed DDP with post-accumulate-grad hooks and async all_reduce"),
    Exercise(day=DAY, name="run_accumulated", grade_ids=("test_accumulation",), make_cases=_accumulated_cases,
             reference=reference_accumulated, compare=compare_params,
             properties=(_no_early_communication, _one_optimizer_step_per_call),
             forbidden=_DDP_FORBIDDEN, edge_cases=("2 and 4 micro-batches",),
             description="gradient accumulation: N micro-batches, one all_reduce, one step"),
    Exercise(day=DAY, name="run_zero", grade_ids=("test_zero1",), make_cases=_zero_cases,
             reference=reference_zero, compare=compare_params, properties=(_sharded_memory,),
             forbidden=(ShardedAdamW.step,), edge_cases=("parameters owned by rank 1 (their update must reach rank 0)",
                                                         "two steps"),
             description="ZeRO-1: AdamW state sharded over 2 ranks, shards broadcast"),
]
