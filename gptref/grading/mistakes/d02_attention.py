"""Common wrong answers of day 2 (masks, masked softmax, attention, its three uses, heads),
in the exercises' signatures.

Each `says` completes "Your answer is exactly what you get when you ...". Wrong answers only: the
notebook's visible tests import this module.
"""

from __future__ import annotations

import math

import torch

from gptref.grading.explain import Mistake


# -- masks ------------------------------------------------------------------------------------------
def _positions(t_q, t_k):
    t_k = t_q if t_k is None else t_k
    return torch.arange(t_q)[:, None] + (t_k - t_q), torch.arange(t_k)[None, :]  # (t_q, 1), (1, t_k)


def _causal_transposed(t_q, t_k=None):
    rows, cols = _positions(t_q, t_k)
    return cols >= rows


def _causal_strict(t_q, t_k=None):
    rows, cols = _positions(t_q, t_k)
    return cols < rows


def _causal_top_left(t_q, t_k=None):
    t_k = t_q if t_k is None else t_k
    return torch.ones(t_q, t_k).tril().bool()


def _causal_negative_offset(t_q, t_k=None):
    t_k = t_q if t_k is None else t_k
    return torch.arange(t_k)[None, :] <= torch.arange(t_q)[:, None] + (t_q - t_k)


def _causal_float(t_q, t_k=None):
    rows, cols = _positions(t_q, t_k)
    return (cols <= rows).float()


def _padding_inverted(key_is_token):
    B, T_k = key_is_token.shape
    return ~key_is_token.bool().reshape(B, 1, 1, T_k)


def _padding_no_head_axis(key_is_token):
    return key_is_token.bool()[:, None, :]


def _padding_query_axis(key_is_token):
    B, T_k = key_is_token.shape
    return key_is_token.bool().reshape(B, 1, T_k, 1)


# -- masked softmax and attention -------------------------------------------------------------------
def _softmax_then_mask(scores, mask):
    return torch.softmax(scores, dim=-1) * mask


def _softmax_inverted_mask(scores, mask):
    mask = mask.expand_as(scores)
    any_key = mask.any(dim=-1, keepdim=True)
    weights = torch.softmax(scores.masked_fill(mask, float("-inf")).masked_fill(~any_key, 0.0), dim=-1)
    return weights.masked_fill(~any_key, 0.0)


def _softmax_fill_zero(scores, mask):
    any_key = mask.expand_as(scores).any(dim=-1, keepdim=True)
    return torch.softmax(scores.masked_fill(~mask, 0.0), dim=-1).masked_fill(~any_key, 0.0)


def _softmax_nan_rows(scores, mask):
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def _softmax_uniform_rows(scores, mask):
    return torch.softmax(scores.masked_fill(~mask, -1e9), dim=-1)


def _softmax_uniform_unzeroed(scores, mask):
    """-inf at the masked keys, 0 for the fully masked rows' scores, but those rows are not zeroed after the softmax:
    they come out uniform."""
    mask = mask.expand_as(scores)
    any_key = mask.any(dim=-1, keepdim=True)
    return torch.softmax(scores.masked_fill(~mask, float("-inf")).masked_fill(~any_key, 0.0), dim=-1)


def _softmax_finite_fill(scores, mask):
    """A finite fill value, with the fully masked rows set to zero: right unless the allowed scores lie below it."""
    any_key = mask.expand_as(scores).any(-1, keepdim=True)
    return torch.softmax(scores.masked_fill(~mask, -1e9), dim=-1).masked_fill(~any_key, 0.0)


def _softmax_global_max(scores, mask):
    exps = torch.exp(scores - scores.max()) * mask  # one max for the whole tensor: far rows underflow to 0
    return exps / exps.sum(-1, keepdim=True).clamp_min(1e-30)


def _softmax_first_dim(scores, mask):
    mask = mask.expand_as(scores)
    any_key = mask.any(dim=-1, keepdim=True)
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")).masked_fill(~any_key, 0.0), dim=-2)
    return weights.masked_fill(~any_key, 0.0).nan_to_num(0.0)


def _softmax_first_dim_nan(scores, mask):
    """The same, with the NaN of a key masked for every query left in (0/0 over the queries)."""
    mask = mask.expand_as(scores)
    any_key = mask.any(dim=-1, keepdim=True)
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")).masked_fill(~any_key, 0.0), dim=-2)
    return weights.masked_fill(~any_key, 0.0)


def _attend(q, k, v, mask, scale, combine):
    scores = q @ k.transpose(-2, -1) * scale  # (..., T_q, T_k)
    weights = combine(scores, mask)
    return weights @ v, weights


def _masked(scores, mask):
    if mask is None:
        return torch.softmax(scores, dim=-1)
    mask = mask.expand_as(scores)
    any_key = mask.any(dim=-1, keepdim=True)
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")).masked_fill(~any_key, 0.0), dim=-1)
    return weights.masked_fill(~any_key, 0.0)


def _sdpa_unscaled(q, k, v, mask=None):
    return _attend(q, k, v, mask, 1.0, _masked)


def _sdpa_over_d(q, k, v, mask=None):
    return _attend(q, k, v, mask, 1.0 / q.shape[-1], _masked)


def _sdpa_swapped(q, k, v, mask=None):
    out, weights = _attend(q, k, v, mask, 1.0 / math.sqrt(q.shape[-1]), _masked)
    return weights, out


def _sdpa_mask_after_softmax(q, k, v, mask=None):
    return _attend(q, k, v, mask, 1.0 / math.sqrt(q.shape[-1]),
                   lambda s, m: torch.softmax(s, dim=-1) * (1.0 if m is None else m))


def _sdpa_nan_rows(q, k, v, mask=None):
    return _attend(q, k, v, mask, 1.0 / math.sqrt(q.shape[-1]),
                   lambda s, m: torch.softmax(s if m is None else s.masked_fill(~m, float("-inf")), dim=-1))


def _sdpa_uniform_rows(q, k, v, mask=None):
    return _attend(q, k, v, mask, 1.0 / math.sqrt(q.shape[-1]),
                   lambda s, m: torch.softmax(s if m is None else s.masked_fill(~m, -1e9), dim=-1))


def _sdpa_query_dim(q, k, v, mask=None):
    return _attend(q, k, v, mask, 1.0 / math.sqrt(q.shape[-1]),
                   lambda s, m: _masked(s.transpose(-2, -1), None if m is None else
                                        m.expand_as(s).transpose(-2, -1)).transpose(-2, -1))


def _sdpa_v_dim_scale(q, k, v, mask=None):
    return _attend(q, k, v, mask, 1.0 / math.sqrt(k.shape[-2]), _masked)


def _sdpa_value_size_scale(q, k, v, mask=None):
    return _attend(q, k, v, mask, 1.0 / math.sqrt(v.shape[-1]), _masked)


# -- the three uses (single head, 3-D) --------------------------------------------------------------
def _sdpa(q, k, v, mask):
    return _attend(q, k, v, mask, 1.0 / math.sqrt(q.shape[-1]), _masked)


def _encoder_causal(x, x_is_token, w_q, w_k, w_v):
    mask = _positions(x.shape[1], None)[1] <= _positions(x.shape[1], None)[0]
    return _sdpa(x @ w_q, x @ w_k, x @ w_v, mask & x_is_token[:, None, :])


def _encoder_no_mask(x, x_is_token, w_q, w_k, w_v):
    return _sdpa(x @ w_q, x @ w_k, x @ w_v, None)


def _encoder_query_padding(x, x_is_token, w_q, w_k, w_v):
    return _sdpa(x @ w_q, x @ w_k, x @ w_v, x_is_token[:, :, None])


def _decoder_no_causal(y, y_is_token, w_q, w_k, w_v):
    return _sdpa(y @ w_q, y @ w_k, y @ w_v, y_is_token[:, None, :])


def _decoder_no_padding(y, y_is_token, w_q, w_k, w_v):
    T = y.shape[1]
    return _sdpa(y @ w_q, y @ w_k, y @ w_v, _positions(T, None)[1] <= _positions(T, None)[0])


def _decoder_either_mask(y, y_is_token, w_q, w_k, w_v):
    T = y.shape[1]
    causal = _positions(T, None)[1] <= _positions(T, None)[0]
    return _sdpa(y @ w_q, y @ w_k, y @ w_v, causal | y_is_token[:, None, :])


def _decoder_query_padding(y, y_is_token, w_q, w_k, w_v):
    T = y.shape[1]
    causal = _positions(T, None)[1] <= _positions(T, None)[0]
    return _sdpa(y @ w_q, y @ w_k, y @ w_v, causal & y_is_token[:, :, None])


def _cross_kv_from_y(y, x, x_is_token, w_q, w_k, w_v):
    return _sdpa(y @ w_q, y @ w_k, y @ w_v, x_is_token[:, None, :])


def _cross_queries_from_x(y, x, x_is_token, w_q, w_k, w_v):
    return _sdpa(x @ w_q, y @ w_k, y @ w_v, None)


def _cross_swapped_with_mask(y, x, x_is_token, w_q, w_k, w_v):
    return _sdpa(x @ w_q, y @ w_k, y @ w_v, x_is_token[:, None, :])  # x's padding mask then lands on y's keys


def _cross_no_mask(y, x, x_is_token, w_q, w_k, w_v):
    return _sdpa(y @ w_q, x @ w_k, x @ w_v, None)


def _cross_causal(y, x, x_is_token, w_q, w_k, w_v):
    T, S = y.shape[1], x.shape[1]
    rows, cols = _positions(T, S)
    return _sdpa(y @ w_q, x @ w_k, x @ w_v, (cols <= rows) & x_is_token[:, None, :])


# -- heads ------------------------------------------------------------------------------------------
def _split_reshape(x, n_heads):
    B, T, C = x.shape
    return x.reshape(B, n_heads, T, C // n_heads)


def _split_strided(x, n_heads):
    B, T, C = x.shape
    return x.reshape(B, T, C // n_heads, n_heads).permute(0, 3, 1, 2)  # head h gets channels h, h + H, ...


def _split_sizes_swapped(x, n_heads):
    B, T, C = x.shape
    return x.view(B, T, C // n_heads, n_heads).transpose(1, 2)  # (B, D, T, H)


def _merge_reshape(x):
    B, H, T, D = x.shape
    return x.reshape(B, T, H * D)


def _merge_strided(x):
    B, H, T, D = x.shape
    return x.permute(0, 2, 3, 1).reshape(B, T, H * D)  # channel d * H + h instead of h * D + d


# -- the multi-head attention layer ---------------------------------------------------------------
def _mha(x, state, n_heads, n_kv_heads=None, context=None, mask=None, *, out_proj=True, kv_from_x=False,
         use_mask=True, share="interleave", scale_by_width=False, split="transpose", merge="transpose",
         invert_mask=False):
    """The layer written from the state's tensors, with one switch per slip."""
    def project(name, t):
        bias = state.get(name + ".bias")
        return t @ state[name + ".weight"].T + (0 if bias is None else bias)

    def heads(t, count):  # (B, T, count * D) -> (B, count, T, D)
        B, T, C = t.shape
        if split == "reshape":
            return t.reshape(B, count, T, C // count)
        return t.view(B, T, count, C // count).transpose(1, 2)

    n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
    source = x if context is None or kv_from_x else context
    q = heads(project("q_proj", x), n_heads)
    k, v = heads(project("k_proj", source), n_kv_heads), heads(project("v_proj", source), n_kv_heads)
    group = n_heads // n_kv_heads
    if share == "interleave":
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    else:
        k, v = k.repeat(1, group, 1, 1), v.repeat(1, group, 1, 1)
    width = x.shape[-1] if scale_by_width else q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(width)  # (B, H, T, S)
    if mask is not None and use_mask:
        scores = scores.masked_fill(mask if invert_mask else ~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # a query that sees no key: zero weights
    out = weights @ v  # (B, H, T, D)
    B, H, T, D = out.shape
    merged = out.reshape(B, T, H * D) if merge == "reshape" else out.transpose(1, 2).reshape(B, T, H * D)
    return project("out_proj", merged) if out_proj else merged


MISTAKES = {
    "causal_mask": (
        Mistake("put True on and above the diagonal: yours is transposed (query i must see keys j <= i)",
                _causal_transposed),
        Mistake("leave the diagonal out (j < i): a query may attend to its own position", _causal_strict),
        Mistake("align the triangle top-left (torch.tril of a (t_q, t_k) matrix): the queries are the LAST t_q "
                "positions when t_k > t_q", _causal_top_left),
        Mistake("shift the queries by t_q - t_k: query i sits at position t_k - t_q + i, LATER than i when the "
                "cache makes t_k > t_q", _causal_negative_offset),
        Mistake("return 1.0/0.0 floats: return the bool tensor itself (a comparison, or .bool())", _causal_float),
    ),
    "padding_mask": (
        Mistake("invert it (True where the token is padding, as nn.MultiheadAttention's key_padding_mask): the "
                "course's masks are True where a query MAY attend", _padding_inverted),
        Mistake("leave out the head axis: expected shape (B, 1, 1, T_k)", _padding_no_head_axis),
        Mistake("put the keys on the query axis, (B, 1, T_k, 1): the keys are the LAST axis", _padding_query_axis),
    ),
    "masked_softmax": (
        Mistake("multiply the softmax by the mask afterwards: the other keys' weights then no longer sum to 1; "
                "mask the scores with -inf BEFORE the softmax", _softmax_then_mask),
        Mistake("remove the keys where the mask is True: True means the query MAY attend, keep those",
                _softmax_inverted_mask),
        Mistake("fill the masked scores with 0: exp(0) = 1 still gives those keys weight; fill them with -inf",
                _softmax_fill_zero),
        Mistake("fill with -inf and stop there: a fully masked row gave NaN (0/0); give such rows zeros",
                _softmax_nan_rows),
        Mistake("fill the masked scores with a large finite number (-1e9, -1e4): where every allowed score is below "
                "it, the masked keys take the weight; only -inf gives a masked key exactly 0", _softmax_finite_fill),
        Mistake("leave a fully masked row uniform (what a large negative fill such as -1e9 gives, and scores set to 0 "
                "there without zeroing the row after the softmax): the fully masked row should be all zeros, not "
                "uniform: set it to zero after the softmax", _softmax_uniform_rows),
        Mistake("take the softmax over the queries (dim=-2): take the softmax over the LAST dim (the keys)",
                _softmax_first_dim),
        Mistake("take the softmax over the queries (dim=-2): take the softmax over the LAST dim (the keys)",
                _softmax_first_dim_nan),
        Mistake("leave a fully masked row as the softmax gives it (uniform, its scores being all equal): the fully "
                "masked row should be all zeros, not uniform: set it to zero after the softmax",
                _softmax_uniform_unzeroed),
        Mistake("subtract the largest score of the whole tensor before exp: a row far below it underflows to all "
                "zeros; subtract each row's OWN largest allowed score, amax(dim=-1, keepdim=True)",
                _softmax_global_max),
    ),
    "scaled_dot_product_attention": (
        Mistake("leave out the scale: divide the scores by sqrt(D)", _sdpa_unscaled),
        Mistake("divide by D: you divided the scores by D, divide by sqrt(D)", _sdpa_over_d),
        Mistake("return (weights, output): return (output, weights)", _sdpa_swapped),
        Mistake("multiply the softmax by the mask afterwards: mask the scores with -inf BEFORE the softmax, so the "
                "remaining keys' weights sum to 1", _sdpa_mask_after_softmax),
        Mistake("fill with -inf and stop there: a fully masked query row gave NaN (0/0); give it zero weights",
                _sdpa_nan_rows),
        Mistake("leave a fully masked query's weights uniform (what a large negative fill such as -1e9 gives, and "
                "scores set to 0 there without zeroing its weights after the softmax): the fully masked query must "
                "get a zero output, not an average of every value", _sdpa_uniform_rows),
        Mistake("take the softmax over the queries: take the softmax over the LAST dimension (the keys)",
                _sdpa_query_dim),
        Mistake("scale by sqrt(T_k), the number of keys: the scale is 1/sqrt(D), D the size of a query vector",
                _sdpa_v_dim_scale),
        Mistake("scale by sqrt(D_v), the size of a value vector: the scale is 1/sqrt(D), D the size of a query and "
                "key vector (q.shape[-1])", _sdpa_value_size_scale),
    ),
    "encoder_self_attention": (
        Mistake("add a causal mask: an encoder sees the whole sequence, future tokens included", _encoder_causal),
        Mistake("pass no mask: the padding mask is missing", _encoder_no_mask),
        Mistake("mask the padding QUERIES (x_is_token[:, :, None]): mask the padding KEYS, x_is_token[:, None, :]",
                _encoder_query_padding),
    ),
    "decoder_self_attention": (
        Mistake("use only the padding mask: the causal mask is missing", _decoder_no_causal),
        Mistake("use only the causal mask: the padding mask is missing", _decoder_no_padding),
        Mistake("mask the padding QUERIES (y_is_token[:, :, None]): mask the padding KEYS, y_is_token[:, None, :]",
                _decoder_query_padding),
        Mistake("combine the causal and padding masks with | (a key allowed by either one): a key must be allowed "
                "by BOTH, so combine them with &", _decoder_either_mask),
    ),
    "cross_attention": (
        Mistake("take keys and values from y: the keys and values must come from the encoder's x", _cross_kv_from_y),
        Mistake("take the queries from x and keys/values from y: queries come from the decoder's y, keys and values "
                "from the encoder's x", _cross_queries_from_x),
        Mistake("swap x and y: queries from the encoder's x, keys and values from the decoder's y (x's padding mask "
                "then falls on y's positions); queries come from y, keys and values from x",
                _cross_swapped_with_mask),
        Mistake("pass no mask: decoder queries must not attend to the encoder's padding", _cross_no_mask),
        Mistake("add a causal mask: every decoder token may see every real encoder token", _cross_causal),
    ),
    "split_heads": (
        Mistake("reshape to (B, H, T, D) directly: move the head axis, do not just reshape", _split_reshape),
        Mistake("view the channels as (D, H): head h must get the consecutive channels h*D ... h*D + D - 1, so view "
                "them as (H, D)", _split_strided),
        Mistake("view the channels as (C // n_heads, n_heads), head size before heads: view them as (n_heads, "
                "C // n_heads), the heads first, then move the head axis to position 1", _split_sizes_swapped),
    ),
    "merge_heads": (
        Mistake("reshape (B, H, T, D) to (B, T, H*D) directly: move the head axis back before reshaping",
                _merge_reshape),
        Mistake("put the head axis last before reshaping: channels h*D ... h*D + D - 1 must come from head h, so "
                "order the axes (B, T, H, D)", _merge_strided),
    ),
    "mha_forward": (
        Mistake("leave out the output projection: apply out_proj to the merged heads; without it every output "
                "channel comes from one head only", lambda **kw: _mha(**kw, out_proj=False)),
        Mistake("take the keys and values from x in cross-attention: in cross-attention the keys and values come "
                "from `context`, not from x", lambda **kw: _mha(**kw, kv_from_x=True)),
        Mistake("leave the mask out: the mask is not used; pass it on to the attention",
                lambda **kw: _mha(**kw, use_mask=False)),
        Mistake("pass ~mask (nn.MultiheadAttention's convention, True where NOT allowed): the course's masks are "
                "True where a query MAY attend; pass the mask as it is", lambda **kw: _mha(**kw, invert_mask=True)),
        Mistake("share key/value heads with repeat: query head h must read key/value head h // (n_heads // "
                "n_kv_heads), so use repeat_interleave on the head axis, not repeat",
                lambda **kw: _mha(**kw, share="repeat")),
        Mistake("scale the scores by sqrt(d_model): each head's scores are scaled by 1/sqrt(head_dim), head_dim = "
                "d_model // n_heads", lambda **kw: _mha(**kw, scale_by_width=True)),
        Mistake("split the heads with a plain reshape to (B, H, T, D): view as (B, T, H, D), then move the head "
                "axis before time", lambda **kw: _mha(**kw, split="reshape")),
        Mistake("merge the heads with a plain reshape of (B, H, T, D): move the head axis back after time, then "
                "reshape to (B, T, H * D)", lambda **kw: _mha(**kw, merge="reshape")),
    ),
}
