"""Day 8, flash attention: the online softmax statistics, tiled attention and its recomputing backward.

Each exercise checks a ladder of properties before values (see `properties=`): the form (types, shapes,
dtypes), then the concept's invariants (m is the row max and 1 <= l <= row length; attention output is a
weighted average of the values it may see; the rows of dV add up to those of dO and the rows of dK to 0),
then values against torch (softmax statistics, fused attention) or autograd through gptref.flash.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

import gptref.attention as attention
from gptref.flash import flash_attention
from gptref.grading.compare import difference
from gptref.grading.spec import Exercise

DAY = "08_flash_attention"


def _gptref_flash() -> tuple:
    """gptref's own flash attention and online softmax, whichever module currently holds them."""
    found = []
    for module_name in ("gptref.flash", "gptref.flash.tiled"):
        try:
            module = __import__(module_name, fromlist=["_"])
        except ImportError:
            continue
        for attr in ("flash_attention", "online_softmax", "online_softmax_stats"):
            fn = getattr(module, attr, None)
            if fn is not None and fn not in found:
                found.append(fn)
    return tuple(found)


def _tolerance(dtype: torch.dtype) -> dict:
    """Tolerances for a result summed over many terms in another order than the reference's."""
    return {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-7, "atol": 1e-9}


def _form(got, like: tuple[torch.Tensor, ...], names: tuple[str, ...]) -> str | None:
    """The first rung: a tuple of tensors with the shapes and dtypes of `like`."""
    if len(names) > 1 and (not isinstance(got, (tuple, list)) or len(got) != len(names)):
        return f"return a tuple ({', '.join(names)}), got {type(got).__name__}"
    for name, value, model in zip(names, got if len(names) > 1 else (got,), like):
        if not isinstance(value, torch.Tensor):
            return f"{name} should be a tensor, got {type(value).__name__}"
        if tuple(value.shape) != tuple(model.shape):
            return f"{name} has shape {tuple(value.shape)}, expected {tuple(model.shape)}"
        if value.dtype != model.dtype:
            return f"{name} has dtype {value.dtype}, expected {model.dtype} (the inputs' dtype)"
    return None


def _first_bad(mask: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(i) for i in mask.nonzero()[0])


# ---------------------------------------------------------------- online softmax statistics


def _stats_cases(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    cases = []
    for shape, block, scale, dtype in [
        ((4, 40), 8, 1.0, torch.float64),
        ((2, 3, 100), 16, 3.0, torch.float32),
        ((1, 257), 64, 2.0, torch.float64),
        ((5, 12), 1, 1.0, torch.float64),  # one score at a time
        ((3, 30), 7, 1.0, torch.float64),  # blocks of unequal length (the last is shorter)
        ((2, 10), 16, 1.0, torch.float64),  # one block holds the whole row
    ]:
        x = torch.randn(shape, generator=g, dtype=dtype) * scale
        x = x + torch.linspace(0, 4, shape[-1], dtype=dtype)  # the max tends to grow block after block
        cases.append({"blocks": list(x.split(block, dim=-1))})
    big = torch.randn(3, 50, generator=g, dtype=torch.float64) * 30 + 800  # exp overflows without the max
    cases.append({"blocks": list(big.split(10, dim=-1))})
    negative = -5 - torch.rand(3, 24, generator=g, dtype=torch.float64) * 3  # every score negative
    negative[1] = -2.5  # an all-equal row
    negative[2] = negative[2].sort(descending=True).values  # the max in the first block: later ones never grow it
    cases.append({"blocks": list(negative.split(8, dim=-1))})
    masked = torch.randn(2, 48, generator=g, dtype=torch.float64)
    masked[0, 20:] = float("-inf")  # masked scores: whole later blocks of -inf
    masked[1, 3:9] = float("-inf")
    cases.append({"blocks": list(masked.split(12, dim=-1))})
    return cases


def _torch_stats(blocks):
    """The trusted statistics: the row max and the sum of exp(x - max), from the whole row at once."""
    x = torch.cat(list(blocks), dim=-1)
    m = x.amax(dim=-1)
    return m, torch.exp(x - m[..., None]).sum(dim=-1)


def stats_form(got, case) -> str | None:
    """Rung 1: a pair (m, l) of tensors with one value per row, in the scores' dtype."""
    first = case["blocks"][0]
    row = torch.empty(first.shape[:-1], dtype=first.dtype)
    return _form(got, (row, row), ("m", "l"))


def stats_max(got, case) -> str | None:
    """Rung 2: m is exactly the largest score of each row."""
    x = torch.cat(list(case["blocks"]), dim=-1)
    m, true_max = got[0], x.amax(dim=-1)
    wrong = m != true_max
    if wrong.any():
        i = _first_bad(wrong)
        return (f"m must be each row's largest score after the last block; row {i} has m = {m[i].item():.6g} but its "
                f"largest score is {true_max[i].item():.6g}: look at where m starts and how it is updated after "
                f"each block")
    return None


def stats_sum_range(got, case) -> str | None:
    """Rung 3: 1 <= l <= number of finite scores (the max contributes exp(0) = 1, every other term <= 1)."""
    x = torch.cat(list(case["blocks"]), dim=-1)
    row_sum = got[1].to(x.dtype)
    count = torch.isfinite(x).sum(dim=-1).to(x.dtype)
    slack = 1e-4 if x.dtype == torch.float32 else 1e-9
    bad = ~torch.isfinite(row_sum) | (row_sum < 1 - slack) | (row_sum > count * (1 + slack))
    if bad.any():
        i = _first_bad(bad)
        return (f"l must lie between 1 (the max's own term exp(0)) and the number of scores in the row (each term "
                f"exp(x - m) is at most 1); row {i} has l = {row_sum[i].item():.6g} with {int(count[i])} scores: "
                f"look at the exponent inside exp and the factor that carries the old sum over to a new max")
    return None


def _compare_stats(got, expected, case) -> str | None:
    """Values: m against the row max, then l against sum(exp(x - m)) of the whole row, to the dtype's tolerance."""
    return (difference(got[0], expected[0], "m (the row max)", **_tolerance(expected[0].dtype))
            or difference(got[1], expected[1], "l (the sum of exp(x - m) over the whole row)",
                          **_tolerance(expected[1].dtype)))


# ---------------------------------------------------------------- tiled attention


def _attention_cases(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed + 1)
    cases = []
    for lead, t_q, t_k, d, bq, bk, causal, dtype, scale in [
        ((2,), 32, 32, 8, 8, 8, False, torch.float64, 2.0),
        ((1, 2), 50, 70, 16, 16, 32, False, torch.float64, 2.0),  # T not a multiple of the blocks
        ((2, 3), 37, 37, 8, 16, 8, True, torch.float64, 2.0),
        ((1,), 64, 64, 32, 64, 16, True, torch.float32, 2.0),
        ((3,), 5, 9, 4, 16, 16, False, torch.float64, 2.0),  # blocks larger than T
        ((1, 1), 48, 48, 8, 8, 16, True, torch.float64, 2.0),  # one head
        ((), 20, 20, 8, 8, 4, True, torch.float64, 2.0),  # no leading dimensions
        ((2,), 1, 1, 8, 4, 4, True, torch.float64, 2.0),  # T = 1
        ((2,), 24, 24, 8, 8, 8, False, torch.float64, 6.0),  # large scores: the max changes a lot between tiles
    ]:
        q = torch.randn(*lead, t_q, d, generator=g, dtype=dtype) * scale
        k = torch.randn(*lead, t_k, d, generator=g, dtype=dtype) * scale
        v = torch.randn(*lead, t_k, d, generator=g, dtype=dtype)
        cases.append({"q": q, "k": k, "v": v, "block_q": bq, "block_k": bk, "causal": causal})
    q = torch.randn(2, 16, 8, generator=g, dtype=torch.float64)
    k = torch.randn(2, 16, 8, generator=g, dtype=torch.float64).expand(2, 16, 8).clone()
    k[:] = k[:, :1]  # all keys equal: every score of a row is the same, the weights are uniform
    cases.append({"q": q, "k": k, "v": torch.randn(2, 16, 8, generator=g, dtype=torch.float64),
                  "block_q": 8, "block_k": 4, "causal": True})
    return cases


def _torch_attention(q, k, v, block_q=64, block_k=64, causal=False):
    """torch's fused attention (the blocks do not change the mathematical result)."""
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def attention_form(got, case) -> str | None:
    """Rung 1: a tensor (..., T_q, D) in the inputs' dtype."""
    q, v = case["q"], case["v"]
    return _form(got, (torch.empty(*q.shape[:-1], v.shape[-1], dtype=q.dtype),), ("the output",))


def attention_finite(got, case) -> str | None:
    """Rung 2: no NaN or inf (every query sees at least key 0)."""
    bad = ~torch.isfinite(got)
    if bad.any():
        i = _first_bad(bad)
        return (f"the output has NaN or inf at index {i} (query {i[-2]}), where attention is finite: every query sees "
                f"at least one key; look for an exp that overflows or is NaN: before the first tile m is -inf, so the "
                f"factor exp(m_old - m_new) must be exp(-inf) = 0; exp((-inf) - (-inf)) is NaN in a tile whose "
                f"scores are all hidden; and look for a division by a sum that is 0")
    return None


def attention_average(got, case) -> str | None:
    """Rung 3: each output is a weighted average of the values its query may see (weights >= 0, sum 1)."""
    v, causal = case["v"], case["causal"]
    if causal:
        low, high = v.cummin(dim=-2).values, v.cummax(dim=-2).values  # (..., T, D) over keys 0..i
    else:
        low = v.amin(dim=-2, keepdim=True).expand(*v.shape[:-2], got.shape[-2], v.shape[-1])  # (..., T_q, D)
        high = v.amax(dim=-2, keepdim=True).expand_as(low)
    slack = 1e-4 if v.dtype == torch.float32 else 1e-9
    bad = (got < low - slack) | (got > high + slack)
    if bad.any():
        i = _first_bad(bad)
        seen = f"keys 0..{i[-2]}" if causal else "all keys"
        return (f"attention's output is a weighted average of the values (weights >= 0 that sum to 1), so each "
                f"coordinate lies between the smallest and largest value the query may see ({seen}); at index {i} "
                f"the output is {got[i].item():.4g}, outside [{low[i].item():.4g}, {high[i].item():.4g}]: look at "
                f"the division by l, the rescaling of acc and l, and which keys the mask hides")
    return None


def attention_first_query(got, case) -> str | None:
    """Rung 4 (causal): query 0 sees key 0 only, so its output is exactly v[0]."""
    if not case["causal"]:
        return None
    want = case["v"][..., 0, :]
    tol = _tolerance(want.dtype)
    if not torch.allclose(got[..., 0, :], want, rtol=tol["rtol"], atol=tol["atol"]):
        return ("with causal=True query 0 may see key 0 only, so its output must be v[0]; yours is not: look at "
                "the mask in the first tile (hide keys j > i, where i and j are positions in the whole sequence)")
    return None


def _compare_attention(got, expected, case) -> str | None:
    what = f"the output (causal={case['causal']}, blocks {case['block_q']}x{case['block_k']})"
    return difference(got, expected, what, **_tolerance(expected.dtype))


# ---------------------------------------------------------------- tiled attention backward


def attention_with_lse(q, k, v, causal=False):
    """(softmax(q k^T / sqrt(D)) v, log-sum-exp of each query's scores), what the forward saves."""
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., T_q, T_k)
    if causal:
        s = s.masked_fill(torch.ones(s.shape[-2:], dtype=torch.bool).triu(1), float("-inf"))
    lse = s.logsumexp(dim=-1)  # (..., T_q)
    return torch.exp(s - lse[..., None]) @ v, lse


def _backward_cases(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed + 2)
    cases = []
    for lead, t_q, t_k, d, bq, bk, causal, dtype in [
        ((2,), 32, 32, 8, 8, 8, False, torch.float64),
        ((1, 2), 30, 45, 16, 16, 32, False, torch.float64),  # T not a multiple of the blocks, T_q != T_k
        ((2, 3), 37, 37, 8, 16, 8, True, torch.float64),
        ((1,), 48, 48, 16, 16, 16, True, torch.float32),
        ((3,), 5, 5, 4, 16, 16, True, torch.float64),  # blocks larger than T
        ((), 20, 20, 8, 4, 8, True, torch.float64),  # no leading dimensions
        ((2,), 1, 1, 8, 4, 4, False, torch.float64),  # T = 1
    ]:
        q, k = (torch.randn(*lead, t, d, generator=g, dtype=torch.float64) * 2 for t in (t_q, t_k))
        v = torch.randn(*lead, t_k, d, generator=g, dtype=torch.float64)
        dout = torch.randn(*lead, t_q, d, generator=g, dtype=torch.float64)
        out, lse = attention_with_lse(q, k, v, causal)
        cases.append({name: t.to(dtype) for name, t in (("q", q), ("k", k), ("v", v), ("out", out), ("lse", lse),
                                                         ("dout", dout))}
                     | {"block_q": bq, "block_k": bk, "causal": causal})
    return cases


def _autograd_backward(q, k, v, out, lse, dout, block_q=64, block_k=64, causal=False):
    """The trusted gradients: autograd through gptref.flash.flash_attention (itself tested against naive attention)."""
    q, k, v = (t.detach().clone().requires_grad_(True) for t in (q, k, v))
    flash_attention(q, k, v, causal=causal, block_q=block_q, block_k=block_k).backward(dout)
    return q.grad, k.grad, v.grad


def backward_form(got, case) -> str | None:
    """Rung 1: (dq, dk, dv) shaped and typed like (q, k, v)."""
    return _form(got, (case["q"], case["k"], case["v"]), ("dq", "dk", "dv"))


def backward_finite(got, case) -> str | None:
    """Rung 2: finite gradients."""
    for name, grad in zip(("dq", "dk", "dv"), got):
        if not torch.isfinite(grad).all():
            return (f"{name} has NaN or inf at index {_first_bad(~torch.isfinite(grad))}: look at the recomputed P "
                    f"(exp(S - lse) is at most 1) and at hidden scores (exp(-inf) = 0)")
    return None


def backward_dv_sum(got, case) -> str | None:
    """Rung 3: the rows of dV add up to those of dO, because each query's weights sum to 1."""
    dv, dout = got[2], case["dout"]
    total, want = dv.sum(dim=-2), dout.sum(dim=-2)  # (..., D)
    tol = _tolerance(dv.dtype)
    if not torch.allclose(total, want, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10 * dout.shape[-2]):
        return ("the rows of dV must add up to the rows of dO (sum_j dV_j = sum_i dO_i, because each query's weights "
                "P_i sum to 1 over the keys); yours do not: look at how P is recomputed (exp(S - lse), with the mask) "
                "and at dV_j += P^T dO_i")
    return None


def backward_dk_sum(got, case) -> str | None:
    """Rung 4: the rows of dK add up to 0, because each row of dS sums to 0 (D_i = rowsum(P_i * dP_i))."""
    dk = got[1]
    total, scale = dk.sum(dim=-2), dk.abs().sum(dim=-2) + 1  # (..., D)
    tol = _tolerance(dk.dtype)
    if ((total.abs() / scale) > tol["rtol"] * 100).any():
        return ("the rows of dK must add up to zero (each row of dS = P * (dP - D) sums to 0 when "
                "D_i = rowsum(dO_i * O_i) = rowsum(P_i * dP_i)); yours do not: look at D, at dS = P * (dP - D) "
                "and at dK_j += dS^T Q_i")
    return None


def backward_first_query(got, case) -> str | None:
    """Rung 5 (causal, T_q = T_k): query 0 attends to key 0 with weight 1, so dQ[0] = 0."""
    if not case["causal"]:
        return None
    dq0 = got[0][..., 0, :]
    if not torch.allclose(dq0, torch.zeros_like(dq0), atol=_tolerance(dq0.dtype)["atol"] * 10):
        return ("with causal=True query 0 attends to key 0 with weight 1, so moving q_0 changes nothing and dQ[0] "
                "must be 0; yours is not: look at the mask when the backward recomputes the scores, and at dS")
    return None


def _compare_backward(got, expected, case) -> str | None:
    for name, g_, e_ in zip(("dq", "dk", "dv"), got, expected):
        message = difference(g_, e_, f"{name} (causal={case['causal']}, blocks {case['block_q']}x{case['block_k']})",
                             **_tolerance(e_.dtype))
        if message:
            return message
    return None


_SOFTMAXES = (torch.softmax, F.softmax, torch.Tensor.softmax, torch.log_softmax, F.log_softmax,
              torch.Tensor.log_softmax, torch.logsumexp, torch.Tensor.logsumexp)
_AUTOGRAD = (torch.autograd.grad, torch.autograd.backward, torch.Tensor.backward)

EXERCISES = [
    Exercise(
        day=DAY, name="online_softmax_stats", grade_ids=("test_online_softmax_stats",),
        make_cases=_stats_cases, reference=_torch_stats, compare=_compare_stats,
        properties=(stats_form, stats_max, stats_sum_range),
        edge_cases=("blocks of one score", "a last block shorter than the others", "one block holding the whole row",
                    "scores near 800 (exp overflows without the max)", "rows whose scores are all negative",
                    "an all-equal row", "the max in the first block", "whole blocks of -inf (masked)",
                    "float32 and float64"),
        forbidden=_SOFTMAXES + _gptref_flash(),
        description="running max and rescaled running sum over blocks of scores (checks: form, m = row max, "
                    "1 <= l <= row length, l = sum exp(x - m))",
    ),
    Exercise(
        day=DAY, name="tiled_attention", grade_ids=("test_tiled_attention",),
        make_cases=_attention_cases, reference=_torch_attention, compare=_compare_attention,
        properties=(attention_form, attention_finite, attention_average, attention_first_query),
        edge_cases=("T not a multiple of the blocks", "blocks larger than T", "T = 1", "one head",
                    "no leading dimensions", "T_q != T_k", "causal and not", "all keys equal (uniform weights)",
                    "large scores (the max changes between tiles)", "float32 and float64"),
        forbidden=(F.scaled_dot_product_attention, attention.scaled_dot_product_attention,
                   attention.MultiHeadAttention.forward) + _SOFTMAXES + _gptref_flash(),
        description="flash attention forward (checks: form, finite, a weighted average of the visible values, "
                    "causal query 0 = v[0], values against torch's attention)",
    ),
    Exercise(
        day=DAY, name="tiled_attention_backward", grade_ids=("test_tiled_attention_backward",),
        make_cases=_backward_cases, reference=_autograd_backward, compare=_compare_backward,
        properties=(backward_form, backward_finite, backward_dv_sum, backward_dk_sum, backward_first_query),
        edge_cases=("T not a multiple of the blocks", "blocks larger than T", "T = 1", "T_q != T_k",
                    "no leading dimensions", "causal and not", "float32 and float64"),
        forbidden=(F.scaled_dot_product_attention, attention.scaled_dot_product_attention)
                  + _SOFTMAXES + _AUTOGRAD + _gptref_flash(),
        description="flash attention backward, recomputing P per tile (checks: form, finite, sum dV = sum dO, "
                    "sum dK = 0, causal dQ[0] = 0, values against autograd)",
    ),
]
