"""The error patterns of gptref.grading.patterns, through compare.difference, on seeded random tensors."""

from __future__ import annotations

import pytest
import torch

from gptref.grading.compare import difference


@pytest.fixture
def expected():
    return torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def test_transformed_answers_are_recognised(expected):
    assert "last two dimensions swapped" in difference(expected.transpose(-2, -1), expected)
    later = expected.clone()
    later[..., 1:, :] = expected[..., :-1, :]
    assert "one position later along dimension 2" in difference(later, expected)
    earlier = expected.clone()
    earlier[:, :, :, :-1] = expected[:, :, :, 1:]
    assert "one position earlier along dimension 3" in difference(earlier, expected)
    assert "reverse order along dimension 2" in difference(expected.flip(2), expected)


def test_per_row_offsets_and_factors(expected):
    generator = torch.Generator().manual_seed(1)
    shifted = expected + torch.randn(2, 3, 8, 1, generator=generator)
    assert "by one and the same amount" in difference(shifted, expected)
    scaled = expected * (torch.rand(2, 3, 8, 1, generator=generator) + 0.5)
    assert "one and the same multiple" in difference(scaled, expected)


def test_where_the_wrong_entries_lie(expected):
    tail = expected.clone()
    tail[..., 6:] += 1
    assert "only at indices 6 to 7 (the last 2 of 8) along dimension 3" in difference(tail, expected)
    future = expected + torch.ones(8, 8).triu(1)
    assert "above the diagonal" in difference(future, expected)
    first = expected.clone()
    first[:, :, 0] -= 1
    assert "only at index 0 (of 8) along dimension 2" in difference(first, expected)


def test_no_pattern_is_claimed_for_an_error_without_one(expected):
    noisy = expected + torch.randn(expected.shape, generator=torch.Generator().manual_seed(2))
    message = difference(noisy, expected)
    assert message is not None and not message.endswith(")") or "tolerance" in message.rsplit("(", 1)[-1]
    for words in ("swapped", "one position", "reverse", "same amount", "multiple", "diagonal", "only at indices"):
        assert words not in message


def test_a_softmax_of_rescaled_scores_is_said_with_its_factor(expected):
    """torch.softmax of the scores times c, against torch.softmax of the scores, masked keys included."""
    allowed = torch.ones(8, 8, dtype=torch.bool).tril()
    scores = expected.masked_fill(~allowed, float("-inf"))
    reference = torch.softmax(scores, dim=-1)
    sharper = difference(torch.softmax(scores * 4, dim=-1), reference)
    assert "made sharper" in sharper and "times 4" in sharper
    flatter = difference(torch.softmax(scores / 8 ** 0.5, dim=-1), reference)
    assert "made flatter" in flatter and "(1/sqrt(8))" in flatter
    other_dim = difference(torch.softmax(expected, dim=-2), torch.softmax(expected, dim=-1))
    assert "sharper" not in other_dim and "flatter" not in other_dim  # not a rescaling: no factor is claimed


def test_no_diagonal_is_claimed_for_a_tall_table():
    """A (positions, channels) table whose errors grow with the position has entries below the 'diagonal' only
    because it has far more rows than columns: that says nothing about queries and keys."""
    table = torch.randn(400, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    drifted = table + (torch.arange(400, dtype=torch.float64)[:, None] - 100).clamp(min=0) * 1e-3  # rows past 100
    assert "diagonal" not in difference(drifted, table)


def test_an_answer_slightly_off_everywhere_is_told_so_and_a_large_error_is_not(expected):
    tanh_gelu = torch.nn.functional.gelu(expected, approximate="tanh")
    message = difference(tanh_gelu, torch.nn.functional.gelu(expected))
    assert "up to a small difference" in message
    assert "up to a small difference" not in difference(expected * 1.5 + 0.1 * expected.abs(), expected)


def test_moved_values_are_told_apart_from_wrong_values(expected):
    """A view that regroups the dimensions moves every value without changing one; a wrong computation does not."""
    regrouped = expected.reshape(2, 3, 8, 4, 2).transpose(-2, -1).reshape(expected.shape)  # (D, H) read as (H, D)
    assert "exactly the expected values, but many in other places" in difference(regrouped, expected)
    wrong = expected.clone()
    wrong[0, 0, 0, :2] = wrong[0, 0, 0, :2].flip(0) + 1.0  # moved AND changed
    assert "other places" not in difference(wrong, expected)
    ties = torch.zeros(4, 4)
    ties[0, 0], ties[1, 1] = 1.0, 2.0                       # equal values: a multiset match proves nothing
    assert "other places" not in difference(ties.flip(0), ties)


def test_a_flipped_sign_is_called_a_sign_and_not_a_scale_factor(expected):
    message = difference(-expected, expected)
    assert "sign flipped" in message and "scale factor" not in message, message
    halved = difference(-0.5 * expected, expected)
    assert "sign is flipped" in halved and "-0.5 times" in halved, halved


def test_no_per_row_multiple_is_claimed_for_one_row_or_for_a_tiny_relative_error():
    # a float32 slip in a (3,) score vector: every ratio is 1 within 1e-5; there are no rows to tell apart
    generator = torch.Generator().manual_seed(2)
    scores = torch.randn(3, generator=generator, dtype=torch.float64) * 5
    message = difference(scores.float().double() * (1 + 3e-6), scores)
    assert "same multiple" not in message and "up to a small difference" in message, message
    rows = torch.randn(4, 6, generator=generator, dtype=torch.float64)
    assert "same multiple" not in difference(rows * (1 + 2e-6 * torch.arange(4.0)[:, None]), rows)
