"""What rank 0's parameters after ONE data-parallel SGD step show, when they are wrong and no known mistake fits.

One correct step moves every parameter by -lr times the mean of the ranks' gradients (the whole batch's gradient,
clipped when max_norm is given). `one_step_finding` compares the step rank 0 took with that one, with the step on
rank 0's own half of the batch, and parameter by parameter, and says what it observes (a multiple of the right step,
rank 1's half missing, the parameters themselves added over the ranks, which parameters are wrong) with where to
look. Each finding is true of the answer by construction; none guesses a cause it cannot see.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp_from_state(state: dict) -> nn.Module:
    """Linear -> Tanh -> Linear with the weights in `state`: the toy classifier of days 9 and 11's data-parallel
    exercises (the notebooks' given mlp_from_state), built once here for every grading module."""
    n_hidden, n_in = state["0.weight"].shape
    model = nn.Sequential(nn.Linear(n_in, n_hidden), nn.Tanh(), nn.Linear(n_hidden, state["2.weight"].shape[0]))
    model = model.to(state["0.weight"].dtype)
    model.load_state_dict(state)
    return model


def _sgd_step(state: dict, x: torch.Tensor, y: torch.Tensor, lr: float, max_norm: float | None) -> dict:
    """The parameters after one SGD step on (x, y), the gradient clipped to max_norm when given."""
    model = mlp_from_state(state)
    F.cross_entropy(model(x), y).backward()
    if max_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _flat(values: dict, keys) -> torch.Tensor:
    return torch.cat([values[k].double().reshape(-1) for k in keys])  # (all parameters' elements,)


def _multiple(step: torch.Tensor, of: torch.Tensor, tol: float) -> float | None:
    """c when step equals c * of (c not 1), else None."""
    if of.abs().max() <= tol:
        return None
    c = float((step * of).sum() / (of * of).sum())
    if abs(c - 1) > 1e-6 and torch.allclose(step, c * of, rtol=1e-6, atol=tol):
        return c
    return None


def run_starts(buffer: torch.Tensor, values: torch.Tensor, tol: float = 1e-12) -> list[int]:
    """Where `values` lies in the 1-D `buffer` as a run of consecutive entries (within tol): the run's starts."""
    values = values.reshape(-1)
    if values.numel() > buffer.numel():
        return []
    windows = buffer.unfold(0, values.numel(), 1)  # (number of starts, size): every run of that many entries
    return ((windows - values).abs() <= tol).all(dim=1).nonzero().flatten().tolist()


def _slice_taken(step: torch.Tensor, key: str, joins: dict[str, tuple[list[str], torch.Tensor]], sizes: dict,
                 tol: float) -> str | None:
    """When parameter `key`'s step equals another run of consecutive entries of the right steps joined in one of
    the orders of `joins` ({how: (parameter order, the right steps joined in it)}), which is its slice of a flat
    buffer cut at the wrong offset, say which run, and which is its own."""
    size = step.numel()
    for how, (order, joined) in joins.items():
        close = run_starts(joined, step, tol)
        own = sum(sizes[k] for k in order[:order.index(key)])
        if close and own not in close:
            return (f"{key} stepped with entries [{close[0]}:{close[0] + size}] of the gradients joined in {how}"
                    f"parameter order, but its own gradient is entries [{own}:{own + size}]: it was cut from the "
                    "flat buffer at the wrong offset; each parameter's slice starts where the previous one's ends "
                    "(advance the offset by every gradient's .numel(), in the order the buffer was joined)")
    return None


def one_step_finding(after: dict, state: dict, x: torch.Tensor, y: torch.Tensor, lr: float, world_size: int = 2,
                     max_norm: float | None = None, tol: float = 1e-10) -> str | None:
    """What rank 0's parameters `after` one step on the batch (x, y) split over `world_size` ranks show, compared
    with one SGD step on the whole batch from `state`; None when they are right."""
    keys = list(state)
    right = _sgd_step(state, x, y, lr, max_norm)
    rows = x.shape[0] // world_size
    own = _sgd_step(state, x[:rows], y[:rows], lr, max_norm)  # rank 0's own half-batch only
    start, mine, want, alone = (_flat(d, keys) for d in (state, after, right, own))
    if torch.allclose(mine, want, rtol=0, atol=tol):
        return None
    step, right_step, own_step = mine - start, want - start, alone - start
    size = f"(the right step moves them by up to {right_step.abs().max():.3g}, yours by up to {step.abs().max():.3g})"
    if step.abs().max() <= tol:
        return f"rank 0's parameters did not change in the step {size}: look at what reaches optimizer.step()"
    if torch.allclose(mine, alone, rtol=0, atol=tol):
        return ("rank 0 took exactly the step of its OWN half of the batch: rank 1's gradient never reached it; "
                "the gradients must be all_reduced (summed over the ranks) and divided by world_size before the step")
    c = _multiple(step, right_step, tol)
    if c is not None and max_norm is not None:
        return (f"rank 0's step is {c:.4g} times the right step {size}: the gradient that reached optimizer.step() "
                f"is {c:.4g} times the mean of the ranks' gradients clipped to max_norm = {max_norm:g}")
    if c is not None:
        return (f"rank 0's step is {c:.4g} times the right step {size}: the gradient it stepped with is {c:.4g} times "
                "the mean of the ranks' gradients (the whole batch's gradient): look at every factor on its way to "
                "p.grad (the loss's scale, the all_reduce's sum, the division by world_size)")
    c = _multiple(step, own_step, tol)
    if c is not None:
        return (f"rank 0's step is {c:.4g} times the step of its OWN half of the batch: rank 1's gradient never "
                "reached it; the gradients must be all_reduced (summed over the ranks) and divided by world_size")
    if (mine - world_size * start).abs().max() < 0.25 * (mine - start).abs().max():
        return (f"after one step rank 0's parameters are about {world_size} (world_size) times their starting values "
                f"{size}: the parameters themselves were added over the ranks; the all_reduce belongs on the "
                "gradients p.grad, the parameters change only in optimizer.step()")
    off = (step - right_step).abs().max() / right_step.abs().max()
    if off <= 1e-6 and after[keys[0]].dtype == torch.float64:
        return (f"rank 0's step differs from the right one by only {off:.1g} of its size, the size of float32 "
                "rounding, while the model and its gradients are float64: look for a buffer or copy made in float32 on "
                "the way (torch.zeros and torch.empty make float32 unless given dtype=, e.g. the gradients' own dtype)")
    wrong = [k for k in keys if not torch.allclose(after[k].double(), right[k].double(), rtol=0, atol=tol)]
    backwards = keys[::-1]  # the order buckets join the gradients in
    joins = {"": (keys, right_step), "reverse ": (backwards, _flat(right, backwards) - _flat(state, backwards))}
    sizes = {k: state[k].numel() for k in keys}
    for key in wrong:
        taken = _slice_taken(after[key].double() - state[key].double(), key, joins, sizes, tol)
        if taken:
            return taken
    if len(wrong) < len(keys):
        fine = [k for k in keys if k not in wrong]
        return (f"after one step {fine} are right but {wrong} are not: look at what sets those parameters apart "
                "(their place in a loop, their slice of a flat buffer, their bucket, or when their buffer is read: "
                "one used before its handle.wait() returned holds an unfinished sum)")
    return f"already after one step rank 0's parameters differ from one SGD step on the whole batch {size}"


def unmoved_finding(after: dict, state: dict) -> str | None:
    """For an optimizer whose every step moves every parameter (AdamW): which of rank 0's parameters `after` one step
    still hold their starting values in `state` while others moved (a fact of the answer: rank 0 never got their
    update); None when all or none moved."""
    unmoved = [k for k in state if torch.equal(after[k], state[k])]
    if not unmoved or len(unmoved) == len(state):
        return None
    moved = [k for k in state if k not in unmoved]
    return (f"after one step rank 0's {moved} moved but {unmoved} still hold their starting values: rank 0 never "
            "received the new values of those parameters; each rank steps the parameters it owns, and only a "
            "broadcast from the owner AFTER that step brings the new values to the other ranks")


def later_steps_finding(steps: int) -> str:
    """When the first step is right and the run of `steps` steps is not."""
    return (f"after ONE step rank 0's parameters are right, after {steps} steps they are not: the first step works, "
            "so look at what your code keeps from one step to the next (what must start afresh at every step), and "
            "at whether every rank ends each step with the same parameters: a collective that leaves its result on "
            "one rank only (dist.reduce where all_reduce belongs) lets the ranks' models drift apart from step 2 on")


__all__ = ["later_steps_finding", "one_step_finding", "run_starts", "unmoved_finding"]
