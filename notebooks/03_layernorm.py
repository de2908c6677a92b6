"""Builds solutions/03_layernorm/03_layernorm.ipynb: layer normalization, its backward pass, RMSNorm."""

from tools.nbbuild import Notebook

nb = Notebook("03_layernorm")

nb.md(r"""
# Day 3 — Layer normalization

A transformer is a tall stack of blocks that each *add* something to a running vector, the
residual stream. Without care, the scale of that vector drifts from layer to layer and training
becomes fragile. Layer normalization (Ba, Kiros & Hinton, 2016) rescales each vector to a fixed
mean and spread before it is used; it sits in every block of GPT.

**Learning goals.** After this notebook you can

1. write layer normalization's forward pass and say why it uses the *biased* variance and an $\varepsilon$;
2. derive its backward pass by hand and check it against autograd;
3. write RMSNorm, the cheaper variant used by Llama and many recent models;
4. explain, from a measurement, why GPT-2 moved the norm *before* each sub-layer (pre-norm).
""")

nb.md(r"""
## 1. The idea

Take one vector $x \in \mathbb{R}^d$ (one token's activations; a batch is normalized row by row,
over the **last** dimension only). Layer norm computes its mean and its variance,

$$\mu = \frac{1}{d}\sum_{j=1}^{d} x_j, \qquad \sigma^2 = \frac{1}{d}\sum_{j=1}^{d} (x_j - \mu)^2,$$

then standardizes and applies a learned per-channel scale $\gamma$ (`weight`) and shift $\beta$ (`bias`):

$$\hat x_j = \frac{x_j - \mu}{\sqrt{\sigma^2 + \varepsilon}}, \qquad y_j = \gamma_j \hat x_j + \beta_j .$$

Three details matter and are easy to get wrong:

* **Biased variance.** We divide by $d$, not $d-1$. We are not estimating the variance of a
  population from a sample; we are rescaling *this* vector so that its own mean square is one.
  `torch.var` divides by $d-1$ unless told `unbiased=False` (or `correction=0`).
* **$\varepsilon$ inside the square root.** A constant row has $\sigma^2 = 0$; without
  $\varepsilon$ (PyTorch's default is $10^{-5}$) it gives $0/0$.
* **Per row, not per batch.** Batch norm averages over the batch; layer norm never mixes tokens,
  so it behaves the same at training and inference time and for a batch of one.

Since $\hat x$ has mean 0 and mean square 1 (up to $\varepsilon$), every row enters the next
layer at the same scale, whatever happened upstream; $\gamma$ and $\beta$ let the model undo the
standardization where it helps.
""")

nb.md(r"""
## 2. A worked example

One row, $x = (1, 2, 3, 6)$: by hand, $\mu = (1+2+3+6)/4 = 3$, the deviations are $(-2, -1, 0, 3)$ and
$\sigma^2 = (4+1+0+9)/4 = 3.5$, so $\hat x = (-2, -1, 0, 3)/\sqrt{3.5 + \varepsilon}$. The cell below prints
$\mu$, $\sigma^2$ and $\hat x$ computed this way, and $\hat x$ from torch's built-in `F.layer_norm` (which you
will now write yourself): the two rows of $\hat x$ agree up to float32 rounding (at most the last printed
digits differ).
""")

nb.code(r"""
import math

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
x = torch.tensor([[1.0, 2.0, 3.0, 6.0]])
mu = x.mean(-1, keepdim=True)
var = ((x - mu) ** 2).mean(-1, keepdim=True)
print("mu, var     :", mu.item(), var.item())
print("by hand     :", ((x - mu) / torch.sqrt(var + 1e-5)).tolist())
print("F.layer_norm:", F.layer_norm(x, (4,)).tolist())
""")

nb.md(r"""
## Exercise 1 — the forward pass (2 points)

Write `layer_norm(x, weight=None, bias=None, eps=1e-5)`: normalize over the last dimension of `x`
(any number of leading dimensions), then multiply by `weight` and add `bias` when they are given
(each of shape `(d,)`). Return a tensor of `x`'s shape and dtype.

You may use tensor arithmetic, `mean`, `sum`, `sqrt`/`rsqrt`; you may **not** call
`F.layer_norm`, `nn.LayerNorm` or `gptref.norms.layer_norm` (the hidden tests check).
""")

nb.solution("layer_norm", r'''
def layer_norm(x, weight=None, bias=None, eps=1e-5):
    """Normalize x over its last dimension to mean 0 and variance 1, then scale and shift."""
    ### BEGIN SOLUTION
    mean = x.mean(dim=-1, keepdim=True)                   # (..., 1)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)    # biased: divide by d, (..., 1)
    y = (x - mean) / torch.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y
    ### END SOLUTION
''')

nb.tests("test_layer_norm", 2, r'''
from gptref.grading.compare import difference, form_difference
from gptref.grading.explain import call, which_mistake
from gptref.grading.mistakes.d03_layernorm import MISTAKES
from gptref.grading.ladders import mistakes_agreeing


def _check_layer_norm(x, **kwargs):
    """layer_norm(x, **kwargs) in order: form, finite, rows of mean 0 and variance var / (var + eps) when there is
    no weight and no bias, then the values of F.layer_norm. A failure also names the known mistake it matches."""
    eps = kwargs.get("eps", 1e-5)
    given = {"x": x.clone(), **{k: v.clone() if torch.is_tensor(v) else v for k, v in kwargs.items()}}
    out = call(layer_norm, **given)
    # float32 rows far from 0 (over 50 spreads): float32's own answer is off by rounding there, so the float64
    # answer rounded once is the reference and the tolerance 1e-3 (a one-pass variance misses by about 1e-2)
    far = x.dtype == torch.float32 and bool((x.double().mean(-1).abs() > 50 * x.double().std(-1)).any())
    ref = F.layer_norm(x.double() if far else x, (x.shape[-1],), kwargs.get("weight"), kwargs.get("bias"),
                       eps).to(x.dtype)

    def fail(problem):
        known = mistakes_agreeing(layer_norm, MISTAKES["layer_norm"], _LN_CASES)  # named only if it fits them all
        raise AssertionError(problem + which_mistake(out, known, {"x": x, **kwargs}, ref))

    changed = [k for k, v in given.items() if torch.is_tensor(v) and not torch.equal(v, {"x": x, **kwargs}[k])]
    if changed:
        fail(f"layer_norm changed its argument {changed[0]!r} in place (an operation ending in _, or -=, /=): "
             f"leave the inputs as they are and compute new tensors")
    if form_difference(out, ref, "layer_norm(x)"):
        fail(form_difference(out, ref, "layer_norm(x)") + (
            " (keep x's dtype: no .double() or .float() on x)" if torch.is_tensor(out) and out.dtype != x.dtype
            else ""))
    bad_rows = (~torch.isfinite(out)).any(-1)
    if bad_rows.any():
        fail(f"layer_norm(x) has NaN or inf in a row of x = {x[bad_rows][0].tolist()}: the denominator must stay "
             f"above 0 for every row, a row of equal values (variance 0) too")
    if "weight" not in kwargs and "bias" not in kwargs:
        tol = 1e-9 if x.dtype == torch.float64 else 1e-3 if far else 2e-5
        mean = out.double().mean(-1)
        if (mean.abs() > tol).any():
            fail(f"each row of layer_norm(x) should have mean 0; one has mean {mean.abs().max():.6g}. "
                 f"Subtract each row's own mean, taken over dim=-1 with keepdim=True, before dividing")
        var_x = x.double().var(-1, correction=0)
        want, var = var_x / (var_x + eps), out.double().var(-1, correction=0)
        if ((var - want).abs() > tol).any():
            i = (var - want).abs().argmax()
            fail(f"each row of layer_norm(x) should have variance var / (var + eps), just under 1 (var: that row's "
                 f"variance of x, dividing by d): one row has {var.flatten()[i]:.10g} instead of "
                 f"{want.flatten()[i]:.10g}. "
                 f"Look at how you compute the variance and where eps enters the denominator")
    problem = difference(out, ref, "layer_norm(x" + "".join(f", {k}" for k in kwargs) + ")",
                         **(dict(rtol=1e-3, atol=1e-3) if far else {}))
    if problem:
        given_parts = {"weight": "weight" in kwargs, "bias": "bias" in kwargs}
        if any(given_parts.values()) and not all(given_parts.values()):
            problem += (f" (here only {'weight' if given_parts['weight'] else 'bias'} is given: y = x_hat * weight, or "
                        f"x_hat + bias; apply each one that is given, whether or not the other is)")
        fail(problem + " (compared with F.layer_norm)")


torch.manual_seed(1)
_x = torch.randn(5, 12, dtype=torch.float64) * 3 + 2
_w, _b = torch.randn(12, dtype=torch.float64), torch.randn(12, dtype=torch.float64)
_LN_CASES = [
    dict(x=torch.randn(5, 12, dtype=torch.float64) * 3 + 2),           # rows far from 0
    dict(x=torch.full((2, 6), 3.0)),                                    # constant rows: variance 0
    dict(x=torch.randn(4, 1, dtype=torch.float64)),                     # d = 1: every row is constant
    dict(x=torch.randn(2, 3, 8)),                                       # float32, 3-D
    dict(x=torch.randn(2, 3, 8, dtype=torch.float64), eps=0.5),         # another eps, large enough to matter
    dict(x=_x, weight=_w, bias=_b),                                     # y = x_hat * weight + bias
    dict(x=-torch.rand(3, 12, dtype=torch.float64) - 2, weight=_w),     # all negative, weight only
    dict(x=_x, bias=_b),                                                # bias only
    dict(x=torch.randn(4, 16) - 300),                                   # float32, 300 spreads below 0
]
for _case in _LN_CASES:
    _check_layer_norm(**_case)
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("03_layernorm", "layer_norm", layer_norm)
### END HIDDEN TESTS
''')

nb.md(r"""
## 3. The backward pass by hand

Autograd will differentiate layer norm for us, but deriving the gradient once shows why
normalization is *not* just "divide by a constant": $\mu$ and $\sigma$ depend on every $x_j$.

Write $r = (\sigma^2 + \varepsilon)^{-1/2}$ and let $g = \partial L/\partial y$ be the incoming
gradient. The learned parameters are easy, summing over every leading (batch, time) position:

$$\frac{\partial L}{\partial \gamma_j} = \sum_{\text{rows}} g_j \hat x_j, \qquad
\frac{\partial L}{\partial \beta_j} = \sum_{\text{rows}} g_j .$$

For the input, let $h_j = g_j \gamma_j$ (the gradient with respect to $\hat x_j$). Using
$\partial \mu / \partial x_i = 1/d$ and $\partial \sigma^2 / \partial x_i = 2 (x_i - \mu)/d$,
the chain rule through $\hat x_j = (x_j - \mu) r$ collapses to

$$\frac{\partial L}{\partial x_i}
  = r \left( h_i - \frac{1}{d}\sum_j h_j - \hat x_i \,\frac{1}{d}\sum_j h_j \hat x_j \right).$$

Read it as: take the gradient, remove its mean (the output cannot change by a shift of $x$)
and remove its component along $\hat x$ (nor by a rescaling of $x$), then scale by $r$.
A check follows: $\sum_i \partial L / \partial x_i = 0$ for every row.
""")

nb.md(r"""
## Exercise 2 — the backward pass (3 points)

Write `layer_norm_backward(grad_out, x, weight, eps=1e-5)` returning the tuple
`(grad_x, grad_weight, grad_bias)` for `y = layer_norm(x, weight, bias, eps)`, where `grad_out`
is $\partial L/\partial y$ (same shape as `x`) and `weight` has shape `(d,)`. `grad_weight` and
`grad_bias` have shape `(d,)`: sum over all leading dimensions.

Use the formula above; do not call autograd (`.backward()`, `torch.autograd.grad`) — the tests
use it to check you.
""")

nb.solution("layer_norm_backward", r'''
def layer_norm_backward(grad_out, x, weight, eps=1e-5):
    """Gradients (grad_x, grad_weight, grad_bias) of layer norm, from the chain rule."""
    ### BEGIN SOLUTION
    mean = x.mean(dim=-1, keepdim=True)                                      # (..., 1)
    r = 1.0 / torch.sqrt(((x - mean) ** 2).mean(dim=-1, keepdim=True) + eps)  # (..., 1)
    x_hat = (x - mean) * r                                                   # (..., d)
    h = grad_out * weight                                                    # dL/dx_hat, (..., d)
    grad_x = r * (h - h.mean(dim=-1, keepdim=True) - x_hat * (h * x_hat).mean(dim=-1, keepdim=True))
    leading = tuple(range(x.dim() - 1))
    grad_weight = (grad_out * x_hat).sum(dim=leading)                        # (d,)
    grad_bias = grad_out.sum(dim=leading)                                    # (d,)
    return grad_x, grad_weight, grad_bias
    ### END SOLUTION
''')

nb.tests("test_layer_norm_backward", 3, r'''
from gptref.grading.compare import difference, form_difference
from gptref.grading.explain import call, which_mistake
from gptref.grading.mistakes.d03_layernorm import MISTAKES
from gptref.grading.ladders import mistakes_agreeing


def _check_layer_norm_backward(g, x, w, eps=1e-5):
    """layer_norm_backward in order: three tensors of the right shapes, grad_bias, grad_weight, rows of grad_x that
    sum to 0, then grad_x against autograd. A failure also names the known mistake it matches."""
    xg, wg = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
    bg = torch.zeros_like(w, requires_grad=True)
    ref = torch.autograd.grad(F.layer_norm(xg, (x.shape[-1],), wg, bg, eps), (xg, wg, bg), g)
    given = (g.clone(), x.clone(), w.clone())
    res = call(layer_norm_backward, *given, eps=eps)

    def fail(problem):
        known = mistakes_agreeing(layer_norm_backward, MISTAKES["layer_norm_backward"],   # named only if it fits
                                  [dict(zip(("grad_out", "x", "weight", "eps"), c)) for c in _LNB_CASES])  # them all
        raise AssertionError(problem + which_mistake(res, known, {"grad_out": g, "x": x, "weight": w, "eps": eps},
                                                     ref))

    for name, after, before in zip(("grad_out", "x", "weight"), given, (g, x, w)):
        if not torch.equal(after, before):
            fail(f"layer_norm_backward changed its argument {name!r} in place (an operation ending in _, or -=, "
                 f"/=): leave the inputs as they are and compute new tensors")

    if not isinstance(res, tuple) or len(res) != 3:
        fail(f"return a tuple (grad_x, grad_weight, grad_bias), got {type(res).__name__}")
    for name, got, like in zip(("grad_x", "grad_weight", "grad_bias"), res, (x, w, w)):
        if form_difference(got, like, name):
            fail(form_difference(got, like, name) + ("" if name == "grad_x" else
                 "; grad_weight and grad_bias hold one number per feature: sum over all leading dimensions"))
    grad_x, grad_weight, grad_bias = res
    if difference(grad_bias, ref[2], "grad_bias"):
        fail("grad_bias should be grad_out added up over every row (all leading dimensions), since bias is added "
             "to every row: " + difference(grad_bias, ref[2], "grad_bias"))
    if difference(grad_weight, ref[1], "grad_weight"):
        fail("grad_weight is the sum over every row of grad_out * x_hat, x_hat = (x - mean) / sqrt(var + eps) "
             "being what weight multiplies, exactly as in the forward pass (biased variance, eps inside the root); "
             "check the sum, each part of x_hat, and that grad_out * x_hat is all the product holds (weight "
             "is not part of its own gradient): " + difference(grad_weight, ref[1], "grad_weight"))
    sums, tol = grad_x.double().sum(-1), (1e-9 if x.dtype == torch.float64 else 1e-4)
    if (sums.abs() > tol * (grad_x.double().abs().amax(-1) + 1) * x.shape[-1]).any():
        fail(f"each row of grad_x should sum to 0, because adding the same number to every x_i of a row does not "
             f"change layer_norm's output; one row sums to {sums.abs().max():.4g}. In the formula, subtracting "
             f"h.mean(-1) makes h's part sum to 0, and the x_hat part sums to 0 because x_hat does")
    x_hat = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, correction=0, keepdim=True) + eps)
    var, h = x.var(-1, correction=0), (g * w).double()
    r_eps = (eps / (var + eps) / torch.sqrt(var + eps)).double()          # what eps leaves of sum_i grad_x_i x_hat_i
    want = x.shape[-1] * (h * x_hat.double()).mean(-1) * r_eps
    dots = (grad_x.double() * x_hat.double()).sum(-1)
    worst = (dots - want).abs().argmax()
    if ((dots - want).abs() > tol * (grad_x.double().abs().amax(-1) + 1) * x.shape[-1]).any():
        fail(f"each row of grad_x should be orthogonal to x_hat (sum_i grad_x_i * x_hat_i is 0 but for eps), because "
             f"scaling a row of x about its mean does not change layer_norm's output; one row gives "
             f"{dots.flatten()[worst]:.4g} instead of {want.flatten()[worst]:.4g}. "
             f"Look at each factor of the formula: the leading r = 1 / sqrt(var + eps), h = grad_out * weight, the "
             f"term through the variance, - x_hat * mean(h * x_hat), and the x_hat it uses (biased variance, eps "
             f"inside the root)")
    if difference(grad_x, ref[0], "grad_x"):
        fail(difference(grad_x, ref[0], "grad_x") + " (compared with autograd)")


torch.manual_seed(2)
_xc = torch.randn(3, 6, dtype=torch.float64)
_xc[1] = 2.5                                                                      # a constant row: x_hat = 0 there
_LNB_CASES = [  # (grad_out, x, weight, eps)
    (torch.randn(4, 3, 10, dtype=torch.float64),                                  # 2 leading dimensions
     torch.randn(4, 3, 10, dtype=torch.float64) * 2 + 1, torch.randn(10, dtype=torch.float64), 1e-5),
    (torch.randn(3, 6, dtype=torch.float64), _xc, torch.randn(6, dtype=torch.float64), 1e-2),
    (torch.randn(5, 1, dtype=torch.float64), torch.randn(5, 1, dtype=torch.float64),
     torch.randn(1, dtype=torch.float64), 1e-5),                                  # d = 1: grad_x is 0
    (torch.randn(2, 7), torch.randn(2, 7) * 3 - 1, torch.randn(7), 1e-5),         # float32
]
for _g, _x, _w, _eps in _LNB_CASES:
    _check_layer_norm_backward(_g, _x, _w, eps=_eps)
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("03_layernorm", "layer_norm_backward", layer_norm_backward)
### END HIDDEN TESTS
''')

nb.md(r"""
## 4. RMSNorm

Zhang & Sennrich (2019) observed that the re-centring of layer norm contributes little; dropping
it saves a reduction and the bias. RMSNorm divides by the root mean square and keeps only a scale:

$$y_j = \gamma_j \, \frac{x_j}{\sqrt{\frac{1}{d}\sum_{k} x_k^2 + \varepsilon}} .$$

Llama, Mistral and most recent open models use it (with $\varepsilon \approx 10^{-6}$).
Note what it does *not* guarantee: the output's mean is not zero.

## Exercise 3 — RMSNorm (1 point)

Write `rms_norm(x, weight=None, eps=1e-6)` over the last dimension. Do not call `F.rms_norm`,
`nn.RMSNorm` or `gptref.norms.rms_norm`.
""")

nb.solution("rms_norm", r'''
def rms_norm(x, weight=None, eps=1e-6):
    """Divide x by the root mean square of its last dimension, then scale by weight."""
    ### BEGIN SOLUTION
    y = x / torch.sqrt((x ** 2).mean(dim=-1, keepdim=True) + eps)  # (..., d)
    return y if weight is None else y * weight
    ### END SOLUTION
''')

nb.tests("test_rms_norm", 1, r'''
from gptref.grading.compare import difference, form_difference
from gptref.grading.explain import call, which_mistake
from gptref.grading.mistakes.d03_layernorm import MISTAKES
from gptref.grading.ladders import mistakes_agreeing


def _check_rms_norm(x, **kwargs):
    """rms_norm(x, **kwargs) in order: form, finite, rows of mean square ms / (ms + eps) when there is no weight,
    then the values of the formula. A failure also names the known mistake it matches."""
    eps = kwargs.get("eps", 1e-6)
    given = {"x": x.clone(), **{k: v.clone() if torch.is_tensor(v) else v for k, v in kwargs.items()}}
    out = call(rms_norm, **given)
    changed = [k for k, v in given.items() if torch.is_tensor(v) and not torch.equal(v, {"x": x, **kwargs}[k])]
    if changed:
        raise AssertionError(f"rms_norm changed its argument {changed[0]!r} in place (an operation ending in _, or "
                             f"-=, /=): leave the inputs as they are and compute new tensors")
    ms = (x.double() ** 2).mean(-1, keepdim=True)                               # (..., 1)
    ref = (x.double() / torch.sqrt(ms + eps) * kwargs.get("weight", 1.0)).to(x.dtype)

    def fail(problem):
        known = mistakes_agreeing(rms_norm, MISTAKES["rms_norm"], _RMS_CASES)   # named only if it fits them all
        raise AssertionError(problem + which_mistake(out, known, {"x": x, **kwargs}, ref))

    if form_difference(out, ref, "rms_norm(x)"):
        fail(form_difference(out, ref, "rms_norm(x)"))
    bad_rows = (~torch.isfinite(out)).any(-1)
    if bad_rows.any():
        fail(f"rms_norm(x) has NaN or inf in a row of x = {x[bad_rows][0].tolist()}: the denominator must stay "
             f"above 0 for every row, an all-zero row too")
    if "weight" not in kwargs:
        want, got = (ms / (ms + eps)).squeeze(-1), (out.double() ** 2).mean(-1)
        if ((got - want).abs() > (1e-9 if x.dtype == torch.float64 else 2e-5)).any():
            i = (got - want).abs().argmax()
            fail(f"each row of rms_norm(x) should have mean square ms / (ms + eps), just under 1 (ms: that row's "
                 f"mean of x**2, around 0, not around the mean): one row has {got.flatten()[i]:.10g} instead of "
                 f"{want.flatten()[i]:.10g}. Look at what you divide x by: the root of the mean of x**2 (plus eps)")
    problem = difference(out, ref, "rms_norm(x" + "".join(f", {k}" for k in kwargs) + ")")
    if problem:
        fail(problem)


torch.manual_seed(3)
_RMS_CASES = [
    dict(x=torch.randn(6, 16, dtype=torch.float64) * 2 + 1),
    dict(x=torch.zeros(2, 4)),                                              # all-zero rows: eps keeps them finite
    dict(x=-torch.rand(3, 5, dtype=torch.float64) - 1, eps=1e-3),           # all negative, another eps
    dict(x=torch.randn(2, 3, 16), weight=torch.randn(16)),                  # float32, 3-D, with weight
]
for _case in _RMS_CASES:
    _check_rms_norm(**_case)
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("03_layernorm", "rms_norm", rms_norm)
### END HIDDEN TESTS
''')

nb.md(r"""
## 5. Where the norm goes: post-norm against pre-norm

The original transformer normalizes *after* adding the sub-layer's output (post-norm); GPT-2 and
almost every model since normalize the sub-layer's *input* and leave the residual path untouched
(pre-norm):

$$\text{post-norm: } x_{l+1} = \mathrm{LN}\big(x_l + F_l(x_l)\big), \qquad
\text{pre-norm: } x_{l+1} = x_l + F_l\big(\mathrm{LN}(x_l)\big).$$

The experiment below builds a stack of 48 randomly initialized MLP blocks (He initialization,
so each block's update is about as large as its input) both ways, pushes a
batch through, back-propagates a simple loss, and records, per layer, the size of the residual
stream and the gradient norm of that layer's first weight matrix. It uses the reference
`gptref.norms.layer_norm`, so it runs even before your exercises pass. (A few seconds.)
""")

nb.code(r"""
from gptref.norms import layer_norm as ref_layer_norm

torch.set_num_threads(1)  # the matrices here are tiny: extra threads only add overhead

def residual_stack_statistics(placement, depth=48, d=64, n=256, seed=0):
    # per layer: RMS of the residual stream and the gradient norm of that block's first weight
    torch.manual_seed(seed)
    blocks = [nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d)) for _ in range(depth)]
    for block in blocks:              # He initialization: each block's update is about as large as its input
        for linear in (block[0], block[2]):
            nn.init.normal_(linear.weight, std=math.sqrt(2.0 / linear.in_features))
            nn.init.zeros_(linear.bias)
    x = torch.randn(n, d)
    rms = []
    for block in blocks:
        if placement == "post":
            x = ref_layer_norm(x + block(x))
        else:
            x = x + block(ref_layer_norm(x))
        rms.append(x.pow(2).mean().sqrt().item())
    out = ref_layer_norm(x) if placement == "pre" else x      # GPT-2 adds a final norm after a pre-norm stack
    loss = (out @ torch.randn(d, 1, generator=torch.Generator().manual_seed(1))).pow(2).mean()
    loss.backward()
    grads = [block[0].weight.grad.norm().item() for block in blocks]
    return rms, grads

stats = {p: residual_stack_statistics(p) for p in ("post", "pre")}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for p, (rms, grads) in stats.items():
    axes[0].plot(range(1, len(rms) + 1), rms, label=f"{p}-norm")
    axes[1].semilogy(range(1, len(grads) + 1), grads, label=f"{p}-norm")
axes[0].set(xlabel="layer", ylabel="RMS of the residual stream", title="activations")
axes[1].set(xlabel="layer", ylabel="||dL/dW|| (first linear)", title="gradients at initialization")
for ax in axes:
    ax.legend()
fig.tight_layout()
plt.savefig("prenorm_vs_postnorm.png", dpi=100)
plt.show()
for p, (rms, grads) in stats.items():
    print(f"{p}-norm: residual RMS at layers 1, 12, 48: {rms[0]:.2f}, {rms[11]:.2f}, {rms[47]:.2f} "
          f"(layer 48 / layer 12: {rms[47] / rms[11]:.2f}; sqrt(48 / 12) = 2)")
    print(f"          grad norm layer 1 {grads[0]:.3g}, layer 48 {grads[-1]:.3g} (layer 48 / layer 1: "
          f"{grads[-1] / grads[0]:.2f}); largest / smallest over the 48 layers: {max(grads) / min(grads):.2f}")
""")

nb.md(r"""
What to see (the numbers are the ones the cell above prints). In **post-norm** the stream is
re-standardized after every block, so its RMS is 1.00 at every layer (the left plot; the cell prints
layers 1, 12 and 48), but a gradient on its way down passes through every norm above it: the last
layer's gradient norm is several times the first layer's (the printed "layer 48 / layer 1" ratio),
and the printed spread from the smallest to the largest is wider still. Xiong et al. (2020) trace the
need for a learning-rate warm-up in post-norm transformers to such large gradients near the output.
In **pre-norm** the residual path is an identity from the loss to every layer, so the gradient norms
stay within a small factor across depth (the printed "largest / smallest", well below post-norm's),
while the stream itself grows with depth: from layer 12 to layer 48 its RMS grows by the printed
ratio, close to $\sqrt{48/12} = 2$, as it would if each block added an update of about unit size,
uncorrelated with the stream. That growth is harmless because every block reads a
normalized copy — and it is why GPT-2 puts one more layer norm after its last block.
""")

nb.written("q_prenorm", 1, r"""
**Question.** Using the two plots, explain in a few sentences why a pre-norm stack needs a
final layer norm after its last block, and why a post-norm stack does not. What would you expect
to happen to the residual stream's RMS in the pre-norm stack if it had 480 layers instead of 48?
""", answer=r"""
In pre-norm nothing normalizes the residual stream itself: each block adds an update computed
from a normalized copy, so the stream's RMS grows with depth (roughly like the square root of the
number of blocks when the updates are uncorrelated) and the output head would see an
un-normalized vector; the final LN fixes its scale. In post-norm the last operation of every
block is already a layer norm. With 480 layers the pre-norm RMS keeps growing (about sqrt(10)
times larger than at 48 if the growth is like sqrt(L)), which is why deep pre-norm models scale
down their residual-branch initialization (GPT-2 scales by 1/sqrt(2 * n_layer)).
""")

nb.md(r"""
## Summary

* Layer norm standardizes each vector over its own features: $\hat x = (x-\mu)/\sqrt{\sigma^2+\varepsilon}$
  with the **biased** variance and $\varepsilon$ **inside** the root, then $y = \gamma \hat x + \beta$.
* Its gradient removes from the incoming gradient its mean and its component along $\hat x$:
  $\partial L/\partial x = r\,(h - \overline{h} - \hat x\,\overline{h \hat x})$, which you checked against autograd.
* RMSNorm drops the centring and the bias: $y = \gamma\, x/\sqrt{\overline{x^2}+\varepsilon}$.
* Pre-norm keeps an identity path for gradients through the whole stack and needs one final norm;
  that is the arrangement of GPT-2 and of the model you will build on day 9.
""")

nb.save()
