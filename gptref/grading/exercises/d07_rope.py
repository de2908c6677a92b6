"""Day 7, position embeddings: the sinusoidal table, RoPE, and the relative form of RoPE's scores."""

from __future__ import annotations

import torch

import gptref.positions as ref  # not `positions`: that is also rope's argument name
from gptref.grading.compare import difference
from gptref.grading.ladders.d07_rope import LADDERS
from gptref.grading.spec import Exercise

DAY = "07_rope"


def _sinusoidal_cases(seed: int) -> list[dict]:
    """Constructed on every seed: one position and one pair (1, 2), an odd number of pairs (7, 6), a long table
    whose slow pairs must still use 10000^(-2i/d) (300, 10), 10,000 positions (float32 angles lose digits there);
    then a drawn size."""
    g = torch.Generator().manual_seed(seed)
    sizes = [(1, 2), (16, 8), (50, 32), (7, 6), (300, 10), (10000, 6)]
    sizes.append((int(torch.randint(2, 200, (1,), generator=g)), 2 * int(torch.randint(1, 64, (1,), generator=g))))
    return [{"n_positions": n, "d_model": d} for n, d in sizes]


def _rope_cases(seed: int) -> list[dict]:
    """Constructed on every seed: T = 1 with D = 2 (one pair); 2-D, 3-D and 4-D inputs in float64 and float32;
    a base other than 10000; explicit positions that are shifted, out of order, contain 0 away from index 0, and
    reach the thousands in float64 and 3000017 in float32 (where float32 angles lose digits)."""
    g = torch.Generator().manual_seed(seed)
    cases = [
        {"x": torch.randn(1, 2, generator=g, dtype=torch.float64), "positions": torch.tensor([5])},  # T = 1, D = 2
        {"x": torch.randn(5, 4, generator=g, dtype=torch.float64)},
        {"x": torch.randn(2, 9, 16, generator=g, dtype=torch.float64)},
        {"x": torch.randn(2, 3, 6, 8, generator=g)},  # float32, (B, H, T, D)
        {"x": torch.randn(3, 10, generator=g, dtype=torch.float64), "base": 100.0},
    ]
    # explicit positions: out of order with 0 in the middle, large (float64 only)
    x = torch.randn(5, 12, generator=g, dtype=torch.float64)
    drawn = torch.randint(0, 4000, (2,), generator=g)
    cases.append({"x": x, "positions": torch.cat([torch.tensor([3999, 0, 1234]), drawn])})
    x = torch.randn(2, 5, 6, generator=g)
    cases.append({"x": x, "positions": torch.arange(5) + int(torch.randint(1, 300, (1,), generator=g))})
    x = torch.randn(4, 8, generator=g)  # float32 at position 3000017: float32 angles are off by about 1e-2 there
    cases.append({"x": x, "positions": torch.cat([torch.tensor([3000017, 0, 7]),
                                                   torch.randint(0, 1000, (1,), generator=g)])})
    return cases


def _score_cases(seed: int) -> list[dict]:
    """Constructed on every seed: distance 0, negative, large (1000, and 300001 in float32, where angles computed in
    float32 lose digits) and drawn; D = 2 (one pair); one vector, a batch and two leading dimensions; float64 and
    float32; a base other than 10000."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for shape, dist, dtype in [((8,), 3, torch.float64), ((4, 16), -5, torch.float64), ((2, 3, 32), 0, torch.float64),
                               ((6, 8), 250, torch.float32), ((64,), 1000, torch.float64), ((5, 2), 9, torch.float64),
                               ((3, 16), 300001, torch.float32)]:
        cases.append({"q": torch.randn(shape, generator=g, dtype=dtype),
                      "k": torch.randn(shape, generator=g, dtype=dtype), "distance": dist})
    cases.append({"q": torch.randn(3, 10, generator=g, dtype=torch.float64),
                  "k": torch.randn(3, 10, generator=g, dtype=torch.float64),
                  "distance": int(torch.randint(-100, 100, (1,), generator=g)), "base": 500.0})
    return cases


def _rope_reference(x, positions=None, base=10000.0):
    return ref.rope(x, positions, base=base, interleaved=True)


def _score_reference(q, k, distance, base=10000.0):
    """<rope(q) at position m, rope(k) at position n> with m - n = distance, through the reference."""
    n = 11
    m = n + distance
    if m < 0:  # keep both positions non-negative; only the difference matters
        m, n = 0, -distance
    rq = ref.rope(q[..., None, :], torch.tensor([m]), base=base)  # (..., 1, D)
    rk = ref.rope(k[..., None, :], torch.tensor([n]), base=base)
    return (rq * rk).sum(-1).squeeze(-1)  # (...)



def _close(tol32: float):
    def compare(got, expected, case) -> str | None:
        if not isinstance(got, torch.Tensor):
            return f"return a tensor, got {type(got).__name__}"
        if tuple(got.shape) != tuple(expected.shape):
            return f"shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
        if got.dtype != expected.dtype:
            return f"dtype {got.dtype}, expected {expected.dtype} (return the input's dtype)"
        if not torch.isfinite(got).all():
            return "the result has NaN or inf"
        tol = tol32 if expected.dtype == torch.float32 else 1e-8
        scale = max(1.0, expected.abs().max().item() if expected.numel() else 1.0)
        return difference(got, expected, "the output", rtol=0.0, atol=tol * scale)
    return compare


EXERCISES = [
    Exercise(
        day=DAY,
        name="sinusoidal_positions",
        grade_ids=("test_sinusoidal_positions",),
        make_cases=_sinusoidal_cases,
        reference=ref.sinusoidal_positions,
        compare=_close(1e-6),  # float64 rounded once to float32: a correct table is within an ulp or two
        forbidden=(ref.sinusoidal_positions,),
        description="(n, d) table: sin(p w_i) on even channels, cos(p w_i) on odd, w_i = 10000^(-2i/d)",
        # the ladder: float32 (n, d), finite; row 0 = (0, 1, 0, 1, ...); sin^2 + cos^2 = 1 per pair; pair i turns
        # by 10000^(-2i/d) per position; then every value (what the visible test checks, on more sizes)
        properties=LADDERS["sinusoidal_positions"],
        edge_cases=("one position (n = 1)", "one pair (d = 2)", "an odd number of pairs (d = 6)",
                    "a long table (300 positions) where the slow pairs show the exponent",
                    "10,000 positions, where angles computed in float32 lose digits"),
    ),
    Exercise(
        day=DAY,
        name="rope",
        grade_ids=("test_rope",),
        make_cases=_rope_cases,
        reference=_rope_reference,
        compare=_close(1e-4),
        forbidden=(ref.rope, ref.rope_angles),
        description="rotate channel pairs (2i, 2i+1) of x (..., T, D) by p * base^(-2i/D)",
        # the ladder: x's shape and dtype, finite; lengths kept; vectors at position 0 unchanged; then values,
        # which imply the visible test's relative (m - n) and shift checks
        properties=LADDERS["rope"],
        edge_cases=("T = 1", "one pair (D = 2)", "2-D, 3-D and 4-D inputs", "float32 and float64",
                    "a base other than 10000", "positions out of order with 0 away from index 0",
                    "positions in the thousands in float64", "position 3000017 in float32", "shifted positions"),
    ),
    Exercise(
        day=DAY,
        name="rope_score",
        grade_ids=("test_rope_score",),
        make_cases=_score_cases,
        reference=_score_reference,
        compare=_close(1e-4),
        forbidden=(ref.rope, ref.rope_angles),
        description="q_m . k_n under RoPE computed from m - n alone",
        # the ladder: one score per vector in q's dtype, finite; |score| <= |q| |k|; q . k at distance 0; then values
        properties=LADDERS["rope_score"],
        edge_cases=("distance 0", "negative distance", "large distance (1000; 300001 in float32)", "one pair (D = 2)",
                    "no, one and two leading dimensions", "float32 and float64", "a base other than 10000"),
    ),
]
