"""Day 7's ladders: what every correct position table, rotation and relative score has, checked before values.

sinusoidal_positions: a float32 (n, d) tensor; row 0 is (0, 1, 0, 1, ...); each pair (2i, 2i+1) is sin and
cos of one angle (sin^2 + cos^2 = 1); pair i turns by 10000^(-2i/d) per position.
rope: x's shape and dtype; finite; every vector keeps its length; vectors at position 0 do not move.
rope_score: one score per vector in q's dtype; finite; |score| <= |q| |k|; at distance 0 it is q . k.
"""

from __future__ import annotations

import torch

from gptref.grading.ladders import tensor_form


def _short(vectors: torch.Tensor) -> list:
    """The first few values of the first vector, rounded, for a message."""
    return [round(v, 4) for v in vectors.reshape(-1, vectors.shape[-1])[0, :4].tolist()]


# ---------------------------------------------------------------- sinusoidal_positions


def table_form(got, case) -> str | None:
    return tensor_form(got, (case["n_positions"], case["d_model"]), torch.float32,
                 "the table (one row per position, one column per channel, float32)")


def table_row_zero(got, case) -> str | None:
    want = torch.tensor([0.0, 1.0] * (case["d_model"] // 2))
    if not torch.allclose(got[0], want, atol=1e-6):
        return (f"row 0 (position 0, every angle 0) must be (sin 0, cos 0, sin 0, ...) = (0, 1, 0, 1, ...), "
                f"got {[round(v, 4) for v in got[0, :8].tolist()]}")
    return None


def table_pairs_on_circle(got, case) -> str | None:
    radius = got[:, 0::2].double() ** 2 + got[:, 1::2].double() ** 2  # (n, d/2)
    bad = (radius - 1).abs() > 1e-5
    if bad.any():
        p, i = (int(v) for v in bad.nonzero()[0])
        return (f"each pair of channels (2i, 2i+1) holds sin and cos of ONE angle p * omega_i, so "
                f"PE[p, 2i]^2 + PE[p, 2i+1]^2 = 1; at position {p}, pair {i} gives {radius[p, i].item():.4g}")
    return None


def table_frequencies(got, case) -> str | None:
    n, d = case["n_positions"], case["d_model"]
    if n < 2:
        return None
    angle = torch.atan2(got[1, 0::2].double(), got[1, 1::2].double())  # (d/2,) the angle of position 1
    want = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    bad = (angle - want).abs() > 1e-5
    if bad.any():
        i = int(bad.nonzero()[0])
        turned = angle[i].item()
        base = f" (that is b^(-2i/d) with b = {turned ** (-d / (2 * i)):.6g})" if i > 0 and 0 < turned < 1 else ""
        return (f"from one position to the next, pair i turns by 10000^(-2i/d) (d = {d}); at position 1 your pair {i} "
                f"sits at angle {turned:.5g}{base} instead of {want[i].item():.5g}")
    return None


def drift_with_position(got: torch.Tensor, want: torch.Tensor) -> str:
    """' (...)' when a table is right for the first positions and then drifts by a little that grows with the
    position: the angles p * omega_i were carried with too few digits (float32) somewhere."""
    if got.shape != want.shape or got.shape[0] < 1000:
        return ""
    error = (got.double() - want.double()).abs().amax(dim=-1)  # (n,) the largest error at each position
    wrong = (error > 1e-6).nonzero().flatten()
    n = got.shape[0]
    if not len(wrong) or error.max() > 1e-3 or int(wrong[0]) < 50:
        return ""
    if error[-n // 4:].max() < error[int(wrong[0]):int(wrong[0]) + n // 4].max():  # not growing with the position
        return ""
    return (f" (your table is right up to position {int(wrong[0]) - 1} and then drifts by at most "
            f"{error.max().item():.2g}, more at larger positions: the angle p * omega_i carries too few digits there, "
            "so compute omega and the angles in float64 (torch.arange(..., dtype=torch.float64)) and convert to "
            "float32 only at the end)")


def rope_short_of_digits(got: torch.Tensor, want: torch.Tensor, positions) -> str:
    """' (...)' when rope's output is off by a little only at the vectors of its largest positions (no more than
    float32's rounding of position * theta_i could make: 5e-7 * position * max|x|, or 1e-3): the angles were carried
    with too few digits (float32) there; '' otherwise."""
    if positions is None or got.shape != want.shape or got.dim() < 2:
        return ""
    error = (got.double() - want.double()).abs().amax(dim=-1)  # (..., T) the largest error of each vector
    per_position = error.reshape(-1, error.shape[-1]).amax(dim=0)  # (T,)
    wrong = per_position > 1e-6
    places = torch.as_tensor(positions)
    if not wrong.any() or wrong.all() or places[wrong].min() <= places[~wrong].max():
        return ""
    rounding = max(1e-3, 5e-7 * int(places.max()) * want.double().abs().max().item())
    if per_position.max() > rounding:
        return ""
    return (f" (only the vectors at the largest positions {sorted(int(p) for p in places[wrong])} are off, by at most "
            f"{per_position.max().item():.2g}, as when you compute the angles in float32: the angle position * theta_i "
            "carries too few digits there, so compute theta and the angles in float64 (torch.arange(..., "
            "dtype=torch.float64)) and convert cos and sin to x.dtype only at the end)")


# ---------------------------------------------------------------- rope


def rope_form(got, case) -> str | None:
    x = case["x"]
    return tensor_form(got, x.shape, x.dtype, "rope's output (x's shape and dtype)")


def rope_keeps_lengths(got, case) -> str | None:
    x = case["x"]
    before, after = x.double().norm(dim=-1), got.double().norm(dim=-1)
    bad = (after - before).abs() > 1e-5 * before.clamp(min=1.0)
    if bad.any():
        index = tuple(int(v) for v in bad.nonzero()[0])
        return (f"a rotation keeps every vector's length, but the vector at index {index} had length "
                f"{before[index].item():.5g} and yours has {after[index].item():.5g}: each pair must become "
                f"(x_2i cos a - x_2i+1 sin a, x_2i sin a + x_2i+1 cos a), with one angle a per pair")
    return None


def rope_position_zero_fixed(got, case) -> str | None:
    x = case["x"]
    positions = case.get("positions")
    positions = torch.arange(x.shape[-2]) if positions is None else torch.as_tensor(positions)
    for t in (positions == 0).nonzero().flatten().tolist():
        if not torch.allclose(got[..., t, :].double(), x[..., t, :].double(), atol=1e-5):
            return (f"the vector at position 0 (sequence index {t}) must come out unchanged, since every angle is 0 "
                    f"there; yours changed it from {_short(x[..., t, :])} to {_short(got[..., t, :])}"
                    + _reordered(got[..., t, :].double(), x[..., t, :].double()))
    return None


def _reordered(got: torch.Tensor, x: torch.Tensor) -> str:
    """' (...)' when `got` holds x's own numbers in another channel order: the channels were put back wrongly."""
    close = lambda a, b: a.shape == b.shape and torch.allclose(a, b, atol=1e-6)  # noqa: E731
    if close(got[..., 0::2], x[..., 1::2]) and close(got[..., 1::2], x[..., 0::2]):
        return (" (your output holds the same numbers with the two channels of every pair swapped: check which "
                "result goes to channel 2i and which to 2i+1, and which input channel each formula reads)")
    if close(got.sort(dim=-1).values, x.sort(dim=-1).values):
        return (" (your output holds the same numbers in another channel order: check which channels you read as a "
                "pair and the order you stack/cat/reshape the results back into)")
    return ""


# ---------------------------------------------------------------- rope_score


def score_form(got, case) -> str | None:
    q = case["q"]
    return tensor_form(got, q.shape[:-1], q.dtype, "rope_score's output (one score per vector, q's dtype)")


def score_bounded(got, case) -> str | None:
    q, k = case["q"].double(), case["k"].double()
    bound = q.norm(dim=-1) * k.norm(dim=-1)
    bad = got.double().abs() > bound * (1 + 1e-5) + 1e-6
    if bad.any():
        index = tuple(int(v) for v in bad.nonzero()[0])
        return (f"the score is a dot product of two rotated vectors, so |score| <= |q| |k|; at index {index} "
                f"yours is {got[index].item():.5g} while |q| |k| = {bound[index].item():.5g}")
    return None


def score_at_distance_zero(got, case) -> str | None:
    if case["distance"] != 0:
        return None
    plain = (case["q"] * case["k"]).sum(-1)
    if not torch.allclose(got.double(), plain.double(), rtol=1e-5, atol=1e-5):
        return "at distance 0 both vectors turn by the same angles, so the score is the plain dot product q . k"
    return None


LADDERS = {
    "sinusoidal_positions": (table_form, table_row_zero, table_pairs_on_circle, table_frequencies),
    "rope": (rope_form, rope_keeps_lengths, rope_position_zero_fixed),
    "rope_score": (score_form, score_bounded, score_at_distance_zero),
}
