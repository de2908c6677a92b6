"""Day 8, flash attention: the online softmax statistics and tiled attention, against torch's own functions."""

from __future__ import annotations


import torch
import torch.nn.functional as F

import gptref.attention as attention
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
    ]:
        x = torch.randn(shape, generator=g, dtype=dtype) * scale
        x = x + torch.linspace(0, 4, shape[-1], dtype=dtype)  # the max tends to grow block after block
        cases.append({"blocks": list(x.split(block, dim=-1))})
    big = torch.randn(3, 50, generator=g, dtype=torch.float64) * 30 + 800  # exp overflows without the max
    cases.append({"blocks": list(big.split(10, dim=-1))})
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
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"return a pair (m, l), got {type(got).__name__}"
    (m, l), (em, el) = got, expected
    for name, a, e in (("m", m, em), ("l", l, el)):
        if not isinstance(a, torch.Tensor):
            return f"{name} should be a tensor, got {type(a).__name__}"
        if tuple(a.shape) != tuple(e.shape):
            return f"{name} has shape {tuple(a.shape)}, expected {tuple(e.shape)} (one value per row)"
    if not torch.allclose(m.to(em.dtype), em, rtol=1e-6, atol=1e-6):
        return "m must be the running maximum of the scores seen so far (the row max after the last block)"
    if torch.isnan(l).any() or torch.isinf(l).any():
        return "l has NaN or inf: subtract the running max inside exp (and never compute -inf - (-inf))"
    tol = 1e-4 if em.dtype == torch.float32 else 1e-9
    x = torch.cat(list(case["blocks"]), dim=-1)
    if torch.allclose(l.to(el.dtype), torch.exp(x).sum(dim=-1), rtol=tol, atol=tol):
        return "l must be the sum of exp(x - m), relative to the max: subtract the running max inside exp"
    if not torch.allclose(l.to(el.dtype), el, rtol=tol, atol=tol):
        return "your running sum was not rescaled when the max changed (multiply it by exp(m_old - m_new))"
    return None


# ---------------------------------------------------------------- tiled attention


def _attention_cases(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed + 1)
    cases = []
    for lead, t_q, t_k, d, bq, bk, causal, dtype in [
        ((2,), 32, 32, 8, 8, 8, False, torch.float64),
        ((1, 2), 50, 70, 16, 16, 32, False, torch.float64),  # T not a multiple of the blocks
        ((2, 3), 37, 37, 8, 16, 8, True, torch.float64),
        ((1,), 64, 64, 32, 64, 16, True, torch.float32),
        ((3,), 5, 9, 4, 16, 16, False, torch.float64),  # blocks larger than T
        ((1, 1), 48, 48, 8, 8, 16, True, torch.float64),
    ]:
        q = torch.randn(*lead, t_q, d, generator=g, dtype=dtype) * 2
        k = torch.randn(*lead, t_k, d, generator=g, dtype=dtype) * 2
        v = torch.randn(*lead, t_k, d, generator=g, dtype=dtype)
        cases.append({"q": q, "k": k, "v": v, "block_q": bq, "block_k": bk, "causal": causal})
    return cases


def _torch_attention(q, k, v, block_q=64, block_k=64, causal=False):
    """torch's fused attention (the blocks do not change the mathematical result)."""
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def _compare_attention(got, expected, case) -> str | None:
    if not isinstance(got, torch.Tensor):
        return f"return a tensor, got {type(got).__name__}"
    if tuple(got.shape) != tuple(expected.shape):
        return f"output has shape {tuple(got.shape)}, expected {tuple(expected.shape)} = (..., T_q, D)"
    if torch.isnan(got).any():
        return "the output has NaN: guard exp(m_old - m_new) when m_old is -inf"
    tol = 1e-4 if expected.dtype == torch.float32 else 1e-8
    if torch.allclose(got.to(expected.dtype), expected, rtol=tol, atol=tol):
        return None
    q, k, v = case["q"], case["k"], case["v"]
    unscaled = F.scaled_dot_product_attention(q, k, v, is_causal=case["causal"], scale=1.0)
    if torch.allclose(got.to(expected.dtype), unscaled, rtol=tol, atol=tol):
        return "scale the scores by 1/sqrt(D)"
    if case["causal"]:
        full = F.scaled_dot_product_attention(q, k, v)
        if torch.allclose(got.to(expected.dtype), full, rtol=tol, atol=tol):
            return "causal=True: hide the keys after each query (key j > query i)"
    err = (got.to(expected.dtype) - expected).abs().max().item()
    return (f"max abs error {err:.3g} against softmax(q k^T / sqrt(D)) v (causal={case['causal']}, "
            f"blocks {case['block_q']}x{case['block_k']}): rescale both the running sum and the running output "
            f"by exp(m_old - m_new) when the max grows, and divide by the sum once at the end")


_SOFTMAXES = (torch.softmax, F.softmax, torch.Tensor.softmax, torch.log_softmax, F.log_softmax,
              torch.Tensor.log_softmax, torch.logsumexp, torch.Tensor.logsumexp)

EXERCISES = [
    Exercise(
        day=DAY, name="online_softmax_stats", grade_ids=("test_online_softmax_stats",),
        make_cases=_stats_cases, reference=_torch_stats, compare=_compare_stats,
        forbidden=_SOFTMAXES + _gptref_flash(),
        description="running max and rescaled running sum over blocks of scores",
    ),
    Exercise(
        day=DAY, name="tiled_attention", grade_ids=("test_tiled_attention",),
        make_cases=_attention_cases, reference=_torch_attention, compare=_compare_attention,
        forbidden=(F.scaled_dot_product_attention, attention.scaled_dot_product_attention,
                   attention.MultiHeadAttention.forward) + _SOFTMAXES + _gptref_flash(),
        description="flash attention forward: tiles of queries and keys with an online softmax",
    ),
]
