"""Day 9's ladders: what every correct block output, learning rate, clipping and SFT loss has, checked before values.

block_forward: x's shape and dtype, finite.
cosine_lr: a plain number; max_lr at steps w - 1 and w, min_lr at max_steps; during the warmup in (0, max_lr],
afterwards between min_lr and max_lr; the warmup is the line max_lr * (s + 1) / w; halfway through the decay the
midpoint (max_lr + min_lr) / 2.
clip_gradients: a pair (one tensor per gradient with its shape, a number); the clipped gradients' global norm is at
most max_norm; every gradient is scaled by the same factor (the direction is kept).
sft_loss: a 0-dim tensor in the logits' dtype, finite, between the smallest and largest response-token loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def block_form(got, case) -> str | None:
    x = case["x"]
    if not isinstance(got, torch.Tensor):
        return f"the block must return a tensor, got {type(got).__name__}"
    if tuple(got.shape) != tuple(x.shape) or got.dtype != x.dtype:
        return (f"the block must keep x's shape (B, T, C) = {tuple(x.shape)} and dtype {x.dtype}, got "
                f"{tuple(got.shape)} {got.dtype}")
    if not torch.isfinite(got).all():
        return "the block's output has NaN or inf values"
    return None


def lr_number(got, case) -> str | None:
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return f"return a plain float (a Python number), got {type(got).__name__}"
    return None


def lr_landmarks(got, case) -> str | None:
    """Where the formula gives a known value: max_lr at the last warmup step and at the cosine's start (r = 0),
    min_lr at max_steps (r = 1)."""
    step, max_lr, min_lr, w, n = case["step"], case["max_lr"], case["min_lr"], case["warmup_steps"], case["max_steps"]
    tol = 1e-12 + 1e-9 * max_lr
    if step == w - 1 and abs(got - max_lr) > tol:
        return (f"the warmup reaches max_lr = {max_lr:g} at its last step, step w - 1 = {step} "
                f"(max_lr * (step + 1) / w); got {got:.6g}")
    if step == w and abs(got - max_lr) > tol and abs(got - (max_lr - min_lr)) <= tol:
        return (f"the cosine starts at step w = {w} with r = 0, where it must give max_lr = {max_lr:g}; yours gives "
                f"{got:.6g} = max_lr - min_lr: the cosine part 0.5 (1 + cos(pi r)) (max_lr - min_lr) is there, but "
                "the floor min_lr is not added to it")
    if step == w and abs(got - max_lr) > tol:
        return (f"the cosine starts at step w = {w} with r = 0, where 0.5 (1 + cos 0) = 1 gives max_lr = {max_lr:g}; "
                f"got {got:.6g}. Look at the first step after the warmup")
    if step == n and n > w and min_lr > tol and abs(got) <= tol:
        return (f"the decay ends at step max_steps = {n} at the floor min_lr = {min_lr:g}, where 0.5 (1 + cos pi) = 0; "
                "yours gives 0 there: the floor min_lr is not added to the cosine part")
    if step == n and n > w and abs(got - min_lr) > tol:
        return (f"the decay ends at step max_steps = {n} with r = 1, where 0.5 (1 + cos pi) = 0 gives min_lr = "
                f"{min_lr:g}; got {got:.6g}. Look at r at the last step")
    return None


def lr_in_range(got, case) -> str | None:
    step, max_lr, min_lr, w = case["step"], case["max_lr"], case["min_lr"], case["warmup_steps"]
    tol = 1e-12 + 1e-9 * max_lr
    if step < w and not 0 < got <= max_lr + tol:
        return (f"during the warmup (step {step} < warmup_steps = {w}) the rate grows from above 0 to max_lr = "
                f"{max_lr:g}; got {got:.6g}")
    if step >= w and not min_lr - tol <= got <= max_lr + tol:
        return (f"after the warmup the rate stays between min_lr = {min_lr:g} and max_lr = {max_lr:g}; at step "
                f"{step} got {got:.6g}")
    return None


def lr_warmup_line(got, case) -> str | None:
    """During the warmup the rate is the straight line max_lr * (s + 1) / w, through 0 at s = -1."""
    step, max_lr, min_lr, w = case["step"], case["max_lr"], case["min_lr"], case["warmup_steps"]
    tol = 1e-12 + 1e-9 * max_lr
    want = max_lr * (step + 1) / w
    if step >= w or abs(got - want) <= tol:
        return None
    message = (f"the warmup is the straight line max_lr * (step + 1) / w from max_lr / w = {max_lr / w:.6g} at step 0 "
               f"to max_lr at step w - 1 = {w - 1}; at step {step} it gives {want:.6g}, yours {got:.6g}")
    if abs(got - (min_lr + (max_lr - min_lr) * (step + 1) / w)) <= tol:
        message += " = min_lr + (max_lr - min_lr) * (step + 1) / w: your warmup rises from min_lr, the formula's from 0"
    return message


def lr_cosine_midpoint(got, case) -> str | None:
    """Halfway through the decay (r = 1/2) the cosine gives the midpoint of max_lr and min_lr."""
    step, max_lr, min_lr, w, n = case["step"], case["max_lr"], case["min_lr"], case["warmup_steps"], case["max_steps"]
    tol = 1e-12 + 1e-9 * max_lr
    if 2 * (step - w) != n - w or step <= w or abs(got - (max_lr + min_lr) / 2) <= tol:
        return None
    message = (f"halfway through the decay, at step {step} (r = (step - w) / (N - w) = 0.5), the cosine gives "
               f"0.5 (1 + cos(pi / 2)) = 0.5 of the way: (max_lr + min_lr) / 2 = {(max_lr + min_lr) / 2:.6g}; yours "
               f"{got:.6g}")
    if abs(got - max_lr) <= tol:
        message += (", still max_lr, as if r were 0 there: r must grow as a fraction from 0 at step w to 1 at "
                    "max_steps (a true division)")
    return message


def clip_pair(got, case) -> str | None:
    grads = case["grads"]
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"return a pair (clipped_grads, total_norm), got {type(got).__name__}"
    clipped, total = got
    if isinstance(total, (list, tuple)) and not isinstance(clipped, (list, tuple)):
        return "return the pair in the order (clipped_grads, total_norm): yours has the norm first"
    if not isinstance(clipped, (list, tuple)) or len(clipped) != len(grads):
        return f"clipped_grads should be a list of {len(grads)} tensors, one per gradient"
    for i, (c, g) in enumerate(zip(clipped, grads)):
        if not isinstance(c, torch.Tensor) or c.shape != g.shape:
            return f"clipped gradient {i} should be a tensor of shape {tuple(g.shape)} like its gradient"
    if isinstance(total, torch.Tensor) and total.numel() == 1:
        total = total.item()
    if isinstance(total, bool) or not isinstance(total, (int, float)):
        return f"total_norm should be a number (a float or a 0-d tensor), got {type(total).__name__}"
    return None


def clip_at_most_max_norm(got, case) -> str | None:
    norm = torch.sqrt(sum((c.double() ** 2).sum() for c in got[0])).item()
    if norm > case["max_norm"] * (1 + 1e-5):
        return (f"after clipping the global norm of all gradients together must be at most max_norm = "
                f"{case['max_norm']:g}; yours is {norm:.6g}")
    return None


def clip_same_direction(got, case) -> str | None:
    factors = []
    for c, g in zip(got[0], case["grads"]):
        g, c = g.double(), c.double()
        if g.norm() > 0:
            factor = (c * g).sum() / (g * g).sum()
            if not torch.allclose(c, factor * g, rtol=1e-5, atol=1e-9):
                return "each clipped gradient must be its gradient times a number (clipping keeps the direction)"
            factors.append(factor.item())
    if factors and max(factors) - min(factors) > 1e-5 * max(abs(f) for f in factors):
        return (f"every gradient must be scaled by the SAME factor (yours range from {min(factors):.4g} to "
                f"{max(factors):.4g}): one factor for all keeps the direction of the whole update")
    return None


def sft_form(got, case) -> str | None:
    logits = case["logits"]
    if not isinstance(got, torch.Tensor) or got.numel() != 1:
        found = getattr(got, "shape", type(got).__name__)
        return f"return a scalar tensor (a mean over the response tokens), got {found}"
    if got.dtype != logits.dtype:
        return f"the loss has dtype {got.dtype} but should have the logits' dtype {logits.dtype}"
    if not torch.isfinite(got).all():
        return "the loss is NaN or inf (is any position counted at all? divide by the number of response tokens)"
    return None


def sft_between_token_losses(got, case) -> str | None:
    logits, targets, mask = case["logits"], case["targets"], case["loss_mask"]
    per_token = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view(targets.shape)
    low, high = per_token[mask].min().item(), per_token[mask].max().item()
    value = got.item()
    slack = 1e-5 * (1 + abs(high))
    if not low - slack <= value <= high + slack:
        return (f"a mean of the response tokens' losses lies between the smallest and the largest of them "
                f"({low:.4g} and {high:.4g}); yours is {value:.4g}" + _divided_by(per_token[mask].sum().item(), value,
                                                                               int(mask.sum())))
    return None


def _divided_by(total: float, value: float, count: int) -> str:
    """When `value` is the response tokens' summed loss `total` divided by a whole number other than their `count`:
    which number (a fact of the answer, for the student to find in the code); '' otherwise."""
    if value == 0 or total == 0:
        return ""
    divisor = total / value
    if divisor < 0.5 or abs(divisor - round(divisor)) > 1e-6 * divisor or round(divisor) == count:
        return ""
    return (f", which is the sum of their losses divided by {round(divisor)} instead of by their number, {count} "
            "(loss_mask.sum()): look at the denominator")


def sft_counted_positions(sft_loss, case) -> str | None:
    """Which positions' logits move the answer's loss (each changed alone), against the positions loss_mask counts:
    None when they are the same, else what the loss counts instead (a property no mask-respecting loss breaks)."""
    logits, targets, mask = case["logits"], case["targets"], case["loss_mask"]
    base = sft_loss(logits.clone(), targets.clone(), mask.clone())
    noise = torch.randn(logits.shape, dtype=logits.dtype, generator=torch.Generator().manual_seed(0)) * 10
    counted = torch.zeros_like(mask)
    for b, t in torch.ones_like(mask).nonzero().tolist():
        moved = logits.clone()
        moved[b, t] += noise[b, t]
        counted[b, t] = bool((sft_loss(moved, targets.clone(), mask.clone()) - base).abs() > 1e-9)
    if torch.equal(counted, mask):
        return None
    if counted.all():
        return ("your loss changes with the logits of EVERY position, prompt and padding included: only the positions "
                "where loss_mask is True may count")
    if torch.equal(counted, ~mask):
        return ("your loss changes with the logits of exactly the positions where loss_mask is False (prompt and "
                "padding) and not with those where it is True: it counts the complement of the mask")
    where = lambda m: [tuple(p) for p in m.nonzero().tolist()]  # noqa: E731
    return (f"your loss changes with the logits of the positions (b, t) {where(counted)}, while loss_mask is True "
            f"only at {where(mask)}: look at how the mask is lined up with the per-position losses")


LADDERS = {
    "block_forward": (block_form,),
    "cosine_lr": (lr_number, lr_landmarks, lr_in_range, lr_warmup_line, lr_cosine_midpoint),
    "clip_gradients": (clip_pair, clip_at_most_max_norm, clip_same_direction),
    "sft_loss": (sft_form, sft_between_token_losses),
}
