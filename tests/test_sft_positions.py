"""Day 9's sft_counted_positions: which positions' logits move a loss, against the mask, on seeded random inputs
(the right loss is torch's cross-entropy over the masked positions)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gptref.grading.ladders.d09_nanogpt_finetune import sft_counted_positions


def _case(seed):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(3, 5, generator=g) < 0.5
    mask[:, -1] = True   # at least one response token per row
    mask[0, 0] = False   # and one prompt token
    return dict(logits=torch.randn(3, 5, 7, generator=g, dtype=torch.float64),
                targets=torch.randint(0, 7, (3, 5), generator=g), loss_mask=mask)


def _right(logits, targets, loss_mask):
    return F.cross_entropy(logits[loss_mask], targets[loss_mask])


def test_the_right_loss_counts_the_masked_positions_and_wrong_ones_are_told_what_they_count():
    for seed in range(5):
        case = _case(seed)
        assert sft_counted_positions(_right, case) is None
        every = sft_counted_positions(lambda logits, targets, loss_mask: F.cross_entropy(
            logits.flatten(0, 1), targets.flatten()), case)
        assert "EVERY position" in every
        flipped = sft_counted_positions(lambda logits, targets, loss_mask: _right(logits, targets, ~loss_mask), case)
        assert "complement of the mask" in flipped
        rolled = sft_counted_positions(lambda logits, targets, loss_mask: _right(
            logits, targets, loss_mask.roll(1, dims=1)), case)
        assert "while loss_mask is True only at" in rolled
