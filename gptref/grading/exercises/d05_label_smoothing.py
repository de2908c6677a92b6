"""Day 5, label smoothing: the smoothed targets, the smoothed cross-entropy and its KL form."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import gptref.losses as losses
from gptref.grading.ladders.d05_label_smoothing import LADDERS
from gptref.grading.spec import Exercise

DAY = "05_label_smoothing"

# (rows, classes, smoothing); smoothing 0 and 1 are the two ends of the family
_SIZES = [(8, 5, 0.1), (3, 2, 0.0), (16, 11, 0.25), (1, 7, 1.0), (32, 50, 0.1)]


def _targets_cases(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    cases = []
    for n, c, s in _SIZES:
        cases.append({"target": torch.randint(0, c, (n,), generator=g), "n_classes": c, "smoothing": s})
    cases.append({"target": torch.randint(0, 6, (2, 3), generator=g), "n_classes": 6, "smoothing": 0.2})  # (B, T)
    absent = torch.randint(0, 3, (5,), generator=g)  # classes 3..9 never occur in this batch
    cases.append({"target": absent, "n_classes": 10, "smoothing": 0.3})
    cases.append({"target": torch.tensor([], dtype=torch.long), "n_classes": 4, "smoothing": 0.1})  # empty batch
    return cases


def _logits_cases(seed: int, with_ignore: bool) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    cases = []
    for i, (n, c, s) in enumerate(_SIZES):
        logits = torch.randn(n, c, generator=g, dtype=torch.float64) * 3
        target = torch.randint(0, c, (n,), generator=g)
        if with_ignore and i in (0, 2, 4):
            target[torch.rand(n, generator=g) < 0.3] = -100
            target[0] = 1  # at least one row counts
        cases.append({"logits": logits, "target": target, "smoothing": s})
    # large logits in float32: log(softmax(.)) underflows to -inf, log_softmax does not
    logits = torch.randn(6, 9, generator=g) * 100
    cases.append({"logits": logits, "target": torch.randint(0, 9, (6,), generator=g), "smoothing": 0.1})
    # a row of equal logits, a row whose largest logit is negative, a spread-out row
    rows = torch.stack([torch.zeros(4, dtype=torch.float64), torch.randn(4, generator=g, dtype=torch.float64) - 60,
                        torch.randn(4, generator=g, dtype=torch.float64) * 3])
    cases.append({"logits": rows, "target": torch.randint(0, 4, (3,), generator=g), "smoothing": 0.3})
    if with_ignore:
        t = torch.randint(0, 4, (5,), generator=g)
        t[1] = 3  # a custom ignore_index that is also a valid class id
        cases.append({"logits": torch.randn(5, 4, generator=g, dtype=torch.float64), "target": t,
                      "smoothing": 0.2, "ignore_index": 3})
    return cases


def _ce_reference(logits, target, smoothing=0.1, ignore_index=-100):
    return losses.label_smoothing_cross_entropy(logits, target, smoothing, ignore_index=ignore_index)


def _kl_reference(logits, target, smoothing=0.1):
    return losses.label_smoothing_kl(logits, target, smoothing)


_FORBIDDEN_LOSSES = (losses.smoothed_targets, losses.label_smoothing_cross_entropy, losses.label_smoothing_kl,
                     F.cross_entropy, torch.nn.CrossEntropyLoss)

EXERCISES = [
    Exercise(
        day=DAY,
        name="smoothed_targets",
        grade_ids=("test_smoothed_targets",),
        make_cases=_targets_cases,
        reference=losses.smoothed_targets,
        forbidden=(losses.smoothed_targets,),
        description="(1 - eps) one-hot + eps / C, a float32 distribution over the last dimension",
        properties=LADDERS["smoothed_targets"],  # float32, target.shape + (C,); rows >= 0 summing to 1; on/off values
        edge_cases=("smoothing 0 (one-hot) and 1 (uniform)", "C = 2", "(B, T) targets", "classes absent from the batch",
                    "an empty batch"),
    ),
    Exercise(
        day=DAY,
        name="smoothed_cross_entropy",
        grade_ids=("test_smoothed_cross_entropy",),
        make_cases=lambda seed: _logits_cases(seed + 1, with_ignore=True),
        reference=_ce_reference,
        forbidden=_FORBIDDEN_LOSSES,
        description="label-smoothed cross-entropy, mean over the rows whose target is not ignore_index",
        properties=LADDERS["smoothed_cross_entropy"],  # a 0-d tensor of the logits' dtype; finite and >= 0
        edge_cases=("smoothing 0 and 1", "C = 2", "N = 1", "ignored rows (-100)",
                    "a custom ignore_index that is a class",
                    "large float32 logits", "a row of equal logits", "a row whose largest logit is negative",
                    "float32 and float64"),
    ),
    Exercise(
        day=DAY,
        name="smoothed_kl",
        grade_ids=("test_smoothed_kl",),
        make_cases=lambda seed: _logits_cases(seed + 2, with_ignore=False),
        reference=_kl_reference,
        forbidden=_FORBIDDEN_LOSSES + (F.kl_div, torch.nn.KLDivLoss, torch.kl_div),
        description="KL(q || p) between the smoothed targets and the model, averaged over rows",
        properties=LADDERS["smoothed_kl"],  # a 0-d tensor of the logits' dtype; finite and >= 0
        edge_cases=("smoothing 0 (q has zeros) and 1", "C = 2", "N = 1", "large float32 logits",
                    "a row of equal logits", "a row whose largest logit is negative", "float32 and float64"),
    ),
]
