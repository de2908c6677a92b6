"""Day 2's ladders, shared by the visible tests of several cells: the properties every attention-weight answer
has, one of the three uses of attention, and the heads' split and merge (nothing hidden lives here)."""

from __future__ import annotations

import torch

from gptref.grading.compare import difference, form_difference
from gptref.grading.explain import call, which_mistake
from gptref.grading.ladders import mistakes_agreeing
from gptref.grading.mistakes.d02_attention import MISTAKES


def not_probabilities(w, allowed):
    """Attention weights are probabilities: a finite weight below 0 or above 1 says what the answer holds instead
    (log-probabilities when their exp sums to 1 over the allowed keys of every row that sees some key)."""
    finite = torch.isfinite(w)
    outside = finite & ((w < 0) | (w > 1 + 1e-6))
    if not outside.any():
        return None
    rows = allowed.any(-1)
    exp_sums = w.double().exp().masked_fill(~allowed, 0.0).sum(-1)[rows]  # exp(-inf) = 0 at the masked keys
    if rows.any() and bool(((exp_sums - 1).abs() < 1e-4).all()):
        return ("your weights are log-probabilities (negative, and their exp sums to 1 over the allowed keys): the "
                "weights are the probabilities themselves, softmax, not log_softmax")
    return (f"attention weights are probabilities, between 0 and 1, but one is {w[outside][0].item():.4g}: the "
            f"weights are the softmax of the scores over the keys, not the scores")


def same_sum_note(sums):
    """' (every ... sums to the same c ...)' when the rows that must sum to 1 all sum to one other number: the
    weights were scaled by one factor after the softmax."""
    if sums.numel() < 2 or not bool(((sums - sums[0]).abs() <= 1e-6 * sums[0].abs()).all()):
        return ""
    return (f" (every such query's weights sum to the same {sums[0].item():.4g}: the weights are multiplied by one "
            f"factor after the softmax; a scale such as 1/sqrt(D) belongs to the scores, before the softmax)")


def weights_problem(w, allowed):
    """The first property of attention weights that w breaks, in words (None when it has them all): finite; zero
    for a query that may see no key; exactly 0 at masked keys; summing to 1 over the keys otherwise."""
    has_key = allowed.any(-1)
    outside = not_probabilities(w, allowed)
    if outside:
        return outside
    if not torch.isfinite(w).all():
        if torch.isfinite(w[has_key]).all():
            return ("a query that may see no key has NaN weights (the softmax of a row of -inf is 0/0); such a query "
                    "must get all-zero weights")
        return ("NaN or inf weights for a query that may see some keys: the softmax must stay finite for any "
                "scores (torch.softmax subtracts each row's largest score before exp)")
    if (w[~has_key] != 0).any():
        return f"a query that may see no key must get all-zero weights; one gets {w[~has_key][0].tolist()}"
    if (w[~allowed] != 0).any():
        return f"a masked key must get weight exactly 0; one gets {w[~allowed & (w != 0)][0].item():.4g}"
    sums = w.double().sum(-1)[has_key]
    if ((sums - 1).abs() > 1e-4).any():
        return (f"the weights of each query that may see some key must sum to 1 over the keys; one sums to "
                f"{sums[(sums - 1).abs().argmax()].item():.4g}{same_sum_note(sums) or over_queries_note(w)}")
    return None


def over_queries_note(w):
    """' (... sum to 1 over the queries ...)' when every key's column of weights sums to 1: the softmax ran over the
    queries' dimension instead of the keys'."""
    columns = w.double().sum(-2)  # (..., S): each key's weights summed over the queries
    if w.shape[-2] < 2 or not bool(((columns - 1).abs() < 1e-4).all()):
        return ""
    return (" (instead, each KEY's weights sum to 1 over the queries: the softmax ran over dim -2, the queries; "
            "take it over the LAST dim, the keys: softmax(scores, dim=-1))")


def check_use(fn, args, names, queries, keys, is_token, causal, expected, all_args=None):
    """One of the three uses, in order: a tuple (output, weights) of the right shapes; no weight on later keys
    (causal) nor on padding keys; rows summing to 1; every allowed key weighs > 0; then the values. A known mistake
    is named only when it gives fn's answers on every argument tuple of `all_args` (default: this one)."""
    res = call(fn, *args)
    B, T, S = queries.shape[0], queries.shape[1], keys.shape[1]
    allowed = is_token[:, None, :].expand(B, T, S)
    if causal:
        allowed = allowed & torch.ones(T, S, dtype=torch.bool).tril()

    def fail(problem):
        known = mistakes_agreeing(fn, MISTAKES[fn.__name__], [dict(zip(names, a)) for a in (all_args or [args])])
        raise AssertionError(f"{fn.__name__}: " + problem + which_mistake(res, known, dict(zip(names, args)), expected))

    if not isinstance(res, tuple) or len(res) != 2:
        fail(f"return a tuple (output, weights), got {type(res).__name__}")
    for name, got, want in zip(("output", "weights"), res, expected):
        if form_difference(got, want, name):
            fail(form_difference(got, want, name))
    w = res[1]
    if causal and (w.triu(1) != 0).any():
        b, i, j = (w.triu(1) != 0).nonzero()[0].tolist()
        fail(f"query {i} of sequence {b} gives weight to the later key {j}; a decoder token may not see later tokens")
    padding = (w != 0) & ~is_token[:, None, :]
    if padding.any():
        b, i, j = padding.nonzero()[0].tolist()
        fail(f"query {i} of sequence {b} gives weight {w[b, i, j]:.3g} to key {j}, a padding token: padding keys "
             f"must get weight exactly 0")
    sums = w.sum(-1)
    if ((sums - 1).abs() > 1e-4).any():
        b, i = ((sums - 1).abs() > 1e-4).nonzero()[0].tolist()
        fail(f"the weights of query {i} of sequence {b} sum to {sums[b, i]:.4g}: each query's weights sum to 1 "
             f"over the keys it may see")
    if ((w == 0) & allowed).any():
        b, i, j = ((w == 0) & allowed).nonzero()[0].tolist()
        fail(f"query {i} of sequence {b} gives weight 0 to key {j}, a real token it is allowed to see"
             + ("" if causal else " (there is no causal mask here)"))
    for name, got, want in zip(("weights", "output"), res[::-1], expected[::-1]):
        if difference(got, want, name):
            fail(difference(got, want, name) + (values_note(res, dict(zip(names, args)), queries, keys)
                                                if name == "output" else ""))


def values_note(res, given, queries, keys):
    """For right weights and a wrong output: the output is weights @ values, values = keys' sequence @ w_v; says so,
    and says when the output is weights @ (queries' sequence @ w_v) instead (checked on these inputs)."""
    w, w_v = res[1], given.get("w_v")
    note = (" (your weights are right, so the output should be weights @ V with V = (the keys' sequence) @ w_v: look "
            "at how you compute the values: which sequence, which matrix)")
    if w_v is None or queries is keys or queries.shape != keys.shape:
        return note
    if not difference(res[0], w @ (queries @ w_v)):
        return (" (your weights are right, and your output equals weights @ (the QUERIES' sequence @ w_v): the values "
                "come from the sequence the queries come from; they must come from the keys' sequence, like the keys)")
    return note


def check_heads(fn, x, *args, expected, all_inputs=None):
    """split_heads / merge_heads: the form, then the values (which channel lands where). A known mistake is named
    only when it gives fn's answers on every input tuple of `all_inputs` (default: this one)."""
    got = call(fn, x, *args)
    names = ("x", "n_heads")[:1 + len(args)]

    def fail(problem):
        known = mistakes_agreeing(fn, MISTAKES[fn.__name__],
                                  [dict(zip(names, inputs)) for inputs in (all_inputs or [(x, *args)])])
        raise AssertionError(f"{fn.__name__}: " + problem
                             + which_mistake(got, known, dict(zip(names, (x, *args))), expected))

    if form_difference(got, expected, "the result"):
        fail(form_difference(got, expected, "the result"))
    if difference(got, expected, "the result"):
        fail(difference(got, expected, "the result"))


__all__ = ["check_heads", "check_use", "mha_dependence_problem", "not_probabilities", "over_queries_note",
           "same_sum_note", "weights_problem"]


def mha_dependence_problem(fn, x, state, n_heads, context=None, mask=None, **kwargs):
    """What the layer's output depends on that it may not, found by changing one input position at a time (None
    when nothing is found): a query's output may not change with a key its mask hides, nor, in cross-attention,
    with x at another position (keys and values come from the context)."""
    def run(x_in, context_in):
        extra = {} if context_in is None else {"context": context_in}
        return call(fn, x_in, state, n_heads, mask=mask, **extra, **kwargs).detach()

    base = run(x, context)
    B, T, _ = x.shape
    if context is not None:
        moved_x = x + torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
        if torch.equal(run(moved_x, context), base):
            return ("in cross-attention, changing every position of x leaves the output unchanged: the output does "
                    "not depend on x at all, yet the queries must come from x (q_proj(x)); only the keys and values "
                    "come from the context")
    source = x if context is None else context
    S = source.shape[1]
    allowed = (torch.ones(B, T, S, dtype=torch.bool) if mask is None
               else torch.broadcast_to(mask, (B, n_heads, T, S))[:, 0])                 # (B, T, S)
    generator = torch.Generator().manual_seed(0)
    for s in range(S):
        bumped = source.clone()
        bumped[:, s] += torch.randn(bumped[:, s].shape, generator=generator, dtype=bumped.dtype)
        moved = (run(bumped, None) if context is None else run(x, bumped)) != base     # (B, T, C)
        moved = moved.any(-1) & ~allowed[:, :, s]                   # (B, T): where the hidden key s mattered
        if context is None:
            moved[:, s] = False                                                        # query s itself changed
        if moved.any():
            b, t = moved.nonzero()[0].tolist()
            return (f"changing {'x' if context is None else 'the context'} at position {s} changes the output of "
                    f"query {t} (sequence {b}), whose mask hides key {s}: the mask is not applied, or not the right "
                    f"way round (True = may attend; pass it on to the attention as it is)")
    if context is not None:
        for s in range(T):
            bumped = x.clone()
            bumped[:, s] += torch.randn(bumped[:, s].shape, generator=generator, dtype=bumped.dtype)
            moved = (run(bumped, context) != base).any(-1)                              # (B, T)
            moved[:, s] = False
            if moved.any():
                b, t = moved.nonzero()[0].tolist()
                return (f"in cross-attention, changing x at position {s} changes the output of query {t} (sequence "
                        f"{b}): only the queries come from x; the keys and values must both come from the context")
    return None
