"""gptref.decoding against brute force: argmax loops, exhaustive beam search, sampling frequencies (chi-square)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.nn import functional as F

from gptref.decoding import apply_temperature, beam_search, greedy, sample, top_k_filter, top_p_filter
from gptref.gpt import GPT, GPTConfig


@pytest.fixture(autouse=True, scope="module")
def _tiny_tensors_one_thread(one_thread):
    """Tiny tensors: one thread is faster (the shared fixture in conftest.py)."""



def tiny_gpt(vocab_size=11, block_size=16, positions="learned", seed=0) -> GPT:
    torch.manual_seed(seed)
    config = GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=2, n_head=2, n_embd=16,
                       positions=positions)
    model = GPT(config).eval()
    with torch.no_grad():  # sharper next-token distributions than the 0.02 init gives
        model.lm_head.weight.mul_(40.0)
    return model


def plain(model: GPT):
    """The same model as a bare callable: no cache, no block_size, logits only."""
    return lambda ids: model(ids[:, -model.config.block_size :])[0]


def chi_square_bound(df: int, z: float = 3.72) -> float:
    """Upper 1e-4 quantile of chi-square(df), Wilson-Hilferty approximation (no scipy here)."""
    a = 2.0 / (9.0 * df)
    return df * (1.0 - a + z * math.sqrt(a)) ** 3


# ---------------------------------------------------------------- pure helpers


def test_top_k_filter_keeps_exactly_the_k_largest():
    logits = torch.randn(4, 20, generator=torch.Generator().manual_seed(0))
    out = top_k_filter(logits, 5)
    kept = torch.isfinite(out)
    expected = torch.zeros_like(kept).scatter(1, torch.topk(logits, 5, dim=1).indices, True)
    assert torch.equal(kept, expected)
    assert torch.equal(out[kept], logits[kept])
    assert torch.equal(top_k_filter(logits, 20), logits) and torch.equal(top_k_filter(logits, 99), logits)


def test_top_p_filter_matches_a_loop_over_sorted_probabilities():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(6, 12, generator=g) * 2
    for p in (0.05, 0.3, 0.5, 0.9, 0.999, 1.0):
        out = top_p_filter(logits, p)
        for row in range(logits.shape[0]):
            probs = F.softmax(logits[row].double(), dim=0)
            keep, total = set(), 0.0
            for token in torch.argsort(probs, descending=True).tolist():  # smallest set reaching p
                keep.add(token)
                total += probs[token].item()
                if total >= p:
                    break
            assert set(torch.isfinite(out[row]).nonzero().flatten().tolist()) == keep, (p, row)
    two_halves = torch.tensor([0.0, 0.0, float("-inf")])  # probabilities exactly 0.5, 0.5, 0
    assert torch.isfinite(top_p_filter(two_halves, 0.5)).sum() == 1, "one token already reaches p = 0.5"
    assert torch.isfinite(top_p_filter(two_halves, 0.51)).sum() == 2


def test_apply_temperature_and_helpers_are_pure():
    logits = torch.randn(3, 7, generator=torch.Generator().manual_seed(2))
    before = logits.clone()
    torch.testing.assert_close(apply_temperature(logits, 0.5), before * 2)
    top_k_filter(logits, 2), top_p_filter(logits, 0.5)
    assert torch.equal(logits, before)


# ---------------------------------------------------------------- greedy and the cache


@pytest.mark.parametrize("positions", ["learned", "rope"])
def test_greedy_is_an_argmax_loop_with_and_without_cache(positions):
    model = tiny_gpt(positions=positions)
    idx = torch.randint(0, 11, (3, 2), generator=torch.Generator().manual_seed(3))
    expected = idx
    with torch.no_grad():
        for _ in range(20):  # past block_size=16: the context is cropped
            logits = model(expected[:, -16:])[0][:, -1]
            expected = torch.cat([expected, logits.argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(greedy(model, idx, 20), expected)
    assert torch.equal(greedy(model, idx, 20, use_cache=False), expected)
    assert torch.equal(greedy(plain(model), idx, 20), expected)


def test_sample_is_the_same_with_and_without_cache():
    model = tiny_gpt(positions="rope")
    idx = torch.randint(0, 11, (4, 3), generator=torch.Generator().manual_seed(4))
    runs = [
        sample(m, idx, 25, temperature=0.8, top_k=6, top_p=0.9, generator=torch.Generator().manual_seed(5), **kw)
        for m, kw in [(model, {}), (model, {"use_cache": False}), (plain(model), {})]
    ]
    assert runs[0].shape == (4, 28)
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])
    assert torch.equal(sample(model, idx, 10, temperature=0), greedy(model, idx, 10))


class Counter:
    """A model whose next token is always (last + 1) mod V, with certainty."""

    def __init__(self, vocab_size: int = 6):
        self.vocab_size = vocab_size

    def __call__(self, ids):
        nxt = (ids + 1) % self.vocab_size  # (B, T)
        return F.one_hot(nxt, self.vocab_size).float() * 50.0  # (B, T, V)


def test_eos_pads_finished_rows_and_stops_when_all_are_done():
    idx = torch.tensor([[0], [2], [4]])
    expected = [[0, 1, 2, 3, 3, 3], [2, 3, 3, 3, 3, 3], [4, 5, 0, 1, 2, 3]]  # the last row needs 5 steps
    assert greedy(Counter(), idx, 10, eos_id=3).tolist() == expected
    assert sample(Counter(), idx, 10, eos_id=3, generator=torch.Generator().manual_seed(0)).tolist() == expected
    assert greedy(Counter(), idx, 3, eos_id=3).tolist() == [row[:4] for row in expected]
    assert beam_search(Counter(), idx[:1], 10, beam_size=2, eos_id=3)[0][0] == [1, 2, 3]


# ---------------------------------------------------------------- sampling frequencies


class Fixed:
    """A model whose next-token logits are always the same vector."""

    def __init__(self, logits):
        self.logits = logits

    def __call__(self, ids):
        return self.logits.expand(ids.shape[0], ids.shape[1], -1)


@pytest.mark.parametrize(
    "temperature,top_k,top_p",
    [(1.0, None, None), (0.7, 4, None), (1.3, None, 0.8), (1.0, 5, 0.7)],
)
def test_sampling_frequencies_match_the_truncated_distribution(temperature, top_k, top_p):
    logits = torch.tensor([2.0, 1.5, 1.2, 1.0, 0.6, 0.3, 0.0, -0.5, -1.0, -2.0])
    n = 40_000
    out = sample(Fixed(logits), torch.zeros(n, 1, dtype=torch.long), 1, temperature=temperature, top_k=top_k,
                 top_p=top_p, generator=torch.Generator().manual_seed(6))
    counts = torch.bincount(out[:, 1], minlength=10).double()
    # the expected distribution, built without the code under test
    probs = F.softmax(logits.double() / temperature, dim=0)
    order = torch.argsort(probs, descending=True).tolist()
    allowed = order[:top_k] if top_k is not None else order
    if top_p is not None:
        renorm = probs[allowed] / probs[allowed].sum()
        total, nucleus = 0.0, []
        for token, q in zip(allowed, renorm.tolist()):
            nucleus.append(token)
            total += q
            if total >= top_p:
                break
        allowed = nucleus
    expected = torch.zeros(10, dtype=torch.float64)
    expected[allowed] = probs[allowed] / probs[allowed].sum()
    assert counts[expected == 0].sum() == 0, "a filtered-out token was sampled"
    kept = expected > 0
    chi2 = (((counts[kept] - n * expected[kept]) ** 2) / (n * expected[kept])).sum().item()
    assert chi2 < chi_square_bound(int(kept.sum()) - 1), (chi2, counts.tolist(), (n * expected).tolist())


def test_sample_draws_from_the_given_generator():
    flat = Fixed(torch.zeros(50))
    idx = torch.zeros(2, 1, dtype=torch.long)
    runs = [sample(flat, idx, 20, generator=torch.Generator().manual_seed(seed)) for seed in (1, 1, 2)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


# ---------------------------------------------------------------- beam search


def exhaustive(model, idx, length, length_penalty, eos_id, vocab):
    """Every hypothesis (eos only at its end, or none and `length` tokens), scored from one batched forward."""
    hyps = []
    for n in range(1, length + 1):
        for tokens in itertools.product(range(vocab), repeat=n):
            has_eos = eos_id is not None and eos_id in tokens
            if (has_eos and tokens.index(eos_id) != n - 1) or (not has_eos and n < length):
                continue
            hyps.append(list(tokens))
    results = []
    with torch.no_grad():
        for tokens in hyps:
            seq = torch.cat([idx, torch.tensor([tokens])], dim=1)
            log_probs = F.log_softmax(model(seq)[0][0, :-1].double(), dim=-1)  # (T + n - 1, V)
            total = sum(log_probs[idx.shape[1] - 1 + i, t].item() for i, t in enumerate(tokens))
            results.append((tokens, total / len(tokens) ** length_penalty))
    return sorted(results, key=lambda r: r[1], reverse=True)


@pytest.mark.parametrize("length_penalty,eos_id", [(1.0, None), (0.0, 2), (1.0, 2), (2.0, 0)])
def test_beam_search_with_a_huge_beam_is_exhaustive_search(length_penalty, eos_id):
    vocab, length = 4, 3
    model = tiny_gpt(vocab_size=vocab, seed=7)
    idx = torch.tensor([[1, 3]])
    expected = exhaustive(model, idx, length, length_penalty, eos_id, vocab)
    got = beam_search(model, idx, length, beam_size=vocab**length, length_penalty=length_penalty, eos_id=eos_id)
    assert [t for t, _ in got] == [t for t, _ in expected]
    for (_, s), (_, e) in zip(got, expected):
        assert math.isclose(s, e, rel_tol=1e-5, abs_tol=1e-6)
    exact = {tuple(t): e for t, e in expected}
    top3 = beam_search(model, idx, length, beam_size=3, length_penalty=length_penalty, eos_id=eos_id,
                       use_cache=False)
    assert len(top3) == 3 and [s for _, s in top3] == sorted((s for _, s in top3), reverse=True)
    assert all(math.isclose(s, exact[tuple(t)], rel_tol=1e-5, abs_tol=1e-6) for t, s in top3)


def reference_beam_search(model, idx, steps, beam_size, length_penalty, eos_id):
    """Textbook beam search on Python lists, full forward each step, never stopping early."""
    live, finished = [([], 0.0)], []
    with torch.no_grad():
        for _ in range(steps):
            candidates = []
            for tokens, total in live:
                seq = torch.cat([idx, torch.tensor([tokens], dtype=torch.long)], dim=1)
                log_probs = F.log_softmax(model(seq)[0][0, -1].double(), dim=-1)
                candidates += [(tokens + [t], total + lp) for t, lp in enumerate(log_probs.tolist())]
            candidates.sort(key=lambda c: c[1], reverse=True)
            live = []
            for tokens, total in candidates:
                if tokens[-1] == eos_id:
                    finished.append((tokens, total / len(tokens) ** length_penalty))
                elif len(live) < beam_size:
                    live.append((tokens, total))
                if len(live) == beam_size:
                    break
    finished += [(t, s / len(t) ** length_penalty) for t, s in live]
    return sorted(finished, key=lambda h: h[1], reverse=True)[:beam_size]


class Bigram:
    """Next-token logits from the last token and the position (random tables; eos made likely)."""

    def __init__(self, seed: int, vocab_size: int = 6, eos_id: int = 1, block_size: int = 16):
        g = torch.Generator().manual_seed(seed)
        self.table = torch.randn(vocab_size, vocab_size, generator=g) * 1.5  # (V, V)
        self.table[:, eos_id] += 0.5
        self.by_position = torch.randn(block_size, vocab_size, generator=g) * 0.3  # (T, V): breaks score ties

    def __call__(self, ids):
        return self.table[ids] + self.by_position[: ids.shape[1]]  # (B, T, V)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("length_penalty", [0.0, 0.6, 1.0, 2.0, -0.5])
def test_beam_search_equals_a_textbook_beam_search(length_penalty, seed):
    """Also checks the early stop: these cases stop after 2 to 8 of the 8 steps."""
    model = Bigram(seed)
    idx = torch.tensor([[2, 3]])
    expected = reference_beam_search(lambda ids: (model(ids),), idx, 8, 3, length_penalty, eos_id=1)
    got = beam_search(model, idx, 8, beam_size=3, length_penalty=length_penalty, eos_id=1)
    assert [t for t, _ in got] == [t for t, _ in expected]
    assert all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) for (_, a), (_, b) in zip(got, expected))


def test_beam_search_of_width_one_is_greedy_and_cache_does_not_matter():
    model = tiny_gpt(positions="rope", seed=8)
    idx = torch.tensor([[4, 5, 6]])
    (tokens, score), = beam_search(model, idx, 18, beam_size=1)  # past block_size=16
    assert tokens == greedy(model, idx, 18)[0, 3:].tolist()
    with_cache = beam_search(model, idx, 18, beam_size=5, eos_id=0)
    without = beam_search(plain(model), idx[0], 18, beam_size=5, eos_id=0)
    assert [t for t, _ in with_cache] == [t for t, _ in without]
    assert all(math.isclose(a, b, abs_tol=1e-5) for (_, a), (_, b) in zip(with_cache, without))


# ---------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda m, i: greedy(m, i, -1), "max_new_tokens"),
        (lambda m, i: greedy(m, i[0], 3), "idx"),
        (lambda m, i: greedy(m, i.float(), 3), "idx"),
        (lambda m, i: greedy(m, i, 3, eos_id=-2), "eos_id"),
        (lambda m, i: sample(m, i, 3, temperature=-1.0), "temperature"),
        (lambda m, i: sample(m, i, 3, top_k=0), "top_k"),
        (lambda m, i: sample(m, i, 3, top_p=0.0), "top_p"),
        (lambda m, i: sample(m, i, 3, top_p=1.5), "top_p"),
        (lambda m, i: sample(m, i, 3, generator=1), "generator"),
        (lambda m, i: beam_search(m, i, 3, beam_size=0), "beam_size"),
        (lambda m, i: beam_search(m, i, 3, length_penalty=float("nan")), "length_penalty"),
        (lambda m, i: beam_search(m, torch.zeros(2, 3, dtype=torch.long), 3), "idx"),
        (lambda m, i: top_k_filter(torch.zeros(5), 0), "k"),
        (lambda m, i: top_p_filter(torch.zeros(5), 1.1), "p"),
        (lambda m, i: apply_temperature(torch.zeros(5), 0.0), "temperature"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(call, name):
    model = tiny_gpt()
    with pytest.raises(ValueError, match=name):
        call(model, torch.zeros(1, 2, dtype=torch.long))
