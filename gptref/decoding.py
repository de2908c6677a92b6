"""Choosing the next token: greedy decoding, sampling (temperature, top-k, top-p) and beam search.

A model is any callable mapping (B, T) token ids to (B, T, V) logits; it may also return a tuple whose
first element is the logits (as `gptref.gpt.GPT` returns (logits, loss)).

KV-cache protocol (gptref.gpt.GPT.new_cache returns a gptref.attention.LayerCaches). A model that has a
method `new_cache()` is used through its cache:
    cache = model.new_cache()           # empty; cache.length == 0, capacity cache.max_len
    model(new_ids, cache=cache)         # logits of the new tokens only; their keys/values are stored
    cache.length                        # number of tokens stored (the absolute position of the next one)
    cache.reorder(index)                # keep / duplicate batch rows (beam search)
A model may also have an int attribute `block_size`: the context is cropped to the last block_size
tokens. When a sequence outgrows cache.max_len the cache is dropped and every later step runs the model
on the cropped context, exactly as without a cache, so results never depend on whether a cache is used
(up to float rounding). Pass use_cache=False to force the plain path.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch.nn import functional as F

Model = Callable[..., Any]


# ---------------------------------------------------------------- pure helpers on logits (..., V)


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """logits / temperature: < 1 sharpens the distribution, > 1 flattens it."""
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not temperature > 0:
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Set every logit below the k-th largest of its row to -inf (ties with the k-th are kept); k >= V keeps all."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    if logits.dim() == 0:
        raise ValueError(f"logits must have a vocabulary dimension, got shape {tuple(logits.shape)}")
    if k >= logits.shape[-1]:
        return logits.clone()
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most probable tokens whose probability reaches p, -inf the rest.

    A token is kept when the probability of the tokens ranked above it is < p, so the top token always stays.
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 < p <= 1.0:
        raise ValueError(f"p must be in (0, 1], got {p!r}")
    if logits.dim() == 0:
        raise ValueError(f"logits must have a vocabulary dimension, got shape {tuple(logits.shape)}")
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (..., V)
    sorted_probs = F.softmax(sorted_logits, dim=-1, dtype=torch.promote_types(logits.dtype, torch.float32))
    mass_above = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # probability ranked strictly above
    remove_sorted = mass_above >= p  # never the top token: nothing ranks above it and p > 0
    remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)  # back to vocabulary order
    return logits.masked_fill(remove, float("-inf"))


# ---------------------------------------------------------------- running the model


def _logits_of(output: Any) -> torch.Tensor:
    logits = output[0] if isinstance(output, (tuple, list)) else output
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"model must return (B, T, V) logits, got {shape}")
    return logits


class _NextLogits:
    """Logits of the next token after each row of a growing sequence, through the KV cache when there is one."""

    def __init__(self, model: Model, use_cache: bool = True):
        self.model = model
        block_size = getattr(model, "block_size", None)
        self.block_size = block_size if isinstance(block_size, int) and block_size > 0 else None
        self.cache = model.new_cache() if use_cache and callable(getattr(model, "new_cache", None)) else None

    def __call__(self, seq: torch.Tensor) -> torch.Tensor:
        """seq (B, T) -> float logits (B, V) of position T."""
        if self.cache is not None and seq.shape[1] > self.cache.max_len:
            self.cache = None  # outgrown: from now on run on the cropped context, as without a cache
        if self.cache is not None:
            new = seq[:, self.cache.length :]  # (B, T - cached)
            logits = _logits_of(self.model(new, cache=self.cache))
        else:
            context = seq if self.block_size is None else seq[:, -self.block_size :]
            logits = _logits_of(self.model(context))
        return logits[:, -1, :].float()

    def reorder(self, index: torch.Tensor) -> None:
        if self.cache is not None:
            self.cache.reorder(index)


def _check_common(idx: torch.Tensor, max_new_tokens: int, eos_id: int | None) -> None:
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.shape[1] == 0 or idx.dtype.is_floating_point:
        shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ValueError(f"idx must be a (B, T) integer tensor with T >= 1, got {shape}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
    if eos_id is not None and (isinstance(eos_id, bool) or not isinstance(eos_id, int) or eos_id < 0):
        raise ValueError(f"eos_id must be None or an int >= 0, got {eos_id!r}")


def _generate(model, idx, max_new_tokens, choose, eos_id, use_cache) -> torch.Tensor:
    """The loop shared by greedy and sample: choose (B, V) float logits -> (B,) next ids."""
    next_logits = _NextLogits(model, use_cache)
    seq = idx.long()
    done = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
    with torch.no_grad():
        for _ in range(max_new_tokens):
            token = choose(next_logits(seq))  # (B,)
            if eos_id is not None:
                token = token.masked_fill(done, eos_id)
                done = done | (token == eos_id)
            seq = torch.cat([seq, token[:, None]], dim=1)  # (B, T + 1)
            if eos_id is not None and bool(done.all()):
                break
    return seq


# ---------------------------------------------------------------- the three decoders


def greedy(
    model: Model, idx: torch.Tensor, max_new_tokens: int, eos_id: int | None = None, use_cache: bool = True
) -> torch.Tensor:
    """Append the most probable token max_new_tokens times; idx (B, T) -> (B, T + n).

    With eos_id, a row that has produced it is padded with eos_id, and generation stops early (n <
    max_new_tokens) once every row has. Ties go to the lowest token id (torch.argmax).
    """
    _check_common(idx, max_new_tokens, eos_id)
    return _generate(model, idx, max_new_tokens, lambda logits: logits.argmax(dim=-1), eos_id, use_cache)


def sample(
    model: Model,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    eos_id: int | None = None,
    use_cache: bool = True,
) -> torch.Tensor:
    """Append max_new_tokens sampled tokens; idx (B, T) -> (B, T + n).

    Each step divides the logits by temperature, keeps the top_k, then the top_p nucleus, and draws from
    the softmax with torch.multinomial(generator=generator). temperature == 0 means greedy (argmax; top_k
    and top_p are then irrelevant). eos_id behaves as in `greedy`.
    """
    _check_common(idx, max_new_tokens, eos_id)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0:
        raise ValueError(f"temperature must be a number >= 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be None or an int >= 1, got {top_k!r}")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be None or in (0, 1], got {top_p!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")

    def choose(logits: torch.Tensor) -> torch.Tensor:
        if temperature == 0:
            return logits.argmax(dim=-1)
        logits = apply_temperature(logits, temperature)
        if top_k is not None:
            logits = top_k_filter(logits, top_k)
        if top_p is not None:
            logits = top_p_filter(logits, top_p)
        probs = F.softmax(logits, dim=-1)  # (B, V)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)

    return _generate(model, idx, max_new_tokens, choose, eos_id, use_cache)


def beam_search(
    model: Model,
    idx: torch.Tensor,
    max_new_tokens: int,
    beam_size: int = 4,
    length_penalty: float = 1.0,
    eos_id: int | None = None,
    use_cache: bool = True,
) -> list[tuple[list[int], float]]:
    """Beam search from one prompt idx (1, T) or (T,); returns up to beam_size (tokens, score), best first.

    tokens are the generated ids only (the prompt excluded), ending with eos_id when the hypothesis
    stopped there. score = sum of the generated tokens' log-probs / (length ** length_penalty), where
    length = number of generated tokens, the eos_id included. Each step ranks every one-token extension
    of the live beams by its summed log-prob; walking down that ranking, extensions ending in eos_id are
    finished, the others become the next live beams until beam_size are found. Hypotheses still live
    after max_new_tokens are finished too. The search stops early once no live beam can beat the
    beam_size-th finished score (an exact bound: log-probs are <= 0).
    """
    if isinstance(idx, torch.Tensor) and idx.dim() == 1:
        idx = idx[None, :]
    _check_common(idx, max_new_tokens, eos_id)
    if idx.shape[0] != 1:
        raise ValueError(f"beam_search takes one prompt, idx of shape (1, T) or (T,), got {tuple(idx.shape)}")
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam_size must be an int >= 1, got {beam_size!r}")
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)) or not math.isfinite(
        length_penalty
    ):
        raise ValueError(f"length_penalty must be a finite number, got {length_penalty!r}")

    def normalized(total: float, length: int) -> float:
        return total / (length**length_penalty)

    if max_new_tokens == 0:
        return [([], 0.0)]
    next_logits = _NextLogits(model, use_cache)
    seq = idx.long()  # (n_live, T + step)
    live_scores = torch.zeros(1, dtype=torch.float64, device=idx.device)  # summed log-probs of live beams
    finished: list[tuple[list[int], float]] = []
    prompt_len = idx.shape[1]
    with torch.no_grad():
        for step in range(max_new_tokens):
            log_probs = F.log_softmax(next_logits(seq).double(), dim=-1)  # (n_live, V)
            vocab = log_probs.shape[1]
            candidates = (live_scores[:, None] + log_probs).flatten()  # (n_live * V,)
            k = min(candidates.numel(), beam_size + seq.shape[0])  # enough for beam_size non-eos extensions
            top_scores, top_index = torch.topk(candidates, k)
            keep_rows, keep_tokens, keep_scores = [], [], []
            for score, flat in zip(top_scores.tolist(), top_index.tolist()):
                row, token = divmod(flat, vocab)
                if eos_id is not None and token == eos_id:
                    tokens = seq[row, prompt_len:].tolist() + [token]
                    finished.append((tokens, normalized(score, step + 1)))
                    continue
                keep_rows.append(row)
                keep_tokens.append(token)
                keep_scores.append(score)
                if len(keep_rows) == beam_size:
                    break
            if not keep_rows:
                break
            rows = torch.tensor(keep_rows, device=idx.device)
            seq = torch.cat([seq[rows], torch.tensor(keep_tokens, device=idx.device)[:, None]], dim=1)
            live_scores = torch.tensor(keep_scores, dtype=torch.float64, device=idx.device)
            next_logits.reorder(rows)
            if len(finished) >= beam_size and step + 1 < max_new_tokens:
                worst_kept = sorted((s for _, s in finished), reverse=True)[beam_size - 1]
                # a live beam's sum only falls; its best possible normalized score over the remaining lengths:
                best_len = max_new_tokens if length_penalty >= 0 else step + 2
                if normalized(float(live_scores.max()), best_len) <= worst_kept:
                    seq = seq[:0]
                    break
        for row in range(seq.shape[0]):  # beams alive at the end are finished by length
            tokens = seq[row, prompt_len:].tolist()
            if tokens:
                finished.append((tokens, normalized(float(live_scores[row]), len(tokens))))
    finished.sort(key=lambda hyp: hyp[1], reverse=True)
    return finished[:beam_size]


__all__ = ["greedy", "sample", "beam_search", "apply_temperature", "top_k_filter", "top_p_filter"]
