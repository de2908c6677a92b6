"""Day 8's ladders: what every correct online-softmax (m, l), tiled attention output and tiled backward has.

online_softmax_stats: a pair (m, l), one value per row in the scores' dtype; m is each row's largest score;
1 <= l <= the number of finite scores.
tiled_attention: (..., T_q, D) in the inputs' dtype; finite; each output a weighted average of the values its query
may see; with causal=True query 0's output is v[0].
tiled_attention_backward: (dq, dk, dv) shaped like (q, k, v); finite; the rows of dV add up to those of dO; the rows
of dK add up to 0; with causal=True dQ[0] = 0; sum(dQ * Q) = sum(dK * K).
The same functions are the Exercises' `properties=` and the notebook's visible ladders.
"""

from __future__ import annotations

import torch


def tolerance(dtype: torch.dtype) -> dict:
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
        where = ("the exponent inside exp and the factor that carries the old sum over to a new max"
                 if not (row_sum[i] > count[i]) else
                 "the exponent inside exp (x minus the running max, never above 0), the factor that carries the old "
                 "sum over to a new max, and the dimension each sum runs over (one sum per row, dim=-1)")
        return (f"l must lie between 1 (the max's own term exp(0)) and the number of scores in the row (each term "
                f"exp(x - m) is at most 1); row {i} has l = {row_sum[i].item():.6g} with {int(count[i])} scores: "
                f"look at {where}")
    return None


# ---------------------------------------------------------------- tiled attention

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
                f"the division by l, the rescaling of acc and l, which keys the mask hides, and whether the loops "
                f"write every query's output (rows never written keep what torch.empty left there)")
    return None


def attention_first_query(got, case) -> str | None:
    """Rung 4 (causal): query 0 sees key 0 only, so its output is exactly v[0]."""
    if not case["causal"]:
        return None
    want = case["v"][..., 0, :]
    tol = tolerance(want.dtype)
    if not torch.allclose(got[..., 0, :], want, rtol=tol["rtol"], atol=tol["atol"]):
        return ("with causal=True query 0 may see key 0 only, so its output must be v[0]; yours is not: look at "
                "the mask in the first tile (hide keys j > i, where i and j are positions in the whole sequence)")
    return None


# ---------------------------------------------------------------- tiled attention backward

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
    tol = tolerance(dv.dtype)
    if not torch.allclose(total, want, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10 * dout.shape[-2]):
        return ("the rows of dV must add up to the rows of dO (sum_j dV_j = sum_i dO_i, because each query's weights "
                "P_i sum to 1 over the keys); yours do not: look at how P is recomputed (exp(S - lse), with the mask) "
                "and at dV_j += P^T dO_i")
    return None


def backward_dk_sum(got, case) -> str | None:
    """Rung 4: the rows of dK add up to 0, because each row of dS sums to 0 (D_i = rowsum(P_i * dP_i))."""
    dk = got[1]
    total, scale = dk.sum(dim=-2), dk.abs().sum(dim=-2) + 1  # (..., D)
    tol = tolerance(dk.dtype)
    if ((total.abs() / scale) > tol["rtol"] * 100).any():
        return ("the rows of dK must add up to zero (each row of dS = P * (dP - D) sums to 0 when "
                "D_i = rowsum(dO_i * O_i) = rowsum(P_i * dP_i), which holds only when dP_ij = dO_i . V_j); yours do "
                "not: look at dP = dO_i V_j^T (the values, not the keys), at D, at dS = P * (dP - D) and at "
                "dK_j += dS^T Q_i")
    return None


def backward_q_k_balance(got, case) -> str | None:
    """Rung 6: sum(dQ * Q) = sum(dK * K) per sequence and head, because scaling every query by a factor changes each
    score q . k exactly as scaling every key by it does."""
    dq, dk = got[0].double(), got[1].double()
    q, k = case["q"].double(), case["k"].double()
    from_q, from_k = (dq * q).sum(dim=(-2, -1)), (dk * k).sum(dim=(-2, -1))  # (...) one number per sequence and head
    size = (dq.abs() * q.abs()).sum(dim=(-2, -1)) + (dk.abs() * k.abs()).sum(dim=(-2, -1)) + 1
    if ((from_q - from_k).abs() / size > tolerance(got[0].dtype)["rtol"] * 100).any():
        i = _first_bad((from_q - from_k).abs() / size > tolerance(got[0].dtype)["rtol"] * 100)
        head = (f"sum(dQ * Q) must equal sum(dK * K) (scaling every query by a factor changes each score q . k exactly "
                f"as scaling every key by it); for sequence/head {i} yours are {from_q[i].item():.6g} and "
                f"{from_k[i].item():.6g}")
        root_d = q.shape[-1] ** 0.5
        ratio = (from_q / from_k).flatten()
        for factor, big, small in ((root_d, "dQ", "dK"), (1 / root_d, "dK", "dQ")):
            if torch.allclose(ratio, torch.full_like(ratio, factor), rtol=1e-6):
                return (f"{head}: your {big} side is sqrt(D) = {root_d:.4g} times your {small} side everywhere, so "
                        f"one of them lacks, or has an extra, factor 1/sqrt(D): dQ_i += dS K_j / sqrt(D) and "
                        f"dK_j += dS^T Q_i / sqrt(D)")
        return (f"{head}: dQ or dK is wrong while dV and D may be right: look at how each is summed over the tiles "
                f"(dQ_i over every key block, dK_j over every query block, both with +=) and at the factor 1/sqrt(D) "
                f"on each")
    return None


def backward_first_query(got, case) -> str | None:
    """Rung 5 (causal, T_q = T_k): query 0 attends to key 0 with weight 1, so dQ[0] = 0."""
    if not case["causal"]:
        return None
    dq0 = got[0][..., 0, :]
    if not torch.allclose(dq0, torch.zeros_like(dq0), atol=tolerance(dq0.dtype)["atol"] * 10):
        return ("with causal=True query 0 attends to key 0 with weight 1, so moving q_0 changes nothing and dQ[0] "
                "must be 0; yours is not: look at the mask when the backward recomputes the scores, and at dS")
    return None


LADDERS = {
    "online_softmax_stats": (stats_form, stats_max, stats_sum_range),
    "tiled_attention": (attention_form, attention_finite, attention_average, attention_first_query),
    "tiled_attention_backward": (backward_form, backward_finite, backward_dv_sum, backward_dk_sum,
                                 backward_first_query, backward_q_k_balance),
}
