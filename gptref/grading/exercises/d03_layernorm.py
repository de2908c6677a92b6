"""Day 3, layer normalization: the forward pass, its backward by hand, and RMSNorm."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import gptref.norms as norms
from gptref.grading.spec import Exercise

DAY = "03_layernorm"

# leading shapes x last dim; the (1, 1) row and the constant rows catch a forgotten eps
_SHAPES = [(4, 16), (2, 3, 8), (5, 1), (1, 7, 33), (3, 2, 2, 5)]


def _x(g: torch.Generator, shape, dtype=torch.float64) -> torch.Tensor:
    """Rows with a non-zero mean and a non-unit scale, so centring and scaling both matter."""
    scale = torch.rand(shape[:-1] + (1,), generator=g, dtype=dtype) * 4 + 0.5
    shift = torch.randn(shape[:-1] + (1,), generator=g, dtype=dtype) * 3
    return torch.randn(shape, generator=g, dtype=dtype) * scale + shift


def _forward_cases(seed: int, with_bias: bool) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    cases = []
    for i, shape in enumerate(_SHAPES):
        d = shape[-1]
        case = {"x": _x(g, shape)}
        if i % 2 == 1 or i == len(_SHAPES) - 1:
            case["weight"] = torch.randn(d, generator=g, dtype=torch.float64)
            if with_bias:
                case["bias"] = torch.randn(d, generator=g, dtype=torch.float64)
        if i == 2:
            case["eps"] = 1e-3
        cases.append(case)
    cases.append({"x": torch.full((2, 6), 1.5, dtype=torch.float64)})  # constant rows: var = 0, needs eps
    cases.append({"x": _x(g, (3, 24), torch.float32)})  # float32 in, float32 out
    return cases


def _backward_cases(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed + 1)
    cases = []
    for i, shape in enumerate([(4, 16), (2, 3, 8), (6, 2), (1, 5, 31)]):
        d = shape[-1]
        cases.append({
            "grad_out": torch.randn(shape, generator=g, dtype=torch.float64),
            "x": _x(g, shape),
            "weight": torch.randn(d, generator=g, dtype=torch.float64),
            **({"eps": 1e-2} if i == 2 else {}),
        })
    return cases


def _rms_cases(seed: int) -> list[dict]:
    cases = [{k: v for k, v in c.items() if k != "bias"} for c in _forward_cases(seed + 7, False)]
    cases.append({"x": torch.zeros(3, 4, dtype=torch.float64)})  # all-zero rows: needs eps
    return cases


def _autograd_layer_norm_backward(grad_out, x, weight, eps=1e-5):
    """The trusted reference: torch's own layer norm, differentiated by autograd."""
    x = x.detach().clone().requires_grad_(True)
    w = weight.detach().clone().requires_grad_(True)
    b = torch.zeros_like(w, requires_grad=True)
    y = F.layer_norm(x, (x.shape[-1],), w, b, eps)
    dx, dw, db = torch.autograd.grad(y, (x, w, b), grad_out)
    return dx, dw, db


def _compare_grads(got, expected, case) -> str | None:
    names = ("grad_x", "grad_weight", "grad_bias")
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        return f"return a tuple (grad_x, grad_weight, grad_bias), got {type(got).__name__}"
    for name, a, e in zip(names, got, expected):
        if not isinstance(a, torch.Tensor):
            return f"{name} should be a tensor, got {type(a).__name__}"
        if tuple(a.shape) != tuple(e.shape):
            hint = " (sum over every leading dimension)" if name != "grad_x" else ""
            return f"{name} has shape {tuple(a.shape)}, expected {tuple(e.shape)}{hint}"
        if not torch.allclose(a.to(e.dtype), e, rtol=1e-6, atol=1e-8):
            err = (a.to(e.dtype) - e).abs().max().item()
            return f"{name} differs from autograd by up to {err:.3g}"
    return None


def _optional(*paths):
    """Callables that exist in this torch (torch.rms_norm, say, is recent)."""
    out = []
    for obj, attr in paths:
        fn = getattr(obj, attr, None)
        if fn is not None:
            out.append(fn)
    return tuple(out)


EXERCISES = [
    Exercise(
        day=DAY,
        name="layer_norm",
        grade_ids=("test_layer_norm",),
        make_cases=lambda seed: _forward_cases(seed, with_bias=True),
        reference=norms.layer_norm,
        forbidden=(norms.layer_norm, norms.LayerNorm, F.layer_norm, torch.nn.LayerNorm, torch.layer_norm,
                   *_optional((torch, "native_layer_norm"))),
        description="layer norm over the last dimension, biased variance, eps inside the square root",
    ),
    Exercise(
        day=DAY,
        name="layer_norm_backward",
        grade_ids=("test_layer_norm_backward",),
        make_cases=_backward_cases,
        reference=_autograd_layer_norm_backward,
        compare=_compare_grads,
        forbidden=(norms.layer_norm_backward, torch.autograd.grad, torch.autograd.backward, torch.Tensor.backward,
                   *_optional((torch.func, "grad"), (torch.func, "vjp"), (torch.autograd.functional, "vjp"))),
        description="dx, dweight, dbias of layer norm by the chain rule, checked against autograd",
    ),
    Exercise(
        day=DAY,
        name="rms_norm",
        grade_ids=("test_rms_norm",),
        make_cases=_rms_cases,
        reference=norms.rms_norm,
        forbidden=(norms.rms_norm, norms.RMSNorm,
                   *_optional((F, "rms_norm"), (torch, "rms_norm"), (torch.nn, "RMSNorm"))),
        description="RMSNorm: x / sqrt(mean(x^2) + eps) * weight",
    ),
]
