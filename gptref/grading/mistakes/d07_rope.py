"""Day 7's common wrong answers: position tables, rotations and relative scores as students often write them."""

from __future__ import annotations

import torch

from gptref.grading.explain import Mistake


def _omega(d, exponent=lambda i, d: -i / d, base=10000.0):
    i = torch.arange(0, d, 2, dtype=torch.float64)
    return base ** exponent(i, d)  # (d/2,)


def _table(n, d, omega, sin_first=True, first_position=0, interleave=True, as_float32=True,
           angle_dtype=torch.float64, rounded_angles=False):
    positions = torch.arange(first_position, first_position + n, dtype=angle_dtype)[:, None]  # (n, 1)
    angles = (positions * omega.to(angle_dtype)).double()  # (n, d/2)
    if rounded_angles:  # computed in float64, then rounded to float32 (sin and cos taken in float32)
        angles = angles.float()
    first, second = (angles.sin(), angles.cos()) if sin_first else (angles.cos(), angles.sin())
    if interleave:
        table = torch.stack([first, second], dim=-1).reshape(n, d)  # (n, d/2, 2) -> (n, d)
    else:
        table = torch.cat([first, second], dim=-1)  # (n, d): all sines, then all cosines
    return table.float() if as_float32 else table


def _own_frequency_per_channel(n_positions, d_model):
    angles = torch.arange(n_positions, dtype=torch.float64)[:, None] * 10000.0 ** (
        -torch.arange(d_model, dtype=torch.float64) / d_model)  # (n, d): channel j turns at 10000^(-j/d)
    table = torch.where(torch.arange(d_model) % 2 == 0, angles.sin(), angles.cos())
    return table.float()


SINUSOIDAL = (
    Mistake("put cos on the even channels and sin on the odd ones (it is sin on even channels, cos on odd)",
            lambda n_positions, d_model: _table(n_positions, d_model, _omega(d_model), sin_first=False)),
    Mistake("use 10000^(-i/d) for pair i, which makes the slow pairs turn too fast "
            "(the exponent counts channels: omega_i = 10000^(-2i/d))",
            lambda n_positions, d_model: _table(n_positions, d_model, _omega(d_model, lambda i, d: -i / 2 / d))),
    Mistake("give channel j its own frequency 10000^(-j/d), so channel 2i+1 no longer uses its pair's angle "
            "(both channels of pair i use the angle p * 10000^(-2i/d))",
            _own_frequency_per_channel),
    Mistake("put all the sines in the first half of the channels and all the cosines in the second half "
            "(they interleave: channel 2i holds the sine, channel 2i+1 the cosine of the same angle)",
            lambda n_positions, d_model: _table(n_positions, d_model, _omega(d_model), interleave=False)),
    Mistake("count the 2 twice, so the exponent is -4i/d and the later pairs turn far too slowly: "
            "torch.arange(0, d, 2) already holds the 2i of the exponent -2i/d, do not multiply it by 2 again",
            lambda n_positions, d_model: _table(n_positions, d_model, _omega(d_model, lambda i, d: -2 * i / d))),
    Mistake("multiply the positions by 10000^(+2i/d) instead of dividing by it (the exponent is negative: "
            "the later pairs turn more slowly)",
            lambda n_positions, d_model: _table(n_positions, d_model, _omega(d_model, lambda i, d: i / d))),
    Mistake("number the positions from 1 instead of 0 (row p is position p; row 0 is position 0)",
            lambda n_positions, d_model: _table(n_positions, d_model, _omega(d_model), first_position=1)),
    Mistake("compute the angles p * omega_i in float32: at large positions (hundreds and more) float32 keeps too few "
            "digits of them, so compute the table in float64 and convert only at the end",
            lambda n_positions, d_model: _table(n_positions, d_model, _omega(d_model), angle_dtype=torch.float32)),
    Mistake("round the angles p * omega_i to float32 before sin and cos: at large positions (hundreds and more) "
            "float32 keeps too few digits of them, so keep the angles float64 and convert only the finished table",
            lambda n_positions, d_model: _table(n_positions, d_model, _omega(d_model), rounded_angles=True)),
    Mistake("return the float64 table without converting it to float32 at the end",
            lambda n_positions, d_model: _table(n_positions, d_model, _omega(d_model), as_float32=False)),
)


def _angles(x, positions, base, exponent=lambda i, D: -i / D, dtype=torch.float64, first_position=0,
            swapped=False, out_dtype=None):
    T, D = x.shape[-2], x.shape[-1]
    positions = torch.arange(first_position, first_position + T) if positions is None else torch.as_tensor(positions)
    theta = base ** exponent(torch.arange(0, D, 2, dtype=torch.float64), D)  # (D/2,)
    angles = positions.to(dtype)[:, None] * theta.to(dtype)  # (T, D/2)
    cos, sin = (angles.sin(), angles.cos()) if swapped else (angles.cos(), angles.sin())
    out_dtype = x.dtype if out_dtype is None else out_dtype
    return cos.to(out_dtype), sin.to(out_dtype)


def _rotate_pairs(x, cos, sin, read="interleaved", write="interleaved", sign=1.0):
    D = x.shape[-1]
    if read == "interleaved":
        first, second = x[..., 0::2], x[..., 1::2]  # (..., T, D/2) each
    else:
        first, second = x[..., : D // 2], x[..., D // 2:]
    new_first = first * cos - sign * second * sin
    new_second = sign * first * sin + second * cos
    if write == "interleaved":
        return torch.stack([new_first, new_second], dim=-1).reshape(x.shape)  # (..., T, D/2, 2) -> (..., T, D)
    return torch.cat([new_first, new_second], dim=-1)


def _rope(x, positions=None, base=10000.0, read="interleaved", write="interleaved", sign=1.0, **angle_options):
    cos, sin = _angles(x, positions, base, **angle_options)
    return _rotate_pairs(x, cos, sin, read, write, sign)


def _wrong_sign_first(x, positions=None, base=10000.0):
    cos, sin = _angles(x, positions, base)
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * cos + odd * sin, even * sin + odd * cos], dim=-1).reshape(x.shape)


ROPE = (
    Mistake("pair the channels the other way round: you paired channel i with i + D/2 (the GPT-NeoX / HF Llama "
            "convention), but this notebook rotates the neighbours (2i, 2i+1)",
            lambda x, positions=None, base=10000.0: _rope(x, positions, base, read="halves", write="halves")),
    Mistake("mix two conventions: you read the pairs as (i, i + D/2) but wrote them back as (2i, 2i+1); read and "
            "write the same pairs, (2i, 2i+1)",
            lambda x, positions=None, base=10000.0: _rope(x, positions, base, read="halves")),
    Mistake("write y_2i = x_2i cos + x_2i+1 sin, which is not a rotation: check the signs of the sin terms "
            "(y_2i = x_2i cos - x_2i+1 sin, y_2i+1 = x_2i sin + x_2i+1 cos)",
            _wrong_sign_first),
    Mistake("always rotate by the sequence index 0, 1, ..., T-1: use the positions argument when it is given",
            lambda x, positions=None, base=10000.0: _rope(x, None, base)),
    Mistake("rotate by -p theta_i (clockwise) instead of +p theta_i: the minus sign belongs to the sin term of "
            "the even channel, y_2i = x_2i cos - x_2i+1 sin",
            lambda x, positions=None, base=10000.0: _rope(x, positions, base, sign=-1.0)),
    Mistake("use theta_i = base^(-i/D) for pair i, so the pairs turn too fast (the exponent counts channels: "
            "2i/D)",
            lambda x, positions=None, base=10000.0: _rope(x, positions, base, exponent=lambda i, D: -i / 2 / D)),
    Mistake("count the 2 twice, so the exponent is -4i/D and the later pairs turn far too slowly: "
            "torch.arange(0, D, 2) already holds 2i, do not multiply it by 2 again (theta_i = base^(-2i/D))",
            lambda x, positions=None, base=10000.0: _rope(x, positions, base, exponent=lambda i, D: -2 * i / D)),
    Mistake("always use 10000 as the base: use the base argument",
            lambda x, positions=None, base=10000.0: _rope(x, positions, 10000.0)),
    Mistake("compute the angles in float32: at large positions (hundreds and more) float32 keeps too few digits of "
            "p * theta_i, so compute them in float64 and convert only cos and sin",
            lambda x, positions=None, base=10000.0: _rope(x, positions, base, dtype=torch.float32)),
    Mistake("read the pairs as neighbours (2i, 2i+1) but write them back as halves (torch.cat puts all the first "
            "members, then all the second members): stack them back as neighbours",
            lambda x, positions=None, base=10000.0: _rope(x, positions, base, write="halves")),
    Mistake("swap cos and sin: y_2i = x_2i cos - x_2i+1 sin and y_2i+1 = x_2i sin + x_2i+1 cos (at position 0 "
            "cos = 1 and sin = 0, so the vector does not move)",
            lambda x, positions=None, base=10000.0: _rope(x, positions, base, swapped=True)),
    Mistake("use theta_i = base^(+2i/D): the exponent is negative, theta_i = base^(-2i/D), so the later pairs "
            "turn more slowly",
            lambda x, positions=None, base=10000.0: _rope(x, positions, base, exponent=lambda i, D: i / D)),
    Mistake("count the default positions from 1: when positions is None they are 0, 1, ..., T-1",
            lambda x, positions=None, base=10000.0: _rope(x, positions, base, first_position=1)),
    Mistake("leave cos and sin in float64: x times a float64 tensor becomes float64; convert cos and sin to "
            "x's dtype (.to(x.dtype))",
            lambda x, positions=None, base=10000.0: _rope(x, positions, base, out_dtype=torch.float64)),
)


def _score(q, k, distance, base=10000.0, sign=1.0, exponent=lambda i, D: -i / D, imag_sign=-1.0, keep_sin=True,
           total=True, dtype=torch.float64, real_sign=1.0, absolute=False, out_dtype=None, halves=False):
    D = q.shape[-1]
    theta = base ** exponent(torch.arange(0, D, 2, dtype=dtype), D)  # (D/2,)
    distance = abs(distance) if absolute else distance
    out_dtype = q.dtype if out_dtype is None else out_dtype
    cos = torch.cos(sign * distance * theta).to(out_dtype)
    sin = torch.sin(sign * distance * theta).to(out_dtype)
    q_even, q_odd, k_even, k_odd = q[..., 0::2], q[..., 1::2], k[..., 0::2], k[..., 1::2]
    if halves:  # pair i is (i, i + D/2)
        q_even, q_odd, k_even, k_odd = q[..., :D // 2], q[..., D // 2:], k[..., :D // 2], k[..., D // 2:]
    real = q_even * k_even + real_sign * q_odd * k_odd
    imag = q_odd * k_even + imag_sign * q_even * k_odd
    terms = real * cos - (imag * sin if keep_sin else 0.0)  # (..., D/2)
    if total == "all":
        return terms.sum()  # one number for the whole batch
    if total == "mean":
        return terms.mean(dim=-1)  # the mean of the D/2 terms
    return terms.sum(dim=-1) if total else terms


ROPE_SCORE = (  # |m - n| first: on a negative distance it equals n - m, and it is the likelier slip
    Mistake("pair channel i with channel i + D/2 (the GPT-NeoX / HF Llama convention): this notebook pairs "
            "neighbours (2i, 2i+1), q[..., 0::2] with q[..., 1::2], and so must rope_score",
            lambda q, k, distance, base=10000.0: _score(q, k, distance, base, halves=True)),
    Mistake("use the distance's size |m - n|: a negative distance (the key after the query) turns the other way, "
            "so keep its sign",
            lambda q, k, distance, base=10000.0: _score(q, k, distance, base, absolute=True)),
    Mistake("turn by the opposite angle: either the sign of the distance is reversed (n - m instead of m - n, the "
            "query's position minus the key's) or the sine term's sign is (the score is real cos - imag sin with "
            "imag = Im(q_i conj(k_i)) = q_odd k_even - q_even k_odd); both slips give the same scores",
            lambda q, k, distance, base=10000.0: _score(q, k, distance, base, sign=-1.0)),
    Mistake("drop the sine terms: you kept only the cosine terms, but each pair also contributes "
            "-Im(q_i conj(k_i)) sin(distance theta_i)",
            lambda q, k, distance, base=10000.0: _score(q, k, distance, base, keep_sin=False)),
    Mistake("use theta_i = base^(-i/D) for pair i, so the pairs turn too fast (the exponent counts channels: "
            "2i/D)",
            lambda q, k, distance, base=10000.0: _score(q, k, distance, base, exponent=lambda i, D: -i / 2 / D)),
    Mistake("count the 2 twice, so the exponent is -4i/D and the later pairs turn far too slowly: "
            "torch.arange(0, D, 2) already holds 2i, do not multiply it by 2 again (theta_i = base^(-2i/D))",
            lambda q, k, distance, base=10000.0: _score(q, k, distance, base, exponent=lambda i, D: -2 * i / D)),
    Mistake("always use 10000 as the base: use the base argument",
            lambda q, k, distance, base=10000.0: _score(q, k, distance, 10000.0)),
    Mistake("sum over every dimension (.sum() with no dim), which gives one number for the whole batch: sum over "
            "the pairs only, .sum(dim=-1)",
            lambda q, k, distance, base=10000.0: _score(q, k, distance, base, total="all")),
    Mistake("forget to sum over the pairs (the score is ONE number per vector: sum the D/2 terms)",
            lambda q, k, distance, base=10000.0: _score(q, k, distance, base, total=False)),
    Mistake("compute the angles in float32 (torch.arange of integers divided by D is float32): at large distances "
            "float32 keeps too few digits of distance * theta_i, so make theta float64",
            lambda q, k, distance, base=10000.0: _score(q, k, distance, base, dtype=torch.float32)),
    Mistake("compute the angles in q's dtype: for a float32 q they are float32, and at large distances float32 "
            "keeps too few digits of distance * theta_i, so make theta float64 whatever q's dtype, and convert only "
            "cos and sin",
            lambda q, k, distance, base=10000.0: _score(q, k, distance, base, dtype=q.dtype)),
    Mistake("add the two products of the imaginary part: Im(q_i conj(k_i)) = q_odd k_even - q_even k_odd",
            lambda q, k, distance, base=10000.0: _score(q, k, distance, base, imag_sign=1.0)),
    Mistake("multiply q_i by k_i without conjugating k_i: the real part of q_i conj(k_i) is "
            "q_even k_even + q_odd k_odd (a plus sign)",
            lambda q, k, distance, base=10000.0: _score(q, k, distance, base, real_sign=-1.0)),
    Mistake("take the mean of the pair terms: the score is their SUM, .sum(dim=-1) (a dot product sums, it does "
            "not average)",
            lambda q, k, distance, base=10000.0: _score(q, k, distance, base, total="mean")),
    Mistake("use theta_i = base^(+2i/D): the exponent is negative, theta_i = base^(-2i/D)",
            lambda q, k, distance, base=10000.0: _score(q, k, distance, base, exponent=lambda i, D: i / D)),
    Mistake("leave cos and sin in float64: q times a float64 tensor becomes float64; convert them to q's dtype "
            "(.to(q.dtype))",
            lambda q, k, distance, base=10000.0: _score(q, k, distance, base, out_dtype=torch.float64)),
)

MISTAKES = {"sinusoidal_positions": SINUSOIDAL, "rope": ROPE, "rope_score": ROPE_SCORE}
