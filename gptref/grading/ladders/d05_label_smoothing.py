"""Day 5's ladders: what every correct smoothed-target, smoothed cross-entropy and KL answer has."""

from __future__ import annotations

import torch


def targets_form(got, case) -> str | None:
    """A float32 tensor of shape target.shape + (n_classes,)."""
    want = (*case["target"].shape, case["n_classes"])
    if not isinstance(got, torch.Tensor):
        return f"return a tensor, got {type(got).__name__}"
    if tuple(got.shape) != want:
        note = ""
        if got.shape[:-1] == case["target"].shape and got.shape[-1] < case["n_classes"]:
            note = (" (one column per class, absent classes included: pass n_classes to F.one_hot, which otherwise "
                    "counts only up to the largest id in the batch)")
        if not note and got.dim() == 2 and got.shape == (case["target"].numel(), case["n_classes"]) \
                and case["target"].dim() != 1:
            note = (" (one row per target, flattened: keep target's own shape in front; F.one_hot works on a target "
                    "of any shape)")
        return f"the targets have shape {tuple(got.shape)}; they need target.shape + (n_classes,) = {want}{note}"
    if got.dtype != torch.float32:
        return f"the targets have dtype {got.dtype}: return float32 (class ids are int64; convert the one-hot)"
    return None


def targets_are_distributions(got, case) -> str | None:
    """Every entry is >= 0 and every row sums to 1 over the classes."""
    if (got < 0).any():
        return f"a smoothed target is negative ({got.min().item():.4g}): q is a probability distribution"
    sums = got.double().sum(-1)
    bad = (sums - 1).abs() > 1e-5
    if bad.any():
        return (f"a row of q sums to {sums[bad][0].item():.6f} over the classes, not 1: (1 - eps) on the target "
                f"plus eps / C on each of the C classes gives 1 - eps + C * eps / C = 1")
    return None


def targets_values(got, case) -> str | None:
    """The target class gets 1 - eps + eps / C, every other class eps / C."""
    eps, n_classes, target = case["smoothing"], case["n_classes"], case["target"]
    if got.numel() == 0:
        return None
    on = got.double().gather(-1, target[..., None].long()).squeeze(-1)  # (...) what the target class got
    if (on - (1 - eps + eps / n_classes)).abs().max() > 1e-6:
        return (f"with eps={eps} and C={n_classes} the target class must get 1 - eps + eps / C = "
                f"{1 - eps + eps / n_classes:.6g}, you give it {on.flatten()[0].item():.6g}")
    off = got.double().scatter(-1, target[..., None].long(), float("nan"))
    off = off[~off.isnan()]
    if len(off) and (off - eps / n_classes).abs().max() > 1e-6:
        return (f"with eps={eps} and C={n_classes} every other class must get eps / C = {eps / n_classes:.6g}, you "
                f"give one {off[(off - eps / n_classes).abs().argmax()].item():.6g}")
    return None


def _scalar_loss(got, case, what: str) -> str | None:
    logits = case["logits"]
    if not isinstance(got, torch.Tensor):
        return f"return the {what} as a 0-dimensional tensor (keep it in torch), got {type(got).__name__}"
    if got.dim() != 0:
        return (f"the {what} has shape {tuple(got.shape)}: return one number, a 0-dimensional tensor (the mean over "
                "the rows)")
    if got.dtype != logits.dtype:
        return f"the {what} has dtype {got.dtype}; keep the logits' dtype {logits.dtype}"
    return None


def loss_is_a_scalar(got, case) -> str | None:
    return _scalar_loss(got, case, "loss")


def kl_is_a_scalar(got, case) -> str | None:
    return _scalar_loss(got, case, "KL")


def loss_is_finite_and_positive(got, case) -> str | None:
    """Finite, and >= 0 (every -log p_c is >= 0)."""
    if not torch.isfinite(got):
        big = case["logits"].abs().max().item() > 50
        why = (" These logits are large: use log_softmax, not softmax(...).log() (the softmax underflows to 0)."
               if big else "")
        return f"the loss is {got.item()} where it must be a finite number: a log of 0 somewhere?{why}"
    if got.item() < -1e-9:
        return f"the loss is {got.item():.6g} < 0, but each -log p_c is >= 0: check the signs"
    return None


def kl_is_finite_and_positive(got, case) -> str | None:
    """Finite, and >= 0 (Gibbs' inequality)."""
    if not torch.isfinite(got):
        zeros = " Here smoothing=0, so q has zeros: 0 * log 0 must count as 0 (torch.xlogy(q, q))." \
            if case.get("smoothing", 0.1) == 0 else ""
        if not zeros and case["logits"].abs().max().item() > 50:
            zeros = " These logits are large: take log p with log_softmax (softmax(...).log() underflows to log 0)."
        return f"the KL is {got.item()} where it must be a finite number: a log of 0 somewhere?{zeros}"
    if got.item() < -1e-9:
        return (f"the KL is {got.item():.6g} < 0, but KL(q || p) = sum q log(q / p) is never negative when q and p "
                "are both distributions: check the sign, the order (q first), that log p comes from log_softmax "
                "and that q sums to 1")
    return None


def value(what: str, torch_call: str):
    """A compare for a scalar loss: both numbers and what gives the expected one."""

    def compare(got, expected, case) -> str | None:
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and torch.allclose(
                got.double(), expected.double(), rtol=1e-5 if expected.dtype == torch.float32 else 1e-7, atol=1e-7):
            return None
        shown = got.item() if isinstance(got, torch.Tensor) and got.numel() == 1 else got
        return (f"the {what} is {shown:.6g} where {torch_call} gives {expected.item():.6g} (smoothing="
                f"{case['smoothing']}, {tuple(case['logits'].shape)} logits)")

    return compare


LADDERS = {
    "smoothed_targets": (targets_form, targets_are_distributions, targets_values),
    "smoothed_cross_entropy": (loss_is_a_scalar, loss_is_finite_and_positive),
    "smoothed_kl": (kl_is_a_scalar, kl_is_finite_and_positive),
}
