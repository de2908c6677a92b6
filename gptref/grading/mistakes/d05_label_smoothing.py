"""Day 5's common wrong answers (smoothed targets, smoothed cross-entropy, its KL form).

`says` completes "Your answer is exactly what you get when you ...".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gptref.grading.explain import Mistake


def _one_hot(target, n_classes):
    return F.one_hot(target, n_classes).to(torch.float32)  # (..., C)


def _terms(logits, target, ignore_index=-100, dim=-1, log=None, pick="gather"):
    """(-log p_y, -log p_c for every c, kept rows) with ignored rows given class 0."""
    logp = log(logits) if log else logits.log_softmax(dim=dim)  # (N, C)
    keep = target != ignore_index
    safe = target.masked_fill(~keep, 0)
    if pick == "table":  # logp[:, safe] is (N, N): every row at every row's target
        return -logp[:, safe], -logp, keep
    nll = -logp.gather(-1, safe[:, None]).squeeze(-1)  # (N,)
    return nll, -logp, keep


def _ce(logits, target, smoothing=0.1, ignore_index=-100, *, dim=-1, log=None, nll_weight=None, spread="mean",
        reduce="kept", pick="gather", zero_ignored=True, swap_weights=False):
    nll, minus_logp, keep = _terms(logits, target, ignore_index, dim, log, pick)
    n_classes = logits.shape[-1]
    if spread == "mean":
        to_uniform = minus_logp.mean(-1)
    elif spread == "logits":  # the uniform term from the raw logits: log_softmax forgotten there
        to_uniform = -logits.mean(-1)
    elif spread == "sum":
        to_uniform = minus_logp.sum(-1)
    else:  # over the C - 1 other classes
        to_uniform = (minus_logp.sum(-1) - nll) / (n_classes - 1)
    weight = 1.0 - smoothing if nll_weight is None else nll_weight
    if swap_weights:
        weight, smoothing = smoothing, 1.0 - smoothing
    per_row = weight * nll + smoothing * to_uniform
    if zero_ignored:
        per_row = torch.where(keep, per_row, torch.zeros_like(per_row))
    if reduce == "kept":
        return per_row.sum() / keep.sum()
    return per_row.mean() if reduce == "all" else per_row.sum()


def _q(logits, target, smoothing, target_share=True, spread_over=None):
    n_classes = logits.shape[-1]
    q = torch.full_like(logits, smoothing / (spread_over or n_classes))
    on_target = 1.0 - smoothing + (smoothing / n_classes if target_share else 0.0)
    return q.scatter(-1, target[:, None], on_target)  # (N, C)


def _kl(logits, target, smoothing=0.1, *, form="row_sum"):
    logp = logits.log_softmax(0 if form == "rows_softmax" else -1)
    others = form == "others"
    q = _q(logits, target, smoothing, target_share=form not in ("no_target_share", "others"),
           spread_over=logits.shape[-1] - 1 if others else None)
    if form == "raw_logits":  # q log q - q z: log_softmax forgotten
        return (torch.xlogy(q, q) - q * logits).sum(-1).mean()
    if form == "over_classes":  # summed, then divided by C instead of N
        return (torch.xlogy(q, q) - q * logp).sum() / logits.shape[-1]
    if form == "reverse":
        return (logp.exp() * (logp - q.log())).sum(-1).mean()
    if form == "no_entropy":
        return (-q * logp).sum(-1).mean()
    if form == "flipped":
        return (q * logp - torch.xlogy(q, q)).sum(-1).mean()
    if form == "xlog":
        return (q * q.log() - q * logp).sum(-1).mean()
    per_entry = torch.xlogy(q, q) - q * logp
    if form in ("rows_softmax", "no_target_share", "others"):
        return per_entry.sum(-1).mean()
    return per_entry.mean() if form == "class_mean" else per_entry.sum()


MISTAKES = {
    "smoothed_targets": (
        Mistake("spread eps over the C - 1 wrong classes (eps / (C - 1) each); torch spreads it over all C classes, "
                "the target included: eps / C each",
                lambda target, n_classes, smoothing=0.1: (1 - smoothing) * _one_hot(target, n_classes)
                + smoothing / (n_classes - 1) * (1 - _one_hot(target, n_classes))),
        Mistake("divide eps by C - 1 (as if you spread eps over the C - 1 wrong classes) but add it to every class, "
                "so a row sums to more than 1: torch spreads eps over all C classes, eps / C each",
                lambda target, n_classes, smoothing=0.1: (1 - smoothing) * _one_hot(target, n_classes)
                + smoothing / (n_classes - 1)),
        Mistake("give the target class 1 - eps instead of 1 - eps + eps / C (the eps / C share goes to every class, "
                "the target included)",
                lambda target, n_classes, smoothing=0.1: (1 - smoothing) * _one_hot(target, n_classes)
                + smoothing / n_classes * (1 - _one_hot(target, n_classes))),
        Mistake("put 1 - eps + eps / C on the target class and nothing on the others: every class, not only the "
                "target, gets its eps / C share",
                lambda target, n_classes, smoothing=0.1: (1 - smoothing + smoothing / n_classes)
                * _one_hot(target, n_classes)),
        Mistake("add eps to every class instead of eps / C",
                lambda target, n_classes, smoothing=0.1: (1 - smoothing) * _one_hot(target, n_classes) + smoothing),
        Mistake("swap the weights: eps on the one-hot and 1 - eps spread over the classes",
                lambda target, n_classes, smoothing=0.1: smoothing * _one_hot(target, n_classes)
                + (1 - smoothing) / n_classes),
    ),
    "smoothed_cross_entropy": (
        Mistake("take the softmax over the rows (dim=0): your softmax is over the wrong dimension, the classes are "
                "dim=-1", lambda logits, target, smoothing=0.1, ignore_index=-100: _ce(
                    logits, target, smoothing, ignore_index, dim=0)),
        Mistake("divide by all N rows: average over the rows that are NOT ignored",
                lambda logits, target, smoothing=0.1, ignore_index=-100: _ce(
                    logits, target, smoothing, ignore_index, reduce="all")),
        Mistake("spread eps over the C - 1 other classes (eps / (C - 1)): you spread eps over the C - 1 other "
                "classes, torch spreads it over all C",
                lambda logits, target, smoothing=0.1, ignore_index=-100: _ce(
                    logits, target, smoothing, ignore_index, spread="others")),
        Mistake("sum the per-row losses instead of averaging them over the kept rows",
                lambda logits, target, smoothing=0.1, ignore_index=-100: _ce(
                    logits, target, smoothing, ignore_index, reduce="sum")),
        Mistake("leave out the (1 - eps) weight on -log p_y",
                lambda logits, target, smoothing=0.1, ignore_index=-100: _ce(
                    logits, target, smoothing, ignore_index, nll_weight=1.0)),
        Mistake("use eps * the SUM over classes of -log p_c instead of eps / C * that sum (the mean)",
                lambda logits, target, smoothing=0.1, ignore_index=-100: _ce(
                    logits, target, smoothing, ignore_index, spread="sum")),
        Mistake("index logp[:, target], which picks an (N, N) table (every row at every row's target), instead of "
                "one entry per row: logp.gather(-1, target[:, None]) or logp[torch.arange(N), target]",
                lambda logits, target, smoothing=0.1, ignore_index=-100: _ce(
                    logits, target, smoothing, ignore_index, pick="table")),
        Mistake("average the raw logits in the uniform term: it is (1/C) sum_c -log p_c, with log p from log_softmax "
                "like the -log p_y term",
                lambda logits, target, smoothing=0.1, ignore_index=-100: _ce(
                    logits, target, smoothing, ignore_index, spread="logits")),
        Mistake("leave out the rows whose target is -100 instead of those equal to the ignore_index argument you "
                "were given (here ignore_index is another id)",
                lambda logits, target, smoothing=0.1, ignore_index=-100: _ce(logits, target, smoothing, -100)),
        Mistake("keep the ignored rows' losses in the sum (computed with a stand-in class) and divide by the kept "
                "rows: zero the ignored rows' losses before summing",
                lambda logits, target, smoothing=0.1, ignore_index=-100: _ce(
                    logits, target, smoothing, ignore_index, zero_ignored=False)),
        Mistake("swap the two weights: eps on -log p_y and 1 - eps on the uniform term; the loss is (1 - eps) * "
                "(-log p_y) + eps * (1/C) sum_c -log p_c",
                lambda logits, target, smoothing=0.1, ignore_index=-100: _ce(
                    logits, target, smoothing, ignore_index, swap_weights=True)),
    ),
    "smoothed_kl": (
        Mistake("compute q log q as q * q.log(): 0 * log 0 must count as 0 (torch.xlogy(q, q))",
                lambda logits, target, smoothing=0.1: _kl(logits, target, smoothing, form="xlog")),
        Mistake("compute KL(p || q): the target distribution q comes first, KL(q || p) = sum q log(q / p)",
                lambda logits, target, smoothing=0.1: _kl(logits, target, smoothing, form="reverse")),
        Mistake("average over the classes as well as the rows: you averaged over the classes too (sum over the "
                "classes, then average over the rows: batchmean)",
                lambda logits, target, smoothing=0.1: _kl(logits, target, smoothing, form="class_mean")),
        Mistake("sum over the rows instead of averaging them (batchmean divides by N)",
                lambda logits, target, smoothing=0.1: _kl(logits, target, smoothing, form="row_sum")),
        Mistake("return the smoothed cross-entropy: KL(q || p) subtracts the entropy H(q) = -sum q log q",
                lambda logits, target, smoothing=0.1: _kl(logits, target, smoothing, form="no_entropy")),
        Mistake("take the log_softmax over the rows (dim=0): the classes are dim=-1",
                lambda logits, target, smoothing=0.1: _kl(logits, target, smoothing, form="rows_softmax")),
        Mistake("compute sum q log(p / q), the KL with its sign flipped",
                lambda logits, target, smoothing=0.1: _kl(logits, target, smoothing, form="flipped")),
        Mistake("give the target class 1 - eps instead of 1 - eps + eps / C in q (the eps / C share goes to every "
                "class, the target included), so q does not sum to 1",
                lambda logits, target, smoothing=0.1: _kl(logits, target, smoothing, form="no_target_share")),
        Mistake("build q with eps / (C - 1) on each wrong class and 1 - eps on the target (the other convention): "
                "torch's smoothed targets spread eps over all C classes, eps / C each, the target included",
                lambda logits, target, smoothing=0.1: _kl(logits, target, smoothing, form="others")),
        Mistake("use the raw logits where log p belongs: log p = log_softmax(logits), the logits minus their "
                "logsumexp", lambda logits, target, smoothing=0.1: _kl(logits, target, smoothing, form="raw_logits")),
        Mistake("divide the total by C, the number of classes, instead of N, the number of rows (batchmean: sum "
                "over the classes, mean over the rows)",
                lambda logits, target, smoothing=0.1: _kl(logits, target, smoothing, form="over_classes")),
    ),
}
