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
from gptref.grading.ladders.d08_flash_attention import LADDERS, tolerance
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


def _compare_stats(got, expected, case) -> str | None:
    """Values: m against the row max, then l against sum(exp(x - m)) of the whole row, to the dtype's tolerance."""
    return (difference(got[0], expected[0], "m (the row max)", **tolerance(expected[0].dtype))
            or difference(got[1], expected[1], "l (the sum of exp(x - m) over the whole row)",
                          **tolerance(expected[1].dtype)))


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


def _compare_attention(got, expected, case) -> str | None:
    what = f"the output (causal={case['causal']}, blocks {case['block_q']}x{case['block_k']})"
    return difference(got, expected, what, **tolerance(expected.dtype))


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


def _compare_backward(got, expected, case) -> str | None:
    for name, g_, e_ in zip(("dq", "dk", "dv"), got, expected):
        message = difference(g_, e_, f"{name} (causal={case['causal']}, blocks {case['block_q']}x{case['block_k']})",
                             **tolerance(e_.dtype))
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
        properties=LADDERS["online_softmax_stats"],
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
        properties=LADDERS["tiled_attention"],
        edge_cases=("T not a multiple of the blocks", "blocks larger than T", "T = 1", "one head",
                    "no leading dimensions", "T_q != T_k", "causal and not", "all keys equal (uniform weights)",
                    "large scores (the max changes between tiles)", "float32 and float64",
                    "causal with key tiles smaller than query tiles (block_k < block_q)"),
        forbidden=(F.scaled_dot_product_attention, attention.scaled_dot_product_attention,
                   attention.MultiHeadAttention.forward) + _SOFTMAXES + _gptref_flash(),
        description="flash attention forward (checks: form, finite, a weighted average of the visible values, "
                    "causal query 0 = v[0], values against torch's attention)",
    ),
    Exercise(
        day=DAY, name="tiled_attention_backward", grade_ids=("test_tiled_attention_backward",),
        make_cases=_backward_cases, reference=_autograd_backward, compare=_compare_backward,
        properties=LADDERS["tiled_attention_backward"],
        edge_cases=("T not a multiple of the blocks", "blocks larger than T", "T = 1", "T_q != T_k",
                    "no leading dimensions", "causal and not", "float32 and float64"),
        forbidden=(F.scaled_dot_product_attention, attention.scaled_dot_product_attention)
                  + _SOFTMAXES + _AUTOGRAD + _gptref_flash(),
        description="flash attention backward, recomputing P per tile (checks: form, finite, sum dV = sum dO, "
                    "sum dK = 0, causal dQ[0] = 0, values against autograd)",
    ),
]
