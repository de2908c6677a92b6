"""Day 2's ladders, shared by the visible tests of several cells: the properties every attention-weight answer
has, one of the three uses of attention, and the heads' split and merge (nothing hidden lives here)."""

from __future__ import annotations

import torch

from gptref.grading.compare import difference, form_difference
from gptref.grading.explain import call, which_mistake
from gptref.grading.mistakes.d02_attention import MISTAKES


def weights_problem(w, allowed):
    """The first property of attention weights that w breaks, in words (None when it has them all): finite; zero
    for a query that may see no key; exactly 0 at masked keys; summing to 1 over the keys otherwise."""
    has_key = allowed.any(-1)
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
                f"{sums[(sums - 1).abs().argmax()].item():.4g}")
    return None


def check_use(fn, args, names, queries, keys, is_token, causal, expected):
    """One of the three uses, in order: a tuple (output, weights) of the right shapes; no weight on later keys
    (causal) nor on padding keys; rows summing to 1; every allowed key weighs > 0; then the values."""
    res = call(fn, *args)
    B, T, S = queries.shape[0], queries.shape[1], keys.shape[1]
    allowed = is_token[:, None, :].expand(B, T, S)
    if causal:
        allowed = allowed & torch.ones(T, S, dtype=torch.bool).tril()

    def fail(problem):
        raise AssertionError(f"{fn.__name__}: " + problem
                             + which_mistake(res, MISTAKES[fn.__name__], dict(zip(names, args)), expected))

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
            fail(difference(got, want, name))


def check_heads(fn, x, *args, expected):
    """split_heads / merge_heads: the form, then the values (which channel lands where)."""
    got = call(fn, x, *args)
    names = ("x", "n_heads")[:1 + len(args)]

    def fail(problem):
        raise AssertionError(f"{fn.__name__}: " + problem
                             + which_mistake(got, MISTAKES[fn.__name__], dict(zip(names, (x, *args))), expected))

    if form_difference(got, expected, "the result"):
        fail(form_difference(got, expected, "the result"))
    if difference(got, expected, "the result"):
        fail(difference(got, expected, "the result"))


__all__ = ["check_heads", "check_use", "weights_problem"]
