"""Day 4's common wrong answers (temperature, top-k, top-p, greedy, beam search), each as a small function.

`says` completes "Your answer is exactly what you get when you ...".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gptref.grading.explain import Mistake

# ---------------------------------------------------------------- filters


def _top_k(logits, k, *, threshold_rank="largest", removed=float("-inf"), ties=True, dim=-1):
    if k >= logits.shape[dim]:
        return logits.clone()
    if dim != -1:  # ranked over the other dimension: the k-th largest of each column
        return logits.masked_fill(logits < torch.topk(logits, k, dim=dim).values[-1:], removed)
    top = torch.topk(logits, k, dim=-1, largest=threshold_rank == "largest")
    if not ties:
        return torch.full_like(logits, float("-inf")).scatter(-1, top.indices, top.values)
    kth = top.values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, removed)


def _top_p(logits, p, *, own_mass=False, unsort="scatter", use_softmax=True, strict=False, descending=True,
           softmax_dim=-1):
    sorted_logits, order = torch.sort(logits, dim=-1, descending=descending)  # (..., V)
    probs = F.softmax(sorted_logits, dim=softmax_dim) if use_softmax else sorted_logits
    mass_above = torch.cumsum(probs, dim=-1) - (0 if own_mass else probs)
    remove_sorted = mass_above > p if strict else mass_above >= p
    if unsort == "sorted":
        return sorted_logits.masked_fill(remove_sorted, float("-inf"))
    if unsort == "scatter":
        remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
    elif unsort == "gather":
        remove = remove_sorted.gather(-1, order)
    else:
        remove = remove_sorted
    return logits.masked_fill(remove, float("-inf"))


# ---------------------------------------------------------------- greedy


def _greedy(model, idx, max_new_tokens, eos_id=None, *, position=-1, pad=True, stop="all", prompt=True,
            truthy=False, last_only=False, prompt_only=False):
    seq = idx
    done = torch.zeros(idx.shape[0], dtype=torch.bool)  # (B,)
    if truthy and not eos_id:  # `if eos_id:` is False for eos_id = 0: no eos handling at all
        eos_id = None
    for _ in range(max_new_tokens):
        given = seq[:, -1:] if last_only else idx if prompt_only else seq
        token = model(given)[:, position, :].argmax(dim=-1)  # (B,)
        if eos_id is not None:
            if pad:
                token = token.masked_fill(done, eos_id)
            done = done | (token == eos_id)
        seq = torch.cat([seq, token[:, None]], dim=1)  # (B, T + 1)
        if eos_id is not None and stop and bool(done.all() if stop == "all" else done.any()):
            break
    return seq if prompt else seq[:, idx.shape[1]:]


# ---------------------------------------------------------------- beam search


def _beam(model, idx, max_new_tokens, beam_size=4, length_penalty=1.0, eos_id=None, *, live_squared=False,
          exponent=True, keep_eos=True, prompt_in_length=False, sort=True, finish_live=True, log_probs=True,
          penalise_eos=True, worst_first=False, penalise_live=True, running_sum=True, eos_stays_live=False,
          softmax_dim=-1):
    prompt_len = idx.shape[1]
    live = beam_size * beam_size if live_squared else beam_size  # live hypotheses kept per step

    def normalized(total, n):
        n = n + prompt_len if prompt_in_length else n
        return total / (n ** length_penalty if exponent else n)

    seqs, sums, finished = idx, torch.zeros(1, dtype=torch.float64), []
    for _ in range(max_new_tokens):
        logits = model(seqs)[:, -1, :].double()
        logp = F.log_softmax(logits, dim=softmax_dim) if log_probs else logits  # (n_live, V)
        V = logp.shape[1]
        cand = (sums[:, None] + logp if running_sum else logp).flatten()  # (n_live * V,)
        rows, tokens, new_sums = [], [], []
        for flat in torch.argsort(cand, descending=not worst_first).tolist():
            row, token = divmod(flat, V)
            if token == eos_id:
                generated = seqs[row, prompt_len:].tolist() + ([token] if keep_eos else [])
                score = normalized(cand[flat].item(), len(generated)) if penalise_eos else cand[flat].item()
                finished.append((generated, score))
                if not eos_stays_live:
                    continue
            rows.append(row)
            tokens.append(token)
            new_sums.append(cand[flat].item())
            if len(rows) == live:
                break
        seqs = torch.cat([seqs[rows], torch.tensor(tokens)[:, None]], dim=1)  # (n_live, T + step + 1)
        sums = torch.tensor(new_sums, dtype=torch.float64)
    for row in range(seqs.shape[0] if finish_live else 0):
        generated = seqs[row, prompt_len:].tolist()
        if generated:
            finished.append((generated, normalized(sums[row].item(), len(generated)) if penalise_live
                             else sums[row].item()))
    if sort:
        finished.sort(key=lambda hyp: hyp[1], reverse=True)
    return finished[:beam_size]


def _beam_with(**slips):
    """beam_search with the exercise's signature and the slips named by `slips` (flags of _beam)."""
    def answer(model, idx, max_new_tokens, beam_size=4, length_penalty=1.0, eos_id=None):
        return _beam(model, idx, max_new_tokens, beam_size, length_penalty, eos_id, **slips)
    return answer


MISTAKES = {
    "apply_temperature": (
        Mistake("multiply the logits by the temperature (temperature must divide the logits, not multiply)",
                lambda logits, temperature: logits * temperature),
        Mistake("subtract the temperature from the logits: that shifts every logit alike and leaves the softmax "
                "unchanged; divide by it", lambda logits, temperature: logits - temperature),
        Mistake("return softmax(logits / temperature): apply_temperature returns the scaled logits, the softmax "
                "comes later", lambda logits, temperature: F.softmax(logits / temperature, dim=-1)),
    ),
    "top_k_filter": (
        Mistake("remove the k-th largest logit too, keeping k - 1 (is the k-th largest itself kept?)",
                lambda logits, k: logits if k >= logits.shape[-1] else logits.masked_fill(
                    logits <= torch.topk(logits, k, dim=-1).values[..., -1:], float("-inf"))),
        Mistake("set the removed logits to 0 instead of -inf (a logit of 0 still gets probability after the "
                "softmax)", lambda logits, k: _top_k(logits, k, removed=0.0)),
        Mistake("compare with the k-th SMALLEST logit (topk with largest=False) instead of the k-th largest",
                lambda logits, k: _top_k(logits, k, threshold_rank="smallest")),
        Mistake("keep exactly the k entries torch.topk returns, dropping the logits tied with the k-th largest "
                "(ties are kept)", lambda logits, k: _top_k(logits, k, ties=False)),
        Mistake("rank along dim 0 (down the rows) instead of along the last dimension, the vocabulary: "
                "torch.topk(logits, k, dim=-1)", lambda logits, k: _top_k(logits, k, dim=0)),
    ),
    "top_p_filter": (
        Mistake("count a token's own probability in the mass above it, which removes the token that crosses p",
                lambda logits, p: _top_p(logits, p, own_mass=True)),
        Mistake("apply the mask made in sorted order to the logits in vocabulary order (put it back with "
                "scatter along the sort's indices)", lambda logits, p: _top_p(logits, p, unsort="none")),
        Mistake("undo the sort with gather(order) instead of scatter(order): gather applies the permutation a "
                "second time instead of inverting it", lambda logits, p: _top_p(logits, p, unsort="gather")),
        Mistake("add up the sorted logits instead of their softmax probabilities",
                lambda logits, p: _top_p(logits, p, use_softmax=False)),
        Mistake("return the filtered logits in sorted order: put them back in the vocabulary order (scatter "
                "along the sort's indices), so that entry i is still token i's logit",
                lambda logits, p: _top_p(logits, p, unsort="sorted")),
        Mistake("keep a token whose mass ranked above it equals p exactly (mass_above > p removes too little): "
                "the rule keeps a token only while that mass is strictly below p, so remove it when mass_above >= p",
                lambda logits, p: _top_p(logits, p, strict=True)),
        Mistake("sort in ascending order (torch.sort's default), so the least probable tokens come first: "
                "sort with descending=True", lambda logits, p: _top_p(logits, p, descending=False)),
        Mistake("take the softmax over dim 0 (across the rows) instead of over each row's tokens: each row's "
                "probabilities are the softmax over the LAST dimension, dim=-1",
                lambda logits, p: _top_p(logits, p, softmax_dim=0)),
    ),
    "greedy": (
        Mistake("read the logits of the first position, model(seq)[:, 0, :]: use the logits of the LAST position",
                lambda model, idx, max_new_tokens, eos_id=None: _greedy(model, idx, max_new_tokens, eos_id,
                                                                         position=0)),
        Mistake("call the model on the last token only, model(seq[:, -1:]): the next token depends on the whole "
                "sequence so far, so call model(seq) and read its last position",
                lambda model, idx, max_new_tokens, eos_id=None: _greedy(model, idx, max_new_tokens, eos_id,
                                                                         last_only=True)),
        Mistake("call the model on the prompt idx at every step, model(idx): the next token depends on the tokens "
                "generated so far too, so call model(seq) on the growing sequence",
                lambda model, idx, max_new_tokens, eos_id=None: _greedy(model, idx, max_new_tokens, eos_id,
                                                                         prompt_only=True)),
        Mistake("put a token other than eos_id after a row's eos_id: you keep generating in a finished row, or pad "
                "it with another token; once a row is finished, pad it with eos_id",
                lambda model, idx, max_new_tokens, eos_id=None: _greedy(model, idx, max_new_tokens, eos_id,
                                                                         pad=False)),
        Mistake("return only the new tokens, without the prompt in front",
                lambda model, idx, max_new_tokens, eos_id=None: _greedy(model, idx, max_new_tokens, eos_id,
                                                                         prompt=False)),
        Mistake("go on to max_new_tokens after every row has produced eos_id (stop once all rows are finished)",
                lambda model, idx, max_new_tokens, eos_id=None: _greedy(model, idx, max_new_tokens, eos_id,
                                                                         stop=None)),
        Mistake("stop as soon as ANY row has produced eos_id instead of when EVERY row has",
                lambda model, idx, max_new_tokens, eos_id=None: _greedy(model, idx, max_new_tokens, eos_id,
                                                                         stop="any")),
        Mistake("test `if eos_id:`, which is False for eos_id = 0, so token 0 never ends a row: test "
                "`if eos_id is not None:`",
                lambda model, idx, max_new_tokens, eos_id=None: _greedy(model, idx, max_new_tokens, eos_id,
                                                                         truthy=True)),
    ),
    "beam_search": (
        Mistake("keep K^2 live hypotheses: your beam keeps K^2 candidates instead of the best K",
                _beam_with(live_squared=True)),
        Mistake("divide by the length instead of length ** length_penalty (divide the summed log-probs by "
                "length ** length_penalty)",
                _beam_with(exponent=False)),
        Mistake("leave eos_id out of a finished hypothesis's length |y| (|y| counts the generated tokens, the eos "
                "included; a hypothesis that produced eos_id is finished, and it ends with eos_id)",
                _beam_with(keep_eos=False)),
        Mistake("count the prompt in the length |y| (it counts only the generated tokens)",
                _beam_with(prompt_in_length=True)),
        Mistake("return the finished hypotheses in the order they finished, without sorting them by score",
                _beam_with(sort=False)),
        Mistake("drop the beams still alive after the last step (they are finished by length too)",
                _beam_with(finish_live=False)),
        Mistake("add up the raw logits instead of log-probabilities: take F.log_softmax of each beam's "
                "next-token logits before adding them to the beam's sum",
                _beam_with(log_probs=False)),
        Mistake("score the hypotheses that end with eos_id by their raw summed log-probability, without the length "
                "penalty: every finished hypothesis, by eos or by length, is scored sum / |y| ** alpha",
                _beam_with(penalise_eos=False)),
        Mistake("leave the length penalty off the beams still alive after the last step: they are finished by "
                "length, and scored sum / |y| ** alpha like those that end with eos_id",
                _beam_with(penalise_live=False)),
        Mistake("score every hypothesis by its raw summed log-probability, never divided: divide the sum by "
                "|y| ** length_penalty, |y| the number of generated tokens",
                _beam_with(penalise_eos=False, penalise_live=False)),
        Mistake("rank the extensions by the new token's log-probability alone: an extension's score adds it to its "
                "beam's running sum, sums[:, None] + logp",
                _beam_with(running_sum=False)),
        Mistake("keep extending a hypothesis after it produced eos_id: once it ends with eos_id it is finished and "
                "leaves the live beams (go on to the next extension without adding it to them)",
                _beam_with(eos_stays_live=True)),
        Mistake("rank the extensions worst first (argsort ascending): walk them from the highest summed "
                "log-probability down, argsort(..., descending=True)",
                _beam_with(worst_first=True)),
        Mistake("take log_softmax over the beams (dim=0) instead of over the vocabulary: each beam's next-token "
                "log-probabilities come from its own row of logits, F.log_softmax(logits, dim=-1)",
                _beam_with(softmax_dim=0)),
    ),
}
