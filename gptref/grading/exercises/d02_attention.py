"""Day 2, attention: masks, masked softmax, scaled dot-product attention, its three uses, heads, the layer.

References come from gptref.attention; the masked softmax and the three single-head variants
(encoder self-, decoder self-, encoder-decoder cross-attention) are composed here from it.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import gptref.attention as A
from gptref.grading.compare import difference
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


# -- messages -------------------------------------------------------------------------------------
def _weights_hint(got: torch.Tensor, expected: torch.Tensor) -> str | None:
    """Say 'wrong softmax dim' or 'NaN in a fully masked row' before a generic difference."""
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape or not got.dtype.is_floating_point:
        return None
    dead = expected.abs().sum(-1) == 0  # rows with every key masked
    if bool(torch.isnan(got).any()) and bool(dead.any()):
        if bool(torch.isnan(got[dead]).any()) and not bool(torch.isnan(got[~dead]).any()):
            return ("a query whose keys are ALL masked gives NaN; it must get all-zero weights "
                    "(softmax of a row of -inf is 0/0)")
    live = ~dead
    if bool(live.any()) and got.shape[-1] > 1:
        row = got.sum(-1)[live]
        if not torch.allclose(row, torch.ones_like(row), atol=1e-4):
            col = got.sum(-2)
            if got.shape[-2] > 1 and torch.allclose(col, torch.ones_like(col), atol=1e-4):
                return "the weights' columns sum to 1, not their rows: take the softmax over the LAST dim (the keys)"
            return "each query's weights (a row of the last dim) must sum to 1 over the keys it may see"
    if bool(got[dead].abs().sum() > 1e-6) if bool(dead.any()) else False:
        return "a query whose keys are all masked must get all-zero weights"
    return None


def _compare_weights(got, expected, case) -> str | None:
    return _weights_hint(got, expected) or difference(got, expected, "weights")


def _compare_attention(got, expected, case) -> str | None:
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"return a tuple (output, weights), got {type(got).__name__}"
    hint = _weights_hint(got[1], expected[1])
    if hint:
        return f"weights: {hint}"
    return difference(got[1], expected[1], "weights") or difference(got[0], expected[0], "output")


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
    return [{"key_is_token": _is_token(g, b, t)} for b, t in ((1, 4), (3, 6), (4, 1), (2, 9))]


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
             forbidden=(A.causal_mask,), description="(t_q, t_k) bool mask, bottom-right aligned"),
    Exercise(DAY, "padding_mask", ("test_padding_mask",), _padding_cases, A.padding_mask,
             forbidden=(A.padding_mask,), description="(B, T_k) real-token flags -> (B, 1, 1, T_k) mask"),
    Exercise(DAY, "masked_softmax", ("test_masked_softmax",), _softmax_cases, masked_softmax,
             compare=_compare_weights,
             forbidden=(A.scaled_dot_product_attention, F.scaled_dot_product_attention, masked_softmax),
             description="softmax over allowed keys; a fully masked row gives zeros"),
    Exercise(DAY, "scaled_dot_product_attention", ("test_sdpa",), _sdpa_cases, A.scaled_dot_product_attention,
             compare=_compare_attention,
             forbidden=(A.scaled_dot_product_attention, F.scaled_dot_product_attention, masked_softmax) + _MHA,
             description="softmax(q k^T / sqrt(d) + mask) v, returning (output, weights)"),
    Exercise(DAY, "encoder_self_attention", ("test_encoder_self_attention",), lambda s: _variant_cases(s, 5),
             encoder_self_attention, compare=_compare_attention, forbidden=(F.scaled_dot_product_attention,) + _MHA,
             description="single-head self-attention with a padding mask"),
    Exercise(DAY, "decoder_self_attention", ("test_decoder_self_attention",), lambda s: _variant_cases(s, 6),
             decoder_self_attention, compare=_compare_attention, forbidden=(F.scaled_dot_product_attention,) + _MHA,
             description="single-head causal self-attention with a padding mask"),
    Exercise(DAY, "cross_attention", ("test_cross_attention",), lambda s: _variant_cases(s, 7, cross=True),
             cross_attention, compare=_compare_attention, forbidden=(F.scaled_dot_product_attention,) + _MHA,
             description="single-head encoder-decoder attention with the encoder's padding mask"),
    Exercise(DAY, "split_heads", ("test_split_heads",), _split_cases, A.split_heads,
             forbidden=(A.split_heads,), description="(B, T, H*D) -> (B, H, T, D)"),
    Exercise(DAY, "merge_heads", ("test_merge_heads",), _merge_cases, A.merge_heads,
             forbidden=(A.merge_heads,), description="(B, H, T, D) -> (B, T, H*D)"),
    Exercise(DAY, "mha_forward", ("test_multi_head_attention",), _mha_cases, mha_forward,
             forbidden=_MHA, description="the multi-head attention layer (q/k/v/out projections, grouped k/v heads)"),
]
