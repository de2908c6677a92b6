"""Day 2, attention: masks, masked softmax, scaled dot-product attention, its three uses, heads, the layer.

What each verdict checks, in order (the notebook's visible tests climb the same ladder):
- causal_mask: a bool (t_q, t_k) tensor; each query sees its own position, no later key, every earlier key.
- padding_mask: a bool (B, 1, 1, T_k) tensor; True exactly at real tokens.
- masked_softmax, scaled_dot_product_attention: the form; finite weights; masked keys exactly 0; a query that may
  see no key gets zero weights (and, for attention, a zero output); the others sum to 1; output = weights @ v;
  then the values against gptref.attention.
- the three uses: the form; no weight on later keys (decoder) or padding keys; the weights' rungs; every allowed
  key weighs more than 0 (no extra causal mask); then the values.
- split_heads, merge_heads, mha_forward: the form, then the values.

References come from gptref.attention; the masked softmax and the three single-head variants
(encoder self-, decoder self-, encoder-decoder cross-attention) are composed here from it.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import gptref.attention as A
from gptref.grading.compare import difference, form_difference
from gptref.grading.ladders.d02_attention import not_probabilities, over_queries_note, same_sum_note
from gptref.grading.spec import Exercise

DAY = "02_attention"
_MHA = (A.MultiHeadAttention, nn.MultiheadAttention, F.multi_head_attention_forward)


# -- references not in gptref.attention ---------------------------------------------------------
def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax over the last dim where mask is True; a row with no True gets all zeros."""
    d = scores.shape[-1]
    eye = torch.eye(d, dtype=scores.dtype)  # q = scores * sqrt(d), k = I: q k^T / sqrt(d) = scores
    _, weights = A.scaled_dot_product_attention(scores * math.sqrt(d), eye.expand(*scores.shape[:-2], d, d),
                                                eye.expand(*scores.shape[:-2], d, d), mask)
    return weights


def _keys(is_token: torch.Tensor) -> torch.Tensor:
    return A.padding_mask(is_token)[:, 0]  # (B, 1, 1, T_k) -> (B, 1, T_k): one head, 3-D scores


def encoder_self_attention(x, x_is_token, w_q, w_k, w_v):
    """Every token attends to every real token of the same sequence."""
    return A.scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v, _keys(x_is_token))


def decoder_self_attention(y, y_is_token, w_q, w_k, w_v):
    """Each token attends to the real tokens at or before its own position."""
    mask = A.causal_mask(y.shape[1]) & _keys(y_is_token)  # (T, T) & (B, 1, T) -> (B, T, T)
    return A.scaled_dot_product_attention(y @ w_q, y @ w_k, y @ w_v, mask)


def cross_attention(y, x, x_is_token, w_q, w_k, w_v):
    """Decoder tokens (queries) attend to the encoder's real tokens (keys and values)."""
    return A.scaled_dot_product_attention(y @ w_q, x @ w_k, x @ w_v, _keys(x_is_token))


def mha_forward(x, state, n_heads, n_kv_heads=None, context=None, mask=None):
    """gptref's MultiHeadAttention with the weights in `state` (self- or cross-attention)."""
    layer = A.MultiHeadAttention(x.shape[-1], n_heads, n_kv_heads, bias="q_proj.bias" in state)
    layer.load_state_dict(state)
    with torch.no_grad():
        return layer.eval()(x, context=context, mask=mask)


# -- the ladders: what every correct answer has, checked in order before the values ---------------
def _where(index) -> str:
    return str(tuple(int(i) for i in index))


def causal_form(got, case):
    """Rung 1: a bool tensor of shape (t_q, t_k)."""
    t_q = case["t_q"]
    return form_difference(got, torch.zeros(t_q, case.get("t_k") or t_q, dtype=torch.bool), "causal_mask")


def causal_rows(got, case):
    """Rungs 2-4: query i sits at position t_k - t_q + i; it sees itself, every earlier key, and no later key."""
    t_q = case["t_q"]
    t_k = case.get("t_k") or t_q
    position = torch.arange(t_q)[:, None] + (t_k - t_q)  # (t_q, 1)
    keys = torch.arange(t_k)[None, :]  # (1, t_k)
    own = got[keys.expand(t_q, t_k) == position]
    if not bool(own.all()):
        i = int((~own).nonzero()[0])
        return (f"causal_mask({t_q}, {t_k}): query {i} sits at position {t_k - t_q + i} (the queries are the last "
                f"t_q of the t_k positions) and must see its own key there, but that entry is False")
    later = got & (keys > position)
    if bool(later.any()):
        i, j = later.nonzero()[0].tolist()
        return (f"causal_mask({t_q}, {t_k}): query {i} (position {t_k - t_q + i}) may see the later key {j}: "
                f"no query sees the future")
    earlier = ~got & (keys < position)
    if bool(earlier.any()):
        i, j = earlier.nonzero()[0].tolist()
        return (f"causal_mask({t_q}, {t_k}): query {i} (position {t_k - t_q + i}) must see the earlier key {j}, "
                f"but it is False")
    return None


def padding_form(got, case):
    """Rung 1: a bool tensor of shape (B, 1, 1, T_k)."""
    B, T_k = case["key_is_token"].shape
    return form_difference(got, torch.zeros(B, 1, 1, T_k, dtype=torch.bool), "padding_mask")


def padding_values(got, case):
    """Rung 2: True exactly where the key is a real token."""
    real = case["key_is_token"].bool()
    wrong = got[:, 0, 0] != real
    if not bool(wrong.any()):
        return None
    b, j = wrong.nonzero()[0].tolist()
    kind = "a real token" if bool(real[b, j]) else "padding"
    return (f"padding_mask: key {j} of sequence {b} is {kind}, so its entry should be {bool(real[b, j])} "
            f"(True where a query MAY attend), got {bool(got[b, 0, 0, j])}")


def _weight_rungs(weights, allowed, what) -> str | None:
    """Finite; masked keys exactly 0; a query with no key all zeros; the others sum to 1 over the keys."""
    weights = weights.detach()
    has_key = allowed.any(-1)  # (..., T_q)
    outside = not_probabilities(weights, allowed)
    if outside:
        return f"{what}: {outside}"
    bad = ~torch.isfinite(weights)
    if bool(bad.any()):
        row = bad.any(-1)
        where = _where(row.nonzero()[0])
        if bool((row & ~has_key).any()) and not bool((row & has_key).any()):
            return (f"{what}: query {where} may see no key at all and its weights are NaN (the softmax of a row of "
                    f"-inf is 0/0); such a query must get all-zero weights")
        return (f"{what}: query {where} has NaN or inf weights although it may see some keys: the softmax must stay "
                f"finite for any scores (torch.softmax subtracts each row's largest score before exp)")
    starved = ~has_key & (weights != 0).any(-1)
    if bool(starved.any()):
        i = starved.nonzero()[0]
        return (f"{what}: query {_where(i)} may see no key at all, yet its weights are not all 0 (they sum to "
                f"{weights[tuple(i)].double().sum().item():.4g}); such a query must get all-zero weights")
    leak = (weights != 0) & ~allowed
    if bool(leak.any()):
        i = leak.nonzero()[0]
        return (f"{what}: a masked key must get weight exactly 0, but query {_where(i[:-1])} gives key {int(i[-1])} "
                f"(mask False) weight {weights[tuple(i)].item():.4g}")
    sums = weights.double().sum(-1)
    off = has_key & ((sums - 1).abs() > 1e-4)
    if bool(off.any()):
        i = off.nonzero()[0]
        note = ""
        if bool((off & (sums == 0)).any()):
            note = (" (every weight of that query is 0 although it may see keys: if you compute exp yourself, the exp "
                    "of scores far below the number you subtract underflows to 0; subtract each row's OWN largest "
                    "allowed score, amax(dim=-1, keepdim=True), as torch.softmax does)")
        note = note or same_sum_note(sums[has_key]) or over_queries_note(weights)
        return (f"{what}: the weights of each query that may see some key must sum to 1 over the keys; query "
                f"{_where(i)} sums to {sums[tuple(i)].item():.4g}{note}")
    return None


def masked_softmax_form(got, case):
    """Rung 1: a tensor of the scores' shape and dtype."""
    return form_difference(got, case["scores"], "masked_softmax")


def masked_softmax_weights(got, case):
    """Rungs 2-5: finite, masked keys 0, fully masked rows 0, the other rows sum to 1."""
    allowed = case["mask"].bool().expand_as(case["scores"])
    return _weight_rungs(got, allowed, "masked_softmax")


def _attention_form(got, expected_shapes, dtype):
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"return a tuple (output, weights), got {type(got).__name__}"
    for name, tensor, shape in zip(("output", "weights"), got, expected_shapes):
        message = form_difference(tensor, torch.zeros(shape, dtype=dtype), name)
        if message:
            return message
    return None


def sdpa_form(got, case):
    """Rung 1: (output (..., T_q, D_v), weights (..., T_q, T_k)) in q's dtype."""
    q, k, v = case["q"], case["k"], case["v"]
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    return _attention_form(got, (lead + (q.shape[-2], v.shape[-1]), lead + (q.shape[-2], k.shape[-2])), q.dtype)


def _consistent_output(got, values, has_key, what) -> str | None:
    """The output is the weights times the values; a query with no key gets a zero output."""
    out, weights = got
    if bool((out.detach()[~has_key] != 0).any()):
        return f"{what}: a query that may see no key must get a zero output (its weights are all 0)"
    message = difference(out, (weights.detach() @ values).to(out.dtype), "output")
    return None if message is None else f"{what}: the output should be weights @ v for your own weights; {message}"


def sdpa_weights(got, case):
    """Rungs 2-6: the weights' rungs, then output = weights @ v (zero for a query that sees no key)."""
    q, k = case["q"], case["k"]
    scores_shape = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2]) + (q.shape[-2], k.shape[-2])
    mask = case.get("mask")
    allowed = torch.ones(scores_shape, dtype=torch.bool) if mask is None else mask.bool().expand(scores_shape)
    return (_weight_rungs(got[1], allowed, "weights")
            or _consistent_output(got, case["v"], allowed.any(-1), "scaled_dot_product_attention"))


def _variant_ladder(sources, causal: bool, what: str):
    """Rungs for the three uses: form; the weights' rungs under the right mask; every allowed key weighs > 0."""
    query_name, key_name, token_name = sources

    def ladder(got, case):
        queries, keys, is_token = case[query_name], case[key_name], case[token_name]
        B, T, S = queries.shape[0], queries.shape[1], keys.shape[1]
        message = _attention_form(got, ((B, T, case["w_v"].shape[1]), (B, T, S)), queries.dtype)
        if message:
            return message
        allowed = is_token[:, None, :].expand(B, T, S)
        if causal:
            allowed = allowed & A.causal_mask(T, S)
        weights = got[1].detach()
        future = (weights != 0) & ~A.causal_mask(T, S).expand(B, T, S) if causal else None
        if future is not None and bool(future.any()):
            b, i, j = future.nonzero()[0].tolist()
            return (f"{what}: query {i} of sequence {b} gives weight to the later key {j}; a decoder token may not "
                    f"see later tokens")
        padding = (weights != 0) & ~is_token[:, None, :].expand(B, T, S)
        if bool(padding.any()):
            b, i, j = padding.nonzero()[0].tolist()
            return (f"{what}: query {i} of sequence {b} gives weight {weights[b, i, j].item():.3g} to key {j}, "
                    f"a padding "
                    f"token of the {'encoder' if key_name == 'x' and query_name == 'y' else 'sequence'}: padding keys "
                    f"must get weight exactly 0")
        message = _weight_rungs(weights, allowed, what)
        if message:
            return message
        starved = (weights == 0) & allowed
        if bool(starved.any()):
            b, i, j = starved.nonzero()[0].tolist()
            return (f"{what}: query {i} of sequence {b} gives weight 0 to key {j}, a real token it is allowed to see"
                    + ("" if causal else " (no causal mask here: every real key, earlier or later, takes part)"))
        return None

    return ladder


def _compare_weights(got, expected, case) -> str | None:
    """The last rung: the weights against the reference's."""
    return difference(got, expected, "weights")


def _compare_attention(got, expected, case) -> str | None:
    """The last rung: weights, then output, against the reference's."""
    return difference(got[1], expected[1], "weights") or difference(got[0], expected[0], "output")


def split_form(got, case):
    """Rung 1: (B, H, T, D) in x's dtype."""
    B, T, C = case["x"].shape
    H = case["n_heads"]
    return form_difference(got, torch.zeros(B, H, T, C // H, dtype=case["x"].dtype), "split_heads")


def merge_form(got, case):
    """Rung 1: (B, T, H * D) in x's dtype."""
    B, H, T, D = case["x"].shape
    return form_difference(got, torch.zeros(B, T, H * D, dtype=case["x"].dtype), "merge_heads")


def mha_form(got, case):
    """Rung 1: (B, T, C), the shape and dtype of x."""
    return form_difference(got, case["x"], "the layer's output")


# -- cases ----------------------------------------------------------------------------------------
def _gen(seed: int, salt: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1009 + salt)


def _randn(g, *shape, dtype=torch.float32):
    return torch.randn(*shape, generator=g, dtype=dtype)


def _is_token(g, b: int, t: int) -> torch.Tensor:
    """(b, t) bool, right padding, every row with at least one real token, one row full."""
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    lengths[0] = t
    return torch.arange(t)[None, :] < lengths[:, None]  # (b, t)


def _causal_cases(seed):
    g = _gen(seed, 1)
    n = [int(v) for v in torch.randint(2, 9, (3,), generator=g)]
    return [{"t_q": n[0]}, {"t_q": 1}, {"t_q": n[1], "t_k": n[1]}, {"t_q": 3, "t_k": 3 + n[2]},
            {"t_q": 1, "t_k": n[0] + 1}]


def _padding_cases(seed):
    g = _gen(seed, 2)
    cases = [{"key_is_token": _is_token(g, b, t)} for b, t in ((1, 4), (3, 6), (4, 1), (2, 9))]
    flags = _is_token(g, 3, 5)
    flags[2] = False  # a sequence that is all padding
    cases.append({"key_is_token": flags})
    return cases


def _masks(g, lead, t_q, t_k):
    """None, causal, padding, and a random mask with a fully masked row, for scores (*lead, t_q, t_k)."""
    rand = torch.rand(*lead, t_q, t_k, generator=g) < 0.6
    rand[..., 0, :] = False  # the first query sees nothing
    pad = _is_token(g, lead[0], t_k)
    pad = pad[:, None, None, :] if len(lead) == 2 else pad[:, None, :]
    return [None, A.causal_mask(t_q, t_k), pad, rand]


def _softmax_cases(seed):
    g = _gen(seed, 3)
    cases = []
    for lead, t_q, t_k in (((2,), 3, 5), ((2, 3), 4, 4), ((1, 2), 1, 6)):
        for mask in _masks(g, lead, t_q, t_k)[1:]:
            cases.append({"scores": _randn(g, *lead, t_q, t_k) * 3, "mask": mask})
    # rows whose largest score is negative, rows of equal scores, scores large enough to overflow exp, float64
    special = torch.stack([-60 - _randn(g, 5).abs(), torch.full((5,), 2.5), 100 + _randn(g, 5) * 20,
                           _randn(g, 5)])  # (4, 5)
    keep = torch.tensor([[True, False, True, True, False]] * 3 + [[False] * 5])
    cases.append({"scores": special[None], "mask": keep})  # (1, 4, 5), the mask broadcasts
    cases.append({"scores": special.double()[None], "mask": A.causal_mask(4, 5)})
    # allowed scores far below any finite fill value (-1e4, -1e9): only -inf leaves the masked key at exactly 0
    # (and a row of ordinary scores, where a fill of 0 and a fill of -1e9 differ)
    far = torch.stack([-1e10 * (1 + _randn(g, 4, dtype=torch.float64).abs()), 3 * _randn(g, 4, dtype=torch.float64)])
    cases.append({"scores": far[None], "mask": torch.tensor([[True, False, True, True], [False, True, True, False]])})
    return cases


def _sdpa_cases(seed):
    g = _gen(seed, 4)
    cases = []
    for lead, t_q, t_k, d, dv in (((2,), 3, 5, 8, 6), ((2, 3), 4, 4, 16, 16), ((3, 2), 5, 7, 4, 3)):
        for mask in _masks(g, lead, t_q, t_k):
            case = {"q": _randn(g, *lead, t_q, d), "k": _randn(g, *lead, t_k, d), "v": _randn(g, *lead, t_k, dv)}
            if mask is not None:
                case["mask"] = mask
            cases.append(case)
    cases.append({"q": _randn(g, 2, 3, 8, dtype=torch.float64), "k": _randn(g, 2, 3, 8, dtype=torch.float64),
                  "v": _randn(g, 2, 3, 8, dtype=torch.float64), "mask": A.causal_mask(3)})
    # T_q = 1 against one key and against several; one head (4-D, H = 1)
    cases.append({"q": _randn(g, 2, 1, 4), "k": _randn(g, 2, 1, 4), "v": _randn(g, 2, 1, 3)})
    cases.append({"q": _randn(g, 1, 1, 1, 8), "k": _randn(g, 1, 1, 6, 8), "v": _randn(g, 1, 1, 6, 8),
                  "mask": A.padding_mask(torch.tensor([[True, True, True, False, False, False]]))})
    return cases


def _variant_cases(seed, salt, cross=False):
    g = _gen(seed, salt)
    cases = []
    for b, t, s, c, d in ((2, 5, 4, 8, 4), (3, 6, 7, 6, 6), (1, 3, 5, 4, 8)):
        w = {name: _randn(g, c, d) / math.sqrt(c) for name in ("w_q", "w_k", "w_v")}
        if cross:
            cases.append({"y": _randn(g, b, t, c), "x": _randn(g, b, s, c), "x_is_token": _is_token(g, b, s), **w})
        elif salt == 5:
            cases.append({"x": _randn(g, b, t, c), "x_is_token": _is_token(g, b, t), **w})
        else:
            cases.append({"y": _randn(g, b, t, c), "y_is_token": _is_token(g, b, t), **w})
    return cases


def _split_cases(seed):
    g = _gen(seed, 8)
    return [{"x": _randn(g, b, t, h * d), "n_heads": h} for b, t, h, d in ((2, 3, 4, 2), (1, 5, 1, 6), (3, 2, 3, 5))]


def _merge_cases(seed):
    g = _gen(seed, 9)
    return [{"x": _randn(g, b, h, t, d)} for b, h, t, d in ((2, 4, 3, 2), (1, 1, 5, 6), (3, 3, 2, 5))]


def _mha_cases(seed):
    """Self (no mask, causal, causal & padding), cross (padding, S != T), grouped and multi-query heads, no bias."""
    g = _gen(seed, 10)
    cases = []
    for b, t, s, c, h, h_kv, kind, bias in ((2, 5, 5, 16, 4, 4, "none", True), (2, 6, 6, 24, 3, 3, "causal", True),
                                            (3, 4, 4, 16, 2, 2, "causal+pad", True), (2, 4, 7, 16, 4, 4, "cross", True),
                                            (2, 6, 6, 32, 8, 2, "causal", True), (2, 3, 5, 16, 4, 1, "cross", True),
                                            (1, 5, 5, 12, 2, 1, "causal", False)):
        d = c // h
        shapes = {"q_proj": (c, c), "k_proj": (h_kv * d, c), "v_proj": (h_kv * d, c), "out_proj": (c, c)}
        state = {}
        for name, (rows, cols) in shapes.items():
            state[f"{name}.weight"] = _randn(g, rows, cols) / math.sqrt(cols)
            if bias:
                state[f"{name}.bias"] = _randn(g, rows) * 0.5
        case = {"x": _randn(g, b, t, c), "state": state, "n_heads": h}
        if h_kv != h:
            case["n_kv_heads"] = h_kv
        if kind == "cross":
            case["context"] = _randn(g, b, s, c)
            case["mask"] = A.padding_mask(_is_token(g, b, s))
        elif kind == "causal":
            case["mask"] = A.causal_mask(t)
        elif kind == "causal+pad":
            case["mask"] = A.causal_mask(t) & A.padding_mask(_is_token(g, b, t))
        cases.append(case)
    return cases


EXERCISES = [
    Exercise(DAY, "causal_mask", ("test_causal_mask",), _causal_cases, A.causal_mask,
             forbidden=(A.causal_mask,), description="(t_q, t_k) bool mask, bottom-right aligned",
             properties=(causal_form, causal_rows),
             edge_cases=("t_q = 1", "t_k = t_q given and defaulted", "t_k > t_q (queries are the last t_q positions)")),
    Exercise(DAY, "padding_mask", ("test_padding_mask",), _padding_cases, A.padding_mask,
             forbidden=(A.padding_mask,), description="(B, T_k) real-token flags -> (B, 1, 1, T_k) mask",
             properties=(padding_form, padding_values),
             edge_cases=("T_k = 1", "B = 1", "a sequence that is all padding")),
    Exercise(DAY, "masked_softmax", ("test_masked_softmax",), _softmax_cases, masked_softmax,
             compare=_compare_weights, properties=(masked_softmax_form, masked_softmax_weights),
             edge_cases=("a fully masked row", "a mask that broadcasts ((T_q, T_k) or (B, 1, T_k))", "T_q = 1",
                         "rows whose largest score is negative", "rows of equal scores",
                         "scores large enough to overflow exp", "rows far below the largest score of the tensor",
                         "allowed scores far below any finite fill value (-1e9)",
                         "float32 and float64"),
             forbidden=(A.scaled_dot_product_attention, F.scaled_dot_product_attention, masked_softmax),
             description="softmax over allowed keys; a fully masked row gives zeros"),
    Exercise(DAY, "scaled_dot_product_attention", ("test_sdpa",), _sdpa_cases, A.scaled_dot_product_attention,
             compare=_compare_attention, properties=(sdpa_form, sdpa_weights),
             edge_cases=("no mask, causal, padding, and a random mask with a fully masked query", "3-D and 4-D inputs",
                         "one head", "T_q = 1 (one key, and several keys)", "D_v != D", "float32 and float64"),
             forbidden=(A.scaled_dot_product_attention, F.scaled_dot_product_attention, masked_softmax) + _MHA,
             description="softmax(q k^T / sqrt(d) + mask) v, returning (output, weights)"),
    Exercise(DAY, "encoder_self_attention", ("test_encoder_self_attention",), lambda s: _variant_cases(s, 5),
             encoder_self_attention, compare=_compare_attention,
             properties=(_variant_ladder(("x", "x", "x_is_token"), False, "encoder_self_attention"),),
             edge_cases=("right padding of several lengths, one sequence without padding", "B = 1"),
             forbidden=(F.scaled_dot_product_attention,) + _MHA,
             description="single-head self-attention with a padding mask"),
    Exercise(DAY, "decoder_self_attention", ("test_decoder_self_attention",), lambda s: _variant_cases(s, 6),
             decoder_self_attention, compare=_compare_attention,
             properties=(_variant_ladder(("y", "y", "y_is_token"), True, "decoder_self_attention"),),
             edge_cases=("right padding of several lengths, one sequence without padding", "B = 1"),
             forbidden=(F.scaled_dot_product_attention,) + _MHA,
             description="single-head causal self-attention with a padding mask"),
    Exercise(DAY, "cross_attention", ("test_cross_attention",), lambda s: _variant_cases(s, 7, cross=True),
             cross_attention, compare=_compare_attention,
             properties=(_variant_ladder(("y", "x", "x_is_token"), False, "cross_attention"),),
             edge_cases=("encoder shorter and longer than the decoder", "the encoder's padding of several lengths"),
             forbidden=(F.scaled_dot_product_attention,) + _MHA,
             description="single-head encoder-decoder attention with the encoder's padding mask"),
    Exercise(DAY, "split_heads", ("test_split_heads",), _split_cases, A.split_heads,
             forbidden=(A.split_heads,), description="(B, T, H*D) -> (B, H, T, D)", properties=(split_form,),
             edge_cases=("one head", "T = 2 and more, several head sizes")),
    Exercise(DAY, "merge_heads", ("test_merge_heads",), _merge_cases, A.merge_heads,
             forbidden=(A.merge_heads,), description="(B, H, T, D) -> (B, T, H*D)", properties=(merge_form,),
             edge_cases=("one head", "several head sizes")),
    Exercise(DAY, "mha_forward", ("test_multi_head_attention",), _mha_cases, mha_forward,
             forbidden=_MHA, description="the multi-head attention layer (q/k/v/out projections, grouped k/v heads)",
             properties=(mha_form,),
             edge_cases=("no mask, causal, causal and padding", "cross-attention with S != T",
                         "grouped and one k/v head", "no bias", "d_model != head_dim (the scale)")),
]
