"""The issue-23 rungs of days 1, 2 and 4 say what a wrong answer is only when it is that (seeded inputs,
torch and gptref's references as the trusted side)."""

from __future__ import annotations

import torch

from gptref.grading.ladders.d01_bpe import pair_counts_after, wrong_merge
from gptref.grading.ladders.d02_attention import not_probabilities, same_sum_note
from gptref.grading.ladders.d04_decoding import beam_scores_are_normalised_log_probs, log_prob
from gptref.grading.models import TableModel
from gptref.tokenizers.bpe import train_bpe

TOY = " ".join(["low"] * 5 + ["lower"] * 2 + ["newest"] * 6 + ["widest"] * 3)


def test_pair_counts_after_matches_the_reference_trainers_choices():
    """Each of gptref's merges is a most frequent pair of the counts after the merges before it."""
    _, merges = train_bpe(TOY, 256 + 8)
    for step, pair in enumerate(merges):
        counts = pair_counts_after(TOY, merges[:step])
        assert counts[pair] == max(counts.values())


def test_wrong_merge_tells_a_tie_from_a_rarer_pair():
    _, merges = train_bpe(TOY, 256 + 2)          # (s, t) then (e, st), both 9 times; (e, s) ties with (s, t)
    assert "a tie" in wrong_merge(TOY, 0, [], (b"e", b"s"), merges[0])
    rarer = wrong_merge(TOY, 0, [], (b"l", b"o"), merges[0])
    assert "occurs 7 times, the expected one 9 times" in rarer and "tie" not in rarer


def test_log_probabilities_are_recognised_and_probabilities_pass():
    scores = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(0))
    allowed = torch.ones(3, 5, dtype=torch.bool).tril().expand(2, 3, 5)
    masked = scores.masked_fill(~allowed, float("-inf"))
    assert not_probabilities(torch.softmax(masked, -1), allowed) is None
    assert "log-probabilities" in not_probabilities(torch.log_softmax(masked, -1), allowed)
    assert "log-probabilities" not in not_probabilities(scores, allowed)   # raw scores: only out of [0, 1]


def test_same_sum_note_only_for_one_common_sum():
    assert "the same 0.5" in same_sum_note(torch.full((4,), 0.5, dtype=torch.float64))
    assert same_sum_note(torch.tensor([0.5, 0.7], dtype=torch.float64)) == ""


def test_a_beam_score_is_said_as_what_it_equals():
    table = torch.randn(4, 5, 5, generator=torch.Generator().manual_seed(2))
    case = dict(model=TableModel(table), idx=torch.tensor([[0]]), length_penalty=0.5, eos_id=None)
    tokens = [1, 3, 2]
    total = log_prob(case, tokens)
    assert beam_scores_are_normalised_log_probs([(tokens, total / 3 ** 0.5)], case) is None
    assert "sum / 2 ** 0.5" in beam_scores_are_normalised_log_probs([(tokens, total / 2 ** 0.5)], case)
    assert "the raw sum" in beam_scores_are_normalised_log_probs([(tokens, total)], case)
    assert "neither" in beam_scores_are_normalised_log_probs([(tokens, total / 3 ** 0.5 + 0.3)], case)
