"""Day 11's common wrong answers, each simulated in one process: what rank 0 of a wrong two-rank run ends with.

Every function has its exercise's signature and returns rank 0's parameters (a state dict) after the steps.
The toy model and the starting values match the notebook's given cell (mlp_from_state, rank_start).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gptref.grading.data_parallel import mlp_from_state
from gptref.grading.explain import Mistake

WORLD = 2


def _start(state: dict, rank: int, broadcast: bool) -> dict:
    """Where a rank starts: rank 0's values after a broadcast; without one, the notebook's rank_start."""
    return state if (rank == 0 or broadcast) else {k: v * 0.5 + 0.1 for k, v in state.items()}


def _rank_grads(models, x, y, micro_steps=1, scale=True, last_only=False):
    """Each rank's gradients on its slice of x, y, accumulated over micro-batches (scaled by 1/N or not)."""
    grads = []
    for rank, model in enumerate(models):
        rows = x.shape[0] // WORLD
        xs, ys = x[rank * rows:(rank + 1) * rows], y[rank * rows:(rank + 1) * rows]
        model.zero_grad()
        for xm, ym in zip(xs.chunk(micro_steps), ys.chunk(micro_steps)):
            if last_only:
                model.zero_grad()
            loss = F.cross_entropy(model(xm), ym)
            (loss / micro_steps if scale else loss).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    return grads


def _sgd(state, x, y, lr, *, broadcast=True, combine="mean", micro_steps=1, scale=True, last_only=False,
         unflatten_first_piece=False, first_step_only=False, extra_scale=1.0, never_zeroed=False) -> dict:
    """SGD on WORLD simulated ranks with the given mistake; rank 0's parameters at the end. never_zeroed: each
    step's averaged gradient is added to the one left in p.grad by the steps before (no zero_grad)."""
    models = [mlp_from_state(_start(state, r, broadcast)) for r in range(WORLD)]
    carried = None
    for step in range(x.shape[0]):
        grads = _rank_grads(models, x[step], y[step], micro_steps, scale, last_only)
        how = "none" if first_step_only and step > 0 else combine
        if how == "none":
            new = grads
        elif how == "halve":  # divided by the world size, never reduced
            new = [[g / WORLD for g in gs] for gs in grads]
        elif how == "rank0_mean":  # all_reduce everywhere, the division on rank 0 only
            total = [sum(gs) for gs in zip(*grads)]
            new = [[g / WORLD for g in total]] + [total] * (WORLD - 1)
        elif how == "parameters":  # the parameters averaged over the ranks, then each steps on its own gradient
            with torch.no_grad():
                for ps in zip(*(m.parameters() for m in models)):
                    mean = sum(p.detach().clone() for p in ps) / WORLD
                    for p in ps:
                        p.copy_(mean)
            new = grads
        else:
            total = [sum(gs) for gs in zip(*grads)]
            if combine == "mean":
                total = [g / WORLD for g in total]
            elif combine == "mean_last_only":  # the division outside the loop: only the last parameter's p.grad
                total = total[:-1] + [total[-1] / WORLD]
            if unflatten_first_piece:  # every gradient gets the first elements of the flat buffer
                flat = torch.cat([g.reshape(-1) for g in total])
                total = [flat[:g.numel()].view_as(g) for g in total]
            total = [g * extra_scale for g in total]
            if never_zeroed and carried is not None:
                total = [g + c for g, c in zip(total, carried)]
            carried = total
            new = [total] * WORLD
        with torch.no_grad():
            for model, gs in zip(models, new):
                for p, g in zip(model.parameters(), gs):
                    p -= lr * g
    return {k: v.detach().clone() for k, v in models[0].state_dict().items()}


def _owners(state: dict) -> list[int]:
    """Each parameter, in order, to the rank with the fewest elements so far (the exercise's rule)."""
    loads, owners = [0] * WORLD, []
    for value in state.values():
        owners.append(loads.index(min(loads)))
        loads[owners[-1]] += value.numel()
    return owners


def _adamw_stepping(state, x, y, lr, stepped_by: tuple[int, ...], optimizer_lr: float | None = None,
                    weight_decay: float = 0.01) -> dict:
    """Rank 0's parameters after whole-batch gradients (averaged over the ranks) when only the parameters owned by
    `stepped_by` ever change on rank 0, stepped by AdamW with `optimizer_lr` (lr when None) and weight_decay."""
    model = mlp_from_state(state)
    params = [p for p, owner in zip(model.parameters(), _owners(state)) if owner in stepped_by]
    rate = lr if optimizer_lr is None else optimizer_lr
    optimizer = torch.optim.AdamW(params, lr=rate, weight_decay=weight_decay) if params else None
    for step in range(x.shape[0]):
        model.zero_grad()
        F.cross_entropy(model(x[step]), y[step]).backward()
        if optimizer:
            optimizer.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


MISTAKES = {
    "run_naive": (
        Mistake("never broadcast rank 0's parameters into the parameters themselves (no broadcast, or one into a "
                "copy such as p.detach().clone(), which leaves p as it was), so rank 1 trains from its own starting "
                "values",
                lambda state, x, y, lr: _sgd(state, x, y, lr, broadcast=False)),
        Mistake("add each gradient over the ranks (all_reduce sums) without dividing by world_size",
                lambda state, x, y, lr: _sgd(state, x, y, lr, combine="sum")),
        Mistake("divide each gradient by world_size without all_reduce-ing it first, so every rank steps on half "
                "of its own gradient",
                lambda state, x, y, lr: _sgd(state, x, y, lr, combine="halve")),
        Mistake("never average the gradients, so every rank steps on its own half-batch (an all_reduce of a "
                "temporary such as p.grad / W does that too: it leaves p.grad as it was)",
                lambda state, x, y, lr: _sgd(state, x, y, lr, combine="none")),
        Mistake("divide by world_size twice (before and after the all_reduce, or after an all_reduce with "
                "ReduceOp.AVG, which already divides): your gradients are world_size times too small; divide once "
                "(a plain all_reduce sums)",
                lambda state, x, y, lr: _sgd(state, x, y, lr, extra_scale=1 / WORLD)),
        Mistake("divide by world_size on rank 0 only: every rank must divide its all_reduced p.grad, or rank 1 "
                "steps on the SUM and the copies drift apart (rank 0's next gradients come from them)",
                lambda state, x, y, lr: _sgd(state, x, y, lr, combine="rank0_mean")),
        Mistake("all_reduce the parameters (p.data) instead of the gradients: average every p.grad over the "
                "ranks before the step, so that every rank takes the same step",
                lambda state, x, y, lr: _sgd(state, x, y, lr, combine="parameters")),
        Mistake("divide only the LAST parameter's gradient by world_size: the division sits after the loop over the "
                "parameters instead of inside it, so every other p.grad stays the sum over the ranks",
                lambda state, x, y, lr: _sgd(state, x, y, lr, combine="mean_last_only")),
    ),
    "run_flat": (
        Mistake("sum the flat buffer over the ranks without dividing it by world_size before its values reach p.grad "
                "(a division after the copy back into p.grad changes only the buffer)",
                lambda state, x, y, lr: _sgd(state, x, y, lr, combine="sum")),
        Mistake("reduce the flat buffer but never copy it back into the p.grad tensors themselves (a copy into a "
                "new tensor, or rebinding a name, leaves p.grad as it was)",
                lambda state, x, y, lr: _sgd(state, x, y, lr, combine="none")),
        Mistake("divide the flat buffer by world_size twice (before and after the all_reduce, or after an "
                "all_reduce with ReduceOp.AVG, which already divides): your gradients are world_size times too "
                "small; divide once (a plain all_reduce sums)",
                lambda state, x, y, lr: _sgd(state, x, y, lr, extra_scale=1 / WORLD)),
        Mistake("copy the same first piece of the flat buffer into every gradient: advance the offset by each "
                "gradient's numel()",
                lambda state, x, y, lr: _sgd(state, x, y, lr, unflatten_first_piece=True)),
    ),
    "run_bucketed": (
        Mistake("leave out the broadcast in BucketedDDP.__init__, so rank 1 trains from its own starting values",
                lambda state, x, y, lr, bucket_mb: _sgd(state, x, y, lr, broadcast=False)),
        Mistake("sum each bucket over the ranks without dividing it by world_size before its values reach p.grad "
                "(a division after the copy back into p.grad changes only the buffer)",
                lambda state, x, y, lr, bucket_mb: _sgd(state, x, y, lr, combine="sum")),
        Mistake("average only in the first step: from the second step on no bucket is sent, so each rank steps "
                "on its own gradient. Reset every bucket's countdown (and the list of handles) in "
                "finish_gradient_synchronization, ready for the next backward",
                lambda state, x, y, lr, bucket_mb: _sgd(state, x, y, lr, first_step_only=True)),
    ),
    "run_accumulated": (
        Mistake("do not divide each micro-batch's loss by the number of micro-batches (the gradient is N times "
                "too large)",
                lambda state, x, y, lr, micro_steps: _sgd(state, x, y, lr, micro_steps=micro_steps, scale=False)),
        Mistake("zero the gradients before every micro-batch, so only the last micro-batch counts",
                lambda state, x, y, lr, micro_steps: _sgd(state, x, y, lr, micro_steps=micro_steps, last_only=True)),
        Mistake("never zero the gradients between steps: p.grad still holds the previous step's averaged "
                "gradient, and backward adds to it; call optimizer.zero_grad() once at the start of every step",
                lambda state, x, y, lr, micro_steps: _sgd(state, x, y, lr, micro_steps=micro_steps,
                                                          never_zeroed=True)),
        Mistake("scale by the number of micro-batches twice: the losses are already divided by N, so the "
                "all_reduced gradients are divided by world_size only (yours are N times too small)",
                lambda state, x, y, lr, micro_steps: _sgd(state, x, y, lr, micro_steps=micro_steps,
                                                          extra_scale=1 / micro_steps)),
    ),
    "run_zero": (
        Mistake("broadcast every parameter from rank 0: the parameters rank 1 owns are stepped on rank 1 only, and "
                "rank 0 never receives them; every parameter is broadcast from its owner (src=owner)",
                lambda state, x, y, lr: _adamw_stepping(state, x, y, lr, stepped_by=(0,))),
        Mistake("build the local AdamW without lr=lr: it steps with AdamW's default rate 0.001; pass "
                "torch.optim.AdamW(own_params, lr=lr)",
                lambda state, x, y, lr: _adamw_stepping(state, x, y, lr, stepped_by=(0, 1), optimizer_lr=1e-3)),
        Mistake("never update any parameter: none of rank 0's parameters changed after the steps. Look at which "
                "parameters each rank's local optimizer holds (those with owner == rank) and that zero1_step steps "
                "it before the broadcasts",
                lambda state, x, y, lr: _adamw_stepping(state, x, y, lr, stepped_by=())),
    ),
}
