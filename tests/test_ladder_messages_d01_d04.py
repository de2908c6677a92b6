"""The issue-23 rungs of days 1, 2 and 4 say what a wrong answer is only when it is that (seeded inputs,
torch and gptref's references as the trusted side)."""

from __future__ import annotations

import torch

from gptref.grading.ladders.d01_bpe import pair_counts_after, wrong_merges
from gptref.grading.ladders.d02_attention import not_probabilities, same_sum_note
from gptref.grading.ladders.d04_decoding import beam_scores_are_normalised_log_probs, log_prob, same_beams
from gptref.grading.models import TableModel
from gptref.tokenizers.bpe import train_bpe

TOY = " ".join(["low"] * 5 + ["lower"] * 2 + ["newest"] * 6 + ["widest"] * 3)


def test_pair_counts_after_matches_the_reference_trainers_choices():
    """Each of gptref's merges is a most frequent pair of the counts after the merges before it."""
    _, merges = train_bpe(TOY, 256 + 8)
    for step, pair in enumerate(merges):
        counts = pair_counts_after(TOY, merges[:step])
        assert counts[pair] == max(counts.values())


def test_wrong_merges_tells_a_tie_from_a_count():
    """Ties broken right token first (counts right) against each distinct pre-token counted once (counts wrong)."""
    _, merges = train_bpe(TOY, 256 + 6)
    _, right_first = _train_with(TOY, 6, lambda pair, counts: (counts[pair], pair[1], pair[0]))
    _, unweighted = _train_with(TOY, 6, lambda pair, counts: (counts[pair], pair[0], pair[1]), weighted=False)
    assert right_first != merges and unweighted != merges
    tie = wrong_merges(TOY, right_first, merges)
    assert "every one of your merges is a most frequent pair" in tie and "the right token's bytes" in tie
    counting = wrong_merges(TOY, unweighted, merges)
    assert "merge the most frequent pair" in counting and "tie" not in counting


def _train_with(text, n_merges, key, weighted=True):
    """A small BPE trainer of (bytes, bytes) pairs with another tie rule, or counting each pre-token once."""
    import regex

    from gptref.tokenizers.bpe import GPT2_SPLIT_PATTERN
    words = {}
    for piece in regex.findall(GPT2_SPLIT_PATTERN, text):
        word = tuple(bytes([b]) for b in piece.encode())
        words[word] = words.get(word, 0) + 1
    merges = []
    for _ in range(n_merges):
        counts = {}
        for word, n in words.items():
            for pair in zip(word, word[1:]):
                counts[pair] = counts.get(pair, 0) + (n if weighted else 1)
        pair = max(counts, key=lambda p: key(p, counts))
        merges.append(pair)
        merged = {}
        for word, n in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + n
        words = merged
    return None, merges


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
    neither = beam_scores_are_normalised_log_probs([(tokens, total / 3 ** 0.5 + 0.3)], case)
    assert "neither" in neither and "division by |y| ** length_penalty" in neither  # the sum is not the only suspect
    assert "the factor the sum is scaled by is 0" in beam_scores_are_normalised_log_probs([(tokens, 0.0)], case)
    one = [2, 3]  # two tokens: the raw sum is also the sum over one token fewer, and the message says both
    both = beam_scores_are_normalised_log_probs([(one, log_prob(case, one))], dict(case, length_penalty=1.0))
    assert "sum / 1 ** 1.0 (which is also the raw sum, never divided)" in both, both


def test_a_tie_broken_another_way_is_told_apart_by_its_rounding():
    """Two hypotheses of equal exact score: the other one with the same float64 score is a tie, with a score off
    by float32 rounding it is told to compute the search's float64 sums."""
    case = dict(length_penalty=1.0)
    want = [([1, 4], -1.0397207708399179), ([1, 3], -1.0397207708399179)]
    assert same_beams([([1, 3], -1.0397207708399179), ([1, 4], -1.0397207708399179)], want, case) is None
    rounded = same_beams([([1, 3], -1.0397207645), ([1, 4], -1.0397207645)], want, case)
    assert "a tie up to rounding" in rounded and "(.double())" in rounded, rounded


def _mha(x, state, n_heads, context=None, mask=None, values_from_x=False, use_mask=True, queries_from_context=False):
    """gptref's MultiHeadAttention with these weights, or a copy that takes the values from x, the queries from the
    context, or drops the mask."""
    import gptref.attention as reference

    layer = reference.MultiHeadAttention(x.shape[-1], n_heads)
    layer.load_state_dict(state)
    source = x if context is None else context
    q = reference.split_heads(layer.q_proj(source if queries_from_context else x), n_heads)  # (B, H, T, D)
    k = reference.split_heads(layer.k_proj(source), n_heads)                            # (B, H, S, D)
    v = reference.split_heads(layer.v_proj(x if values_from_x else source), n_heads)
    out, _ = reference.scaled_dot_product_attention(q, k, v, mask if use_mask else None)
    return layer.out_proj(reference.merge_heads(out)).detach()                          # (B, T, C)


def test_mha_dependence_finds_a_hidden_key_and_values_from_x():
    import gptref.attention as reference
    from gptref.grading.ladders.d02_attention import mha_dependence_problem

    generator = torch.Generator().manual_seed(3)
    state = {k: torch.randn(v.shape, generator=generator) / 4
             for k, v in reference.MultiHeadAttention(8, 2).state_dict().items()}
    x, context = torch.randn(2, 4, 8, generator=generator), torch.randn(2, 4, 8, generator=generator)
    causal = reference.causal_mask(4)
    real = reference.padding_mask(torch.tensor([[True] * 4, [True, True, False, False]]))
    assert mha_dependence_problem(_mha, x, state, 2, mask=causal) is None
    assert mha_dependence_problem(_mha, x, state, 2, context=context, mask=real) is None
    hidden = mha_dependence_problem(_mha, x, state, 2, mask=causal, use_mask=False)
    assert "whose mask hides key" in hidden
    from_x = mha_dependence_problem(_mha, x, state, 2, context=context, mask=real, values_from_x=True)
    assert "the keys and values must both come from the context" in from_x
    queries = mha_dependence_problem(_mha, x, state, 2, context=context, mask=real, queries_from_context=True)
    assert "does not depend on x at all" in queries and "mask" not in queries  # not blamed on the mask


def test_mistakes_agreeing_keeps_only_a_mistake_equal_on_every_case():
    """A pair counter that misses the last pair equals 'every count is 1' on [1, 2, 3, 1, 2] only."""
    from collections import Counter

    from gptref.grading.explain import Mistake
    from gptref.grading.ladders import mistakes_agreeing

    def misses_last(ids):
        return dict(Counter(zip(ids[:-1], ids[1:-1])))

    ones = Mistake("set each count to 1", lambda ids: dict.fromkeys(zip(ids, ids[1:]), 1))
    itself = Mistake("miss the last pair", misses_last)
    cases = [{"ids": [1, 2, 3, 1, 2]}, {"ids": [7, 7, 7, 7]}]
    assert mistakes_agreeing(misses_last, (ones, itself), cases[:1]) == (ones, itself)
    assert mistakes_agreeing(misses_last, (ones, itself), cases) == (itself,)


def test_agreeing_names_only_a_mistake_equal_on_every_answer_and_runs_nothing_for_a_right_answer():
    """Answers already computed (days 7-10): a mistake that equals one answer by chance is not kept, and no mistake
    runs until a message asks (a right answer pays nothing)."""
    import torch

    from gptref.grading.explain import Mistake
    from gptref.grading.ladders import agreeing

    runs = []

    def doubled(x):
        runs.append("doubled")
        return x * 2

    def squared(x):
        runs.append("squared")
        return x * x

    cases = [{"x": torch.tensor([2.0])}, {"x": torch.tensor([3.0])}]
    answers = [torch.tensor([4.0]), torch.tensor([9.0])]  # the student squares: at x = 2 doubling agrees too
    known = agreeing((Mistake("double x", doubled), Mistake("square x", squared)), cases, answers)
    assert runs == []
    assert [mistake.says for mistake in known] == ["square x"]
    assert [mistake.says for mistake in agreeing((Mistake("double x", doubled),), cases[:1], answers[:1])] == [
        "double x"]
