"""Day 3, layer normalization: the forward pass, its backward by hand, and RMSNorm.

What each verdict checks, in order (the same ladder as the notebook's visible tests, so the verdict is at
least as strict as the test cell it may overrule):
- layer_norm: a tensor of x's shape/dtype/device; finite (constant rows too); without weight and bias each
  row has mean 0 and variance var / (var + eps); then the values against gptref.norms.layer_norm.
- layer_norm_backward: a tuple of three tensors of the right forms; grad_bias = sum of grad_out over rows;
  grad_weight = sum of grad_out * x_hat over rows; each row of grad_x sums to 0; then all three against autograd.
- rms_norm: a tensor of x's form; finite (all-zero rows too); without weight each row has mean square
  ms / (ms + eps); then the values against gptref.norms.rms_norm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import gptref.norms as norms
from gptref.grading.compare import difference, form_difference, policy, tolerances
from gptref.grading.spec import Exercise

DAY = "03_layernorm"

# leading shapes x last dim; (5, 1) is a single feature, so every row is constant and needs eps
_SHAPES = [(4, 16), (2, 3, 8), (5, 1), (1, 7, 33), (3, 2, 2, 5)]

EDGE_CASES_FORWARD = (
    "constant rows (variance 0: only eps keeps the output finite) and a single feature d = 1",
    "rows far from 0 (mean up to 3 times their spread), of either sign",
    "float32 rows 300 spreads from 0, where a one-pass variance mean(x**2) - mean(x)**2 cancels",
    "one, two and three leading dimensions",
    "float64 and float32 (the output keeps x's dtype)",
    "a non-default eps",
    "no weight or bias, weight and bias, weight only, bias only",
)


def _x(g: torch.Generator, shape, dtype=torch.float64) -> torch.Tensor:
    """Rows with a non-zero mean and a non-unit scale, so centring and scaling both matter."""
    scale = torch.rand(shape[:-1] + (1,), generator=g, dtype=dtype) * 4 + 0.5
    shift = torch.randn(shape[:-1] + (1,), generator=g, dtype=dtype) * 3
    return torch.randn(shape, generator=g, dtype=dtype) * scale + shift


def _forward_cases(seed: int, with_bias: bool) -> list[dict]:
    """Drawn rows of the shapes above, then the constructed edge cases (EDGE_CASES_FORWARD) on every seed."""
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
    cases.append({"x": _x(g, (3, 8)), "eps": 0.5})  # an eps large enough to matter: the argument must be used
    negative = -(torch.rand(3, 10, generator=g, dtype=torch.float64) + 2.0)  # every value, so every maximum, < 0
    cases.append({"x": negative, "weight": torch.rand(10, generator=g, dtype=torch.float64) + 0.5})  # weight only
    if with_bias:
        cases.append({"x": _x(g, (2, 9)), "bias": torch.randn(9, generator=g, dtype=torch.float64)})  # bias only
        # float32 rows 300 spreads from 0: mean(x**2) - mean(x)**2 cancels there (an error near 1e-2)
        sign = torch.where(torch.rand(4, 1, generator=g) < 0.5, -1.0, 1.0)
        cases.append({"x": torch.randn(4, 16, generator=g) + 300 * sign})
    return cases


def far_from_zero(x: torch.Tensor) -> bool:
    """float32 rows whose mean is over 50 spreads from 0: a correct answer is then off by up to about 1e-4 there."""
    return x.dtype == torch.float32 and bool((x.double().mean(-1).abs() > 50 * x.double().std(-1)).any())


def _forward_reference(x, weight=None, bias=None, eps=1e-5):
    """gptref's layer norm; far from 0 in float32 computed in float64 and rounded once (float32's own answer is off
    there by rounding)."""
    if far_from_zero(x):
        as64 = lambda t: None if t is None else t.double()  # noqa: E731
        return norms.layer_norm(x.double(), as64(weight), as64(bias), eps).to(x.dtype)
    return norms.layer_norm(x, weight, bias, eps)


def _compare_forward(got, expected, case) -> str | None:
    """The one policy, but to 1e-3 on float32 rows far from 0 (still 10 times below what a one-pass variance misses)."""
    if far_from_zero(case["x"]):
        return form_difference(got, expected, "layer_norm(x)") or difference(got, expected, "layer_norm(x)",
                                                                              rtol=1e-3, atol=1e-3)
    return policy(got, expected, case)


def _backward_cases(seed: int) -> list[dict]:
    """Drawn cases of several shapes, then d = 1, a constant row and float32 on every seed."""
    g = torch.Generator().manual_seed(seed + 1)
    cases = []
    for i, shape in enumerate([(4, 16), (2, 3, 8), (6, 2), (1, 5, 31), (3, 1)]):
        d = shape[-1]
        cases.append({
            "grad_out": torch.randn(shape, generator=g, dtype=torch.float64),
            "x": _x(g, shape),
            "weight": torch.randn(d, generator=g, dtype=torch.float64),
            **({"eps": 1e-2} if i == 2 else {}),
        })
    constant = torch.randn(4, 6, generator=g, dtype=torch.float64)
    constant[1] = 2.5  # one constant row: x_hat = 0 there, r = 1 / sqrt(eps)
    cases.append({"grad_out": torch.randn(4, 6, generator=g, dtype=torch.float64), "x": constant,
                  "weight": torch.randn(6, generator=g, dtype=torch.float64)})
    cases.append({"grad_out": torch.randn(2, 3, 12, generator=g), "x": _x(g, (2, 3, 12), torch.float32),
                  "weight": torch.randn(12, generator=g)})
    return cases


def _rms_cases(seed: int) -> list[dict]:
    """The forward cases without bias, plus all-zero rows (mean square 0: only eps keeps them finite)."""
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


# -- the ladders: what every correct answer has, checked in order before the values --------------
def _tight(dtype: torch.dtype) -> float:
    """How far a property may miss in this dtype (a correct answer misses by rounding only)."""
    return 1e-9 if dtype == torch.float64 else 2e-5


def _finite(what: str, got: torch.Tensor, x: torch.Tensor, zero_means: str) -> str | None:
    bad = ~torch.isfinite(got.detach())
    if not bool(bad.any()):
        return None
    row = tuple(int(i) for i in bad.nonzero()[0][:-1])
    values = x[row] if row else x
    kind = f", {zero_means}" if bool((values == values.flatten()[0]).all()) else ""
    return (f"{what} has NaN or inf in row {row}{kind}: for every row the denominator must stay above 0, "
            f"whatever x is")


def _row_stat_message(what, stat, got_rows, want_rows, tol, want_words, look) -> str | None:
    err = (got_rows - want_rows).abs()
    if bool((err <= tol * (1 + want_rows.abs())).all()):
        return None
    row = tuple(int(i) for i in (err == err.max()).nonzero()[0])
    return (f"each row of {what} should have {stat} {want_words}: row {row} has {got_rows[row].item():.10g}, "
            f"expected {want_rows[row].item():.10g}. {look}")


def layer_norm_form(got, case):
    """Rung 1: a tensor of x's shape, dtype and device."""
    return form_difference(got, case["x"], "layer_norm(x)")


def layer_norm_finite(got, case):
    """Rung 2: finite everywhere, constant rows included (eps keeps sqrt(var + eps) above 0)."""
    return _finite("layer_norm(x)", got, case["x"], "a row whose values are all equal (variance 0)")


def layer_norm_row_mean(got, case):
    """Rung 3 (no weight, no bias): every row has mean 0."""
    if case.get("weight") is not None or case.get("bias") is not None:
        return None
    return _row_stat_message("layer_norm(x) without weight and bias", "mean", got.double().mean(-1),
                             torch.zeros(got.shape[:-1], dtype=torch.float64),
                             1e-3 if far_from_zero(case["x"]) else _tight(got.dtype), "0",
                             "Subtract each row's own mean, taken over dim=-1 with keepdim=True, before dividing.")


def layer_norm_row_variance(got, case):
    """Rung 4 (no weight, no bias): every row has variance var / (var + eps), var the row's biased variance of x."""
    if case.get("weight") is not None or case.get("bias") is not None:
        return None
    x, eps = case["x"].double(), case.get("eps", 1e-5)
    var = x.var(-1, correction=0)
    return _row_stat_message("layer_norm(x) without weight and bias", "variance (dividing by d)",
                             got.double().var(-1, correction=0), var / (var + eps),
                             1e-3 if far_from_zero(case["x"]) else _tight(got.dtype),
                             "var / (var + eps), just under 1 (var: that row's variance of x, dividing by d)",
                             "Look at how you compute the variance and where eps enters the denominator.")


def backward_form(got, case):
    """Rung 1: a tuple of three tensors, grad_x of x's form, grad_weight and grad_bias of weight's form."""
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        return f"return a tuple (grad_x, grad_weight, grad_bias), got {type(got).__name__}"
    likes = (case["x"], case["weight"], case["weight"])
    for name, tensor, like in zip(("grad_x", "grad_weight", "grad_bias"), got, likes):
        message = form_difference(tensor, like, name)
        if message:
            if name != "grad_x":
                message += ("; grad_weight and grad_bias hold one number per feature: sum over all leading dimensions "
                            "(every dimension but the last)")
            return message
    return None


def _x_hat(case) -> torch.Tensor:
    x, eps = case["x"].double(), case.get("eps", 1e-5)
    return (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, correction=0, keepdim=True) + eps)


def _close(got: torch.Tensor, want: torch.Tensor) -> float | None:
    """The largest error of got against want (float64), or None when within the dtype's tolerance."""
    rtol, atol = tolerances(got.dtype)
    err = (got.detach().double() - want).abs()
    return None if bool((err <= atol + rtol * want.abs()).all()) else err.max().item()


def backward_grad_bias(got, case):
    """Rung 2: grad_bias = grad_out summed over every leading dimension."""
    leading = tuple(range(case["x"].dim() - 1))
    err = _close(got[2], case["grad_out"].double().sum(leading))
    return None if err is None else (
        f"grad_bias should be grad_out added up over every row (all leading dimensions), since bias is added to "
        f"every row; yours is off by up to {err:.3g}")


def backward_grad_weight(got, case):
    """Rung 3: grad_weight = (grad_out * x_hat) summed over every leading dimension."""
    leading = tuple(range(case["x"].dim() - 1))
    err = _close(got[1], (case["grad_out"].double() * _x_hat(case)).sum(leading))
    return None if err is None else (
        f"grad_weight differs from the sum over every row of grad_out * x_hat by up to {err:.3g}; x_hat is what "
        f"weight multiplies, (x - mean) / sqrt(var + eps) exactly as in the forward pass (biased variance, eps "
        f"inside the root): check the sum, each part of x_hat, and that grad_out * x_hat is all the product "
        f"holds (weight is not part of its own gradient)")


def backward_rows_sum_to_zero(got, case):
    """Rung 4: each row of grad_x sums to 0 (adding a constant to a row of x leaves the output unchanged)."""
    grad_x = got[0].detach().double()
    scale = grad_x.abs().amax(-1) + 1.0
    sums = grad_x.sum(-1)
    tol = 1e-9 if got[0].dtype == torch.float64 else 1e-4
    bad = sums.abs() > tol * scale * grad_x.shape[-1]
    if not bool(bad.any()):
        return None
    row = tuple(int(i) for i in bad.nonzero()[0])
    return (f"each row of grad_x should sum to 0, because adding the same number to every x_i of a row does not "
            f"change layer_norm's output: row {row} sums to {sums[row].item():.4g}. In the formula, subtracting "
            f"h.mean(-1) makes h's part sum to 0, and the x_hat part sums to 0 because x_hat does")


def backward_orthogonal_to_x_hat(got, case):
    """Rung 5: each row of grad_x is orthogonal to x_hat up to eps: sum_i grad_x_i x_hat_i = r d mean(h x_hat) eps
    / (var + eps) (scaling a row of x about its mean leaves the output unchanged, but for eps)."""
    x, eps = case["x"].double(), case.get("eps", 1e-5)
    var = x.var(-1, correction=0, keepdim=True)
    x_hat = _x_hat(case)
    h = case["grad_out"].double() * case["weight"].double()
    want = (x.shape[-1] * (h * x_hat).mean(-1, keepdim=True) * eps / (var + eps) / torch.sqrt(var + eps)).squeeze(-1)
    dots = (got[0].detach().double() * x_hat).sum(-1)
    tol = (1e-8 if got[0].dtype == torch.float64 else 1e-3) * (got[0].detach().double().abs().amax(-1) + 1)
    bad = (dots - want).abs() > tol * x.shape[-1]
    if not bool(bad.any()):
        return None
    row = tuple(int(i) for i in bad.nonzero()[0])
    return (f"each row of grad_x should be orthogonal to x_hat (sum_i grad_x_i * x_hat_i = {want[row].item():.4g}, "
            f"0 but for eps), because scaling a row of x about its mean does not change layer_norm's output: row "
            f"{row} gives {dots[row].item():.4g}. Look at each factor of the formula: the leading r = 1 / sqrt(var + "
            f"eps), h = grad_out * weight, the term through the variance, - x_hat * mean(h * x_hat), and the x_hat it "
            f"uses (biased variance, eps inside the root)")


def _compare_grads(got, expected, case) -> str | None:
    """Rung 5: each gradient against autograd, at its dtype's tolerance."""
    for name, a, e in zip(("grad_x", "grad_weight", "grad_bias"), got, expected):
        message = difference(a, e, f"{name} (compared with autograd)")
        if message:
            return message
    return None


def rms_norm_form(got, case):
    """Rung 1: a tensor of x's shape, dtype and device."""
    return form_difference(got, case["x"], "rms_norm(x)")


def rms_norm_finite(got, case):
    """Rung 2: finite everywhere, all-zero rows included (eps keeps the root above 0)."""
    return _finite("rms_norm(x)", got, case["x"], "a row whose values are all equal")


def rms_norm_mean_square(got, case):
    """Rung 3 (no weight): every row has mean square ms / (ms + eps), ms the row's mean of x**2."""
    if case.get("weight") is not None:
        return None
    x, eps = case["x"].double(), case.get("eps", 1e-6)
    ms = (x ** 2).mean(-1)
    return _row_stat_message("rms_norm(x) without weight", "mean square", (got.double() ** 2).mean(-1),
                             ms / (ms + eps), _tight(got.dtype),
                             "ms / (ms + eps), just under 1 (ms: that row's mean of x**2, around 0, "
                             "not around the mean)",
                             "Look at what you divide x by: the root of the mean of x**2 (plus eps).")


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
        reference=_forward_reference,
        compare=_compare_forward,
        forbidden=(norms.layer_norm, norms.LayerNorm, F.layer_norm, torch.nn.LayerNorm, torch.layer_norm,
                   *_optional((torch, "native_layer_norm"))),
        description="layer norm over the last dimension, biased variance, eps inside the square root",
        properties=(layer_norm_form, layer_norm_finite, layer_norm_row_mean, layer_norm_row_variance),
        edge_cases=EDGE_CASES_FORWARD,
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
        properties=(backward_form, backward_grad_bias, backward_grad_weight, backward_rows_sum_to_zero,
                    backward_orthogonal_to_x_hat),
        edge_cases=("a single feature d = 1 (x_hat = 0: grad_x = 0)", "a constant row (r = 1 / sqrt(eps))",
                    "d = 2 with a non-default eps", "one, two and three leading dimensions (sums over all of them)",
                    "float64 and float32"),
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
        properties=(rms_norm_form, rms_norm_finite, rms_norm_mean_square),
        edge_cases=("all-zero rows (mean square 0: only eps keeps them finite)", "constant non-zero rows and d = 1",
                    "rows of one sign only, all negative", "one, two and three leading dimensions",
                    "float64 and float32", "a non-default eps", "with and without weight"),
    ),
]
