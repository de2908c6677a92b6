"""Day 4's ladders: what every correct temperature, top-k, top-p, greedy and beam-search answer has.

A case holds either `model` (a visible test) or `table` (a hidden case: the model is TableModel(table)).
"""

from __future__ import annotations

import torch

from gptref.grading.models import TableModel


def _model(case: dict):
    return case["model"] if "model" in case else TableModel(case["table"])


def _rows(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, x.shape[-1])  # (..., V) -> (rows, V)


# ---------------------------------------------------------------- logits in, logits out


def same_form_as_logits(got, case) -> str | None:
    """A tensor of the logits' shape and dtype."""
    logits = case["logits"]
    if not isinstance(got, torch.Tensor):
        return f"return a tensor of logits, got {type(got).__name__}"
    if got.shape != logits.shape:
        return (f"the result has shape {tuple(got.shape)}; it must keep the logits' shape {tuple(logits.shape)} "
                "(work on the last dimension, keep every other)")
    if got.dtype != logits.dtype:
        return f"the result has dtype {got.dtype}; keep the logits' dtype {logits.dtype}"
    return None


def gaps_divided_by_temperature(got, case) -> str | None:
    """Temperature scales the differences between logits by 1 / temperature (what the softmax sees)."""
    logits, temperature = case["logits"].double(), case["temperature"]
    gaps_got = got.double() - got.double()[..., :1]
    gaps_want = (logits - logits[..., :1]) / temperature
    if not torch.allclose(gaps_got, gaps_want, rtol=1e-4, atol=1e-5):
        ratio = ""
        sel = gaps_want.abs() > 1e-3
        if sel.any():
            r = (gaps_got[sel] / gaps_want[sel]).median().item()
            ratio = f" (yours are {r:.3g} times that)"
        return (f"with temperature={temperature} the gap between any two logits must become gap / temperature"
                f"{ratio}: the softmax only sees these gaps; apply_temperature returns logits, not probabilities")
    return None


def only_kept_or_minus_inf(got, case) -> str | None:
    """Each entry is the input logit unchanged, or -inf (removed)."""
    logits = case["logits"]
    removed = got == float("-inf")
    unchanged = got == logits
    bad = ~(removed | unchanged)
    if bad.any():
        i = tuple(int(j) for j in bad.nonzero()[0])
        return (f"at index {i} you return {got[i].item():.4g} where the logit is {logits[i].item():.4g}: every entry "
                "must be the logit unchanged (kept) or -inf (removed, so the softmax gives it exactly 0; not 0, "
                "not NaN)")
    return None


def keeps_the_largest(got, case) -> str | None:
    """In each row every kept logit is at least every removed one (the filter keeps a top set)."""
    logits, kept = _rows(case["logits"]), _rows(torch.isfinite(got))
    lowest_kept = torch.where(kept, logits, torch.full_like(logits, float("inf"))).min(-1).values
    highest_removed = torch.where(kept, torch.full_like(logits, float("-inf")), logits).max(-1).values
    bad = (highest_removed > lowest_kept).nonzero()
    if len(bad):
        r = int(bad[0])
        return (f"row {r} (of the rows of the last dimension) removes logit {highest_removed[r].item():.4g} but keeps "
                f"the smaller {lowest_kept[r].item():.4g}: keep the LARGEST logits of each row, ranked along the last "
                "dimension")
    return None


def keeps_k_and_ties(got, case) -> str | None:
    """Each row keeps min(k, V) logits, plus any tied with the k-th largest."""
    logits, k = _rows(case["logits"]), case["k"]
    kept = _rows(torch.isfinite(got)).sum(-1)
    kth = logits.sort(-1, descending=True).values[:, min(k, logits.shape[-1]) - 1 :][:, :1]  # (rows, 1)
    want = (logits >= kth).sum(-1)
    bad = (kept != want).nonzero()
    if len(bad):
        r = int(bad[0])
        ties = int(want[r]) - min(k, logits.shape[-1])
        tie_note = f" ({ties} of them tied with the k-th largest: ties are kept)" if ties else ""
        return (f"with k={k}, row {r} keeps {int(kept[r])} logits; it must keep {int(want[r])}{tie_note}: "
                "keep every logit >= the k-th largest, the k-th largest included")
    return None


def keeps_the_top_token(got, case) -> str | None:
    """The most probable token of every row survives top-p, whatever p."""
    logits, kept = _rows(case["logits"]), _rows(torch.isfinite(got))
    top = logits.argmax(-1)
    bad = (~kept[torch.arange(len(top)), top]).nonzero()
    if len(bad):
        r = int(bad[0])
        return (f"row {r} loses its most probable token (id {int(top[r])}): top-p always keeps the top token, "
                "since the mass ranked above it is 0 < p")
    return None


def nucleus_is_smallest_reaching_p(got, case) -> str | None:
    """The kept tokens' probability reaches p, and without the least probable kept one it does not."""
    logits, p = _rows(case["logits"]).double(), case["p"]
    probs = torch.softmax(logits, -1)
    own_probs = torch.softmax(_rows(case["logits"]), -1).double()  # in the logits' dtype: exact for 1/2, 1/4, ...
    kept = _rows(torch.isfinite(got))
    for r in range(probs.shape[0]):
        own = own_probs[r][kept[r]].sort(descending=True).values
        if len(own) > 1 and own.sum().item() - own[-1].item() == p:
            return (f"row {r} keeps a token whose mass ranked above it is exactly p={p}: a token is kept only while "
                    "that mass is strictly below p (remove it when mass_above >= p, not > p)")
        mass = probs[r][kept[r]].sort(descending=True).values
        total = mass.sum().item()
        if total < p - 1e-6 and kept[r].sum() < probs.shape[1]:
            return (f"row {r} keeps tokens of total probability {total:.4f} < p={p}: keep tokens, most probable "
                    "first, until their probability reaches p (the token that crosses p is kept too)")
        if len(mass) > 1 and total - mass[-1].item() >= p + 1e-6:
            return (f"row {r} keeps {len(mass)} tokens, but the most probable {len(mass) - 1} of them already reach "
                    f"p={p} ({total - mass[-1].item():.4f}): a token is kept only while the mass ranked strictly "
                    "above it is < p")
    return None


# ---------------------------------------------------------------- greedy decoding


def ids_with_prompt_first(got, case) -> str | None:
    """An integer (B, T + n) tensor that starts with the prompt, n <= max_new_tokens."""
    idx, n_max = case["idx"], case["max_new_tokens"]
    if not isinstance(got, torch.Tensor):
        return f"return a tensor of token ids, got {type(got).__name__}"
    if got.dtype.is_floating_point or got.dtype == torch.bool:
        return f"return integer token ids (the dtype of idx, {idx.dtype}), got dtype {got.dtype}"
    if got.dim() != 2 or got.shape[0] != idx.shape[0]:
        return f"return a (B, T + n) tensor with one row per prompt (B={idx.shape[0]}), got shape {tuple(got.shape)}"
    width = got.shape[1] - idx.shape[1]
    if width < 0 or not torch.equal(got[:, : idx.shape[1]].long(), idx.long()):
        return (f"each row must start with its prompt (idx has {idx.shape[1]} tokens), then the new tokens: "
                "return the prompt followed by the new tokens, not only the new tokens")
    if width > n_max:
        return f"you generated {width} new tokens, more than max_new_tokens={n_max}"
    return None


def greedy_steps(got, case) -> str | None:
    """Each new token is the argmax of the last position's logits, or eos_id once its row has finished."""
    model, idx, n_max, eos = _model(case), case["idx"], case["max_new_tokens"], case.get("eos_id")
    got = got.long()
    prompt_len, B = idx.shape[1], idx.shape[0]
    done = torch.zeros(B, dtype=torch.bool)
    for t in range(prompt_len, got.shape[1]):
        best = model(got[:, :t])[:, -1, :].argmax(-1)  # (B,) what an unfinished row must pick
        for b in range(B):
            token = int(got[b, t])
            if done[b] and token != eos:
                return (f"row {b} produced eos_id={eos} and then token {token} at new position {t - prompt_len}: "
                        "a finished row is padded with eos_id")
            if not done[b] and token != int(best[b]):
                return (f"row {b}, new position {t - prompt_len}: you chose token {token}, but the argmax of "
                        f"model(seq)[:, -1, :] after the sequence so far is {int(best[b])} (greedy takes the largest "
                        "logit of the last position, over the vocabulary)")
        if eos is not None:
            done |= got[:, t] == eos
    n = got.shape[1] - prompt_len
    if n < n_max and eos is None:
        return (f"you generated {n} new tokens; without an eos_id generate exactly max_new_tokens={n_max} "
                "(one model call and one new token per step)")
    if n < n_max and not bool(done.all()):
        waiting = [b for b in range(B) if not bool(done[b])]
        return (f"you stopped after {n} new tokens, but row {waiting[0]} of your output has no eos_id={eos} among "
                f"them: generate max_new_tokens={n_max} tokens unless every row has finished, and append the token "
                "of the step that finishes the last row before you stop")
    return None


def greedy_stops_when_all_finished(got, case) -> str | None:
    """With eos_id, generation stops at the first step after which every row has finished."""
    eos, prompt_len = case.get("eos_id"), case["idx"].shape[1]
    if eos is None or not isinstance(got, torch.Tensor):
        return None
    new = got[:, prompt_len:].long()
    finished_at = [int((row == eos).nonzero()[0]) if (row == eos).any() else None for row in new]
    if all(f is not None for f in finished_at) and new.shape[1] > max(finished_at) + 1:
        return (f"every row had produced eos_id={eos} after {max(finished_at) + 1} new tokens, but you went on to "
                f"{new.shape[1]}: stop early once every row has produced eos_id")
    return None


# ---------------------------------------------------------------- beam search


def _hypotheses(got):
    return [([int(t) for t in tokens], float(score)) for tokens, score in got]


def beams_are_scored_pairs(got, case) -> str | None:
    """A list of at most beam_size (generated ids, float score) pairs, best first."""
    k = case["beam_size"]
    if not isinstance(got, (list, tuple)):
        return f"return a list of (tokens, score) pairs, got {type(got).__name__}"
    try:
        hyps = _hypotheses(got)
    except (TypeError, ValueError):
        return "each hypothesis must be a pair (list of generated token ids, float score)"
    if len(hyps) > k:
        return f"you returned {len(hyps)} hypotheses; return at most beam_size={k}, best first"
    if not hyps and case["max_new_tokens"] > 0:
        return ("you returned no hypothesis: after the last step every live beam is finished too (by length), "
                "so there is always at least one")
    scores = [s for _, s in hyps]
    if scores != sorted(scores, reverse=True):
        return f"the scores {[round(s, 4) for s in scores]} are not in order: sort the hypotheses best first"
    return None


def log_prob(case: dict, tokens: list[int]) -> float | None:
    """The summed log-probability of a generated continuation under the case's model (None: not a valid one)."""
    model, idx, eos = _model(case), case["idx"], case.get("eos_id")
    V = model(idx[:, :1]).shape[-1]
    if not tokens or any(not 0 <= t < V for t in tokens) or (eos is not None and eos in tokens[:-1]):
        return None
    seq = torch.cat([idx.long(), torch.tensor([tokens])], dim=1)  # (1, T0 + n)
    logits = model(seq[:, :-1])[0, idx.shape[1] - 1 :]  # (n, V) the steps that chose the tokens
    log_probs = torch.log_softmax(logits.double(), dim=-1)
    return float(log_probs[torch.arange(len(tokens)), torch.tensor(tokens)].sum())


def beam_tokens_leave_out_the_prompt(got, case) -> str | None:
    """A hypothesis lists the generated ids only: one that starts with the prompt and is scored as the tokens after
    it has the prompt in front."""
    prompt = [int(t) for t in case["idx"][0]]
    alpha = case.get("length_penalty", 1.0)
    for tokens, score in _hypotheses(got):
        rest = tokens[len(prompt):]
        if tokens[:len(prompt)] != prompt or not rest:
            continue
        own = log_prob(case, tokens)
        if own is not None and abs(own / len(tokens) ** alpha - score) <= 1e-4:
            continue  # scored as generated tokens that happen to begin like the prompt
        total = log_prob(case, rest)
        if total is not None and min(abs(total / n ** alpha - score) for n in (len(rest), len(tokens))) <= 1e-4:
            return (f"hypothesis {tokens} starts with the prompt {prompt}, and its summed log-probability is that of "
                    f"the tokens after it, {rest}: return only the generated ids, the prompt excluded "
                    "(seqs[row, prompt_len:]), and count only them in the length")
    return None


def beam_scores_are_normalised_log_probs(got, case) -> str | None:
    """Each score is the model's summed log-probability of the tokens / (number of generated tokens) ** alpha."""
    alpha = case.get("length_penalty", 1.0)
    wrong = []  # (tokens, score, summed log-probability) of each hypothesis scored wrong
    for tokens, score in _hypotheses(got):
        total = log_prob(case, tokens)
        if total is None:
            return (f"hypothesis {tokens} is not a continuation the search can produce (ids out of range, empty, or "
                    "tokens after eos_id: nothing follows eos_id in a hypothesis)")
        if abs(total / len(tokens) ** alpha - score) > 1e-4:
            wrong.append((tokens, score, total))
    if not wrong:
        return None
    tokens, score, total = wrong[0]
    head = (f"hypothesis {tokens}: score {score:.5f}, but its summed log-probability {total:.5f} / {len(tokens)} ** "
            f"{alpha} = {total / len(tokens) ** alpha:.5f}")
    if all(abs(raw - wrong_score) <= 1e-4 for _, wrong_score, raw in wrong) and \
            any(len(hyp) != 2 for hyp, _, _ in wrong):
        # every wrong score is its raw sum, and on one of them no other length explains it (a raw sum is also the
        # sum over one token fewer only for a hypothesis of 2 tokens; one scored right is not in `wrong`)
        return (f"{head} (every score you got wrong is the raw sum, never divided: divide each sum by "
                f"|y| ** length_penalty, |y| the number of generated tokens, here {len(tokens)} ** {alpha})")
    return head + _what_the_score_is(score, total, tokens, alpha, case)


def _what_the_score_is(score: float, total: float, tokens: list[int], alpha: float, case: dict) -> str:
    """What a wrong score equals, said only when it equals it: the right sum over another length, or the raw sum;
    otherwise where to look (the sum itself)."""
    prompt_len = case["idx"].shape[1]
    raw = abs(total - score) <= 1e-4
    for length in sorted({len(tokens) - 1, len(tokens) + 1, len(tokens) + prompt_len} - {len(tokens), 0}):
        if abs(total / length ** alpha - score) <= 1e-4 and abs(total / len(tokens) ** alpha - score) > 1e-4:
            also = " (which is also the raw sum, never divided)" if raw and length == 1 else ""
            return (f" (your score is that sum / {length} ** {alpha}{also}: |y| counts the generated tokens, the "
                    f"eos included, not the prompt; here {len(tokens)})")
    if raw:
        return f" (your score is the raw sum: divide it by |y| ** length_penalty, here {len(tokens)} ** {alpha})"
    if score == 0 and total != 0:
        return (f" (your score is 0 for a sum of {total:.5f}: either the factor the sum is scaled by is 0 here (look "
                f"at how the sum is divided by |y| ** length_penalty, here {len(tokens)} ** {alpha}) or every "
                f"log-probability you added is 0, as log_softmax over a dimension of one entry gives: take it over "
                f"the vocabulary, dim=-1)")
    return (" (your score is neither that sum over another length nor the raw sum: check both the sum, which adds "
            "log_softmax of each step's logits, taken over the vocabulary (dim=-1), at the chosen token for every "
            "generated token, each beam carrying its own running sum, and its division by |y| ** length_penalty)")


LADDERS = {
    "apply_temperature": (same_form_as_logits, gaps_divided_by_temperature),
    "top_k_filter": (same_form_as_logits, only_kept_or_minus_inf, keeps_the_largest, keeps_k_and_ties),
    "top_p_filter": (same_form_as_logits, only_kept_or_minus_inf, keeps_the_top_token, keeps_the_largest,
                     nucleus_is_smallest_reaching_p),
    "greedy": (ids_with_prompt_first, greedy_steps, greedy_stops_when_all_finished),
    "beam_search": (beams_are_scored_pairs, beam_tokens_leave_out_the_prompt, beam_scores_are_normalised_log_probs),
}


def same_beams(got, expected, case) -> str | None:
    """Values, for visible tests on hand-made tables with ties: the scores must match in order, and the tokens
    wherever a score is not tied (a tie may be broken either way)."""
    hyps, want = _hypotheses(got), _hypotheses(expected)
    if len(hyps) != len(want):
        note = (": the search keeps beam_size live beams at every step, so at least beam_size hypotheses finish; "
                "return the best beam_size of them" if len(hyps) < len(want) else "")
        return f"you returned {len(hyps)} hypotheses, the search finds {len(want)}{note}"
    for i, ((tokens, score), (want_tokens, want_score)) in enumerate(zip(hyps, want)):
        if abs(score - want_score) > 1e-6:
            return (f"hypothesis {i} is {tokens} with score {score:.5f}, but the search's hypothesis {i} is "
                    f"{want_tokens} with score {want_score:.5f}: follow the numbered procedure step by step")
        # the ladder has checked that `score` is these tokens' true score: equal scores are a tie broken another way
        if tokens != want_tokens and abs(score - want_score) > 1e-9:
            return (f"hypothesis {i} is {tokens}, but the search's hypothesis {i} is {want_tokens} "
                    f"(score {want_score:.5f}): the two differ by only {abs(score - want_score):.1g}, a tie up to "
                    f"rounding, and your score carries rounding that float64 sums of log-probabilities do not: "
                    f"compute them as the search does, log_softmax of the logits in float64 (.double()), so that "
                    f"ties come out the same")
    return None
