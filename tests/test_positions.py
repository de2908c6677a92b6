"""gptref.positions: the sinusoidal table from its formula, RoPE against the complex-number form."""

import math

import numpy as np
import pytest
import torch

from gptref.positions import rope, sinusoidal_positions


@pytest.mark.parametrize("n,d", [(10, 8), (7, 5)])
def test_sinusoidal_matches_formula(n, d):
    expected = np.zeros((n, d))
    for p in range(n):
        for c in range(d):
            i = c // 2
            angle = p / 10000 ** (2 * i / d)
            expected[p, c] = math.sin(angle) if c % 2 == 0 else math.cos(angle)
    got = sinusoidal_positions(n, d, dtype=torch.float64)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)


def _rope_complex(x, positions, base, interleaved):
    """The rotation as a complex multiplication: pair (a, b) -> (a + ib) * e^{i p theta}."""
    D = x.shape[-1]
    theta = base ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
    rot = torch.polar(torch.ones(len(positions), D // 2, dtype=torch.float64), positions[:, None].double() * theta)
    if interleaved:
        z = torch.view_as_complex(x.reshape(*x.shape[:-1], D // 2, 2).contiguous())
        return torch.view_as_real(z * rot).flatten(-2)
    z = torch.complex(x[..., : D // 2], x[..., D // 2 :])
    r = z * rot
    return torch.cat([r.real, r.imag], dim=-1)


@pytest.mark.parametrize("interleaved", [True, False])
def test_rope_matches_complex_form(interleaved):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 9, 16, generator=g, dtype=torch.float64)
    pos = torch.randint(0, 1000, (9,), generator=g)
    torch.testing.assert_close(rope(x, pos, interleaved=interleaved), _rope_complex(x, pos, 10000.0, interleaved))
    torch.testing.assert_close(rope(x, interleaved=interleaved, base=500.0),
                               _rope_complex(x, torch.arange(9), 500.0, interleaved))


@pytest.mark.parametrize("interleaved", [True, False])
def test_rope_dot_product_depends_only_on_offset(interleaved):
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(1, 32, generator=g, dtype=torch.float64), torch.randn(1, 32, generator=g, dtype=torch.float64)

    def score(m, n):
        qm = rope(q, torch.tensor([m]), interleaved=interleaved)
        kn = rope(k, torch.tensor([n]), interleaved=interleaved)
        return (qm * kn).sum().item()

    for m, n in [(5, 2), (17, 3), (40, 40)]:
        for shift in (1, 9, 250):
            assert score(m, n) == pytest.approx(score(m + shift, n + shift), rel=1e-9, abs=1e-9)
    assert abs(score(5, 2) - score(5, 3)) > 1e-6  # but it does depend on the offset
    torch.testing.assert_close(rope(q[None], torch.tensor([0])), q[None])  # position 0 is the identity


def test_rope_bad_input():
    with pytest.raises(ValueError, match="D even"):
        rope(torch.randn(4, 5))
    with pytest.raises(ValueError, match="positions"):
        rope(torch.randn(4, 6), torch.arange(3))
