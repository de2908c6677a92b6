"""Common wrong answers of day 3 (layer norm, its backward pass, RMSNorm), each in the exercise's signature.

Each `says` completes "Your answer is exactly what you get when you ...". Wrong answers only: the
notebook's visible tests import this module.
"""

from __future__ import annotations

from functools import partial

import torch

from gptref.grading.explain import Mistake


# -- layer_norm -----------------------------------------------------------------------------------
def _affine(y, weight, bias):
    if weight is not None:
        y = y * weight
    return y if bias is None else y + bias


def _unbiased(x, weight=None, bias=None, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    return _affine((x - mean) / torch.sqrt(x.var(dim=-1, keepdim=True) + eps), weight, bias)


def _no_eps(x, weight=None, bias=None, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # (..., 1)
    return _affine((x - mean) / torch.sqrt(var), weight, bias)


def _eps_outside(x, weight=None, bias=None, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # (..., 1)
    return _affine((x - mean) / (torch.sqrt(var) + eps), weight, bias)


def _mean_over_batch(x, weight=None, bias=None, eps=1e-5):
    mean = x.mean(dim=0, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # (..., 1)
    return _affine((x - mean) / torch.sqrt(var + eps), weight, bias)


def _not_centred(x, weight=None, bias=None, eps=1e-5):
    var = ((x - x.mean(dim=-1, keepdim=True)) ** 2).mean(dim=-1, keepdim=True)  # (..., 1)
    return _affine(x / torch.sqrt(var + eps), weight, bias)


def _bias_then_weight(x, weight=None, bias=None, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    y = (x - mean) / torch.sqrt(((x - mean) ** 2).mean(dim=-1, keepdim=True) + eps)
    if bias is not None:
        y = y + bias
    return y if weight is None else y * weight


def _one_of_weight_and_bias(x, weight=None, bias=None, eps=1e-5, *, first="weight"):
    """An if ... elif: when both are given, only the one tested first is applied."""
    mean = x.mean(dim=-1, keepdim=True)
    y = (x - mean) / torch.sqrt(((x - mean) ** 2).mean(dim=-1, keepdim=True) + eps)
    if first == "weight":
        return y * weight if weight is not None else (y if bias is None else y + bias)
    return y + bias if bias is not None else (y if weight is None else y * weight)


def _whole_tensor(x, weight=None, bias=None, eps=1e-5):
    y = (x - x.mean()) / torch.sqrt(((x - x.mean()) ** 2).mean() + eps)
    return _affine(y, weight, bias)


def _fixed_eps(x, weight=None, bias=None, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # (..., 1)
    return _affine((x - mean) / torch.sqrt(var + 1e-5), weight, bias)


# -- layer_norm_backward --------------------------------------------------------------------------
def _pieces(grad_out, x, weight, eps):
    mean = x.mean(dim=-1, keepdim=True)
    r = 1.0 / torch.sqrt(((x - mean) ** 2).mean(dim=-1, keepdim=True) + eps)  # (..., 1)
    x_hat = (x - mean) * r
    leading = tuple(range(x.dim() - 1))
    return r, x_hat, grad_out * weight, leading, grad_out.sum(dim=leading)


def _bw_no_mean_term(grad_out, x, weight, eps=1e-5):
    r, x_hat, h, leading, grad_bias = _pieces(grad_out, x, weight, eps)
    grad_x = r * (h - x_hat * (h * x_hat).mean(dim=-1, keepdim=True))
    return grad_x, (grad_out * x_hat).sum(dim=leading), grad_bias


def _bw_no_variance_term(grad_out, x, weight, eps=1e-5):
    r, x_hat, h, leading, grad_bias = _pieces(grad_out, x, weight, eps)
    grad_x = r * (h - h.mean(dim=-1, keepdim=True))
    return grad_x, (grad_out * x_hat).sum(dim=leading), grad_bias


def _bw_weight_in_grad_weight(grad_out, x, weight, eps=1e-5):
    r, x_hat, h, leading, grad_bias = _pieces(grad_out, x, weight, eps)
    grad_x = r * (h - h.mean(dim=-1, keepdim=True) - x_hat * (h * x_hat).mean(dim=-1, keepdim=True))
    return grad_x, (h * x_hat).sum(dim=leading), grad_bias


def _bw_wrong_variance_term(grad_out, x, weight, eps=1e-5):
    r, x_hat, h, leading, grad_bias = _pieces(grad_out, x, weight, eps)
    grad_x = r * (h - h.mean(dim=-1, keepdim=True) - x_hat * h.mean(dim=-1, keepdim=True))
    return grad_x, (grad_out * x_hat).sum(dim=leading), grad_bias


def _bw_no_gamma(grad_out, x, weight, eps=1e-5):
    r, x_hat, h, leading, grad_bias = _pieces(grad_out, x, weight, eps)
    h = grad_out
    grad_x = r * (h - h.mean(dim=-1, keepdim=True) - x_hat * (h * x_hat).mean(dim=-1, keepdim=True))
    return grad_x, (grad_out * x_hat).sum(dim=leading), grad_bias


def _bw_no_r(grad_out, x, weight, eps=1e-5):
    r, x_hat, h, leading, grad_bias = _pieces(grad_out, x, weight, eps)
    grad_x = h - h.mean(dim=-1, keepdim=True) - x_hat * (h * x_hat).mean(dim=-1, keepdim=True)
    return grad_x, (grad_out * x_hat).sum(dim=leading), grad_bias


def _bw_weight_from_x(grad_out, x, weight, eps=1e-5):
    r, x_hat, h, leading, grad_bias = _pieces(grad_out, x, weight, eps)
    grad_x = r * (h - h.mean(dim=-1, keepdim=True) - x_hat * (h * x_hat).mean(dim=-1, keepdim=True))
    return grad_x, (grad_out * x).sum(dim=leading), grad_bias


def _bw_sum_first_dim(grad_out, x, weight, eps=1e-5):
    r, x_hat, h, leading, _ = _pieces(grad_out, x, weight, eps)
    grad_x = r * (h - h.mean(dim=-1, keepdim=True) - x_hat * (h * x_hat).mean(dim=-1, keepdim=True))
    return grad_x, (grad_out * x_hat).sum(dim=0), grad_out.sum(dim=0)


def _bw_variance(grad_out, x, weight, eps=1e-5, *, correction=0, with_eps=True, sign=-1.0):
    """The right formula with one slip: the variance's correction, eps left out, or the sign of the x_hat term."""
    mean = x.mean(dim=-1, keepdim=True)
    r = 1.0 / torch.sqrt(x.var(dim=-1, keepdim=True, correction=correction) + (eps if with_eps else 0.0))
    x_hat = (x - mean) * r
    h = grad_out * weight
    grad_x = r * (h - h.mean(dim=-1, keepdim=True) + sign * x_hat * (h * x_hat).mean(dim=-1, keepdim=True))
    leading = tuple(range(x.dim() - 1))
    return grad_x, (grad_out * x_hat).sum(dim=leading), grad_out.sum(dim=leading)


def _bw_sum_mean_term(grad_out, x, weight, eps=1e-5):
    r, x_hat, h, leading, grad_bias = _pieces(grad_out, x, weight, eps)
    grad_x = r * (h - h.sum(dim=-1, keepdim=True) - x_hat * (h * x_hat).mean(dim=-1, keepdim=True))
    return grad_x, (grad_out * x_hat).sum(dim=leading), grad_bias


def _bw_no_eps(grad_out, x, weight, eps=1e-5):
    return _bw_variance(grad_out, x, weight, eps, with_eps=False)


def _bw_unbiased(grad_out, x, weight, eps=1e-5):
    return _bw_variance(grad_out, x, weight, eps, correction=1)


def _bw_plus_variance_term(grad_out, x, weight, eps=1e-5):
    return _bw_variance(grad_out, x, weight, eps, sign=1.0)


def _bw_mean_over_rows(grad_out, x, weight, eps=1e-5, *, which=("weight", "bias")):
    """grad_weight and/or grad_bias averaged over the rows where the formula adds them up."""
    r, x_hat, h, leading, grad_bias = _pieces(grad_out, x, weight, eps)
    grad_x = r * (h - h.mean(dim=-1, keepdim=True) - x_hat * (h * x_hat).mean(dim=-1, keepdim=True))
    grad_weight = (grad_out * x_hat).mean(dim=leading) if "weight" in which else (grad_out * x_hat).sum(dim=leading)
    return grad_x, grad_weight, grad_out.mean(dim=leading) if "bias" in which else grad_bias


def _one_pass_variance(x, weight=None, bias=None, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    var = (x ** 2).mean(dim=-1, keepdim=True) - mean ** 2  # E[x^2] - E[x]^2: cancels when |mean| >> std
    return _affine((x - mean) / torch.sqrt(var + eps), weight, bias)


# -- rms_norm -------------------------------------------------------------------------------------
def _rms_norm_plus_eps(x, weight=None, eps=1e-6):
    y = x / (x.norm(dim=-1, keepdim=True) + eps)  # the root of the SUM of squares, eps outside it
    return y if weight is None else y * weight


def _rms_eps_outside(x, weight=None, eps=1e-6):
    y = x / (torch.sqrt((x ** 2).mean(dim=-1, keepdim=True)) + eps)
    return y if weight is None else y * weight


def _rms_no_eps(x, weight=None, eps=1e-6):
    y = x / torch.sqrt((x ** 2).mean(dim=-1, keepdim=True))
    return y if weight is None else y * weight


def _rms_fixed_eps(x, weight=None, eps=1e-6):
    y = x / torch.sqrt((x ** 2).mean(dim=-1, keepdim=True) + 1e-6)
    return y if weight is None else y * weight


def _rms_centred(x, weight=None, eps=1e-6):
    y = (x - x.mean(dim=-1, keepdim=True)) / torch.sqrt((x ** 2).mean(dim=-1, keepdim=True) + eps)
    return y if weight is None else y * weight


def _rms_layer_norm(x, weight=None, eps=1e-6):
    c = x - x.mean(dim=-1, keepdim=True)
    y = c / torch.sqrt((c ** 2).mean(dim=-1, keepdim=True) + eps)
    return y if weight is None else y * weight


def _rms_no_sqrt(x, weight=None, eps=1e-6):
    y = x / ((x ** 2).mean(dim=-1, keepdim=True) + eps)
    return y if weight is None else y * weight


def _rms_std(x, weight=None, eps=1e-6):
    y = x / torch.sqrt(x.var(dim=-1, keepdim=True, unbiased=False) + eps)
    return y if weight is None else y * weight


def _rms_whole_tensor(x, weight=None, eps=1e-6):
    y = x / torch.sqrt((x ** 2).mean() + eps)  # one mean square for the whole tensor
    return y if weight is None else y * weight


def _rms_weight_first(x, weight=None, eps=1e-6):
    x = x if weight is None else x * weight  # scaled before the root mean square is taken
    return x / torch.sqrt((x ** 2).mean(dim=-1, keepdim=True) + eps)


def _rms_weight_added(x, weight=None, eps=1e-6):
    y = x / torch.sqrt((x ** 2).mean(dim=-1, keepdim=True) + eps)
    return y if weight is None else y + weight  # a shift where the formula scales


def _rms_no_weight(x, weight=None, eps=1e-6):
    return x / torch.sqrt((x ** 2).mean(dim=-1, keepdim=True) + eps)  # weight never applied


def _rms_sum(x, weight=None, eps=1e-6):
    y = x / torch.sqrt((x ** 2).sum(dim=-1, keepdim=True) + eps)
    return y if weight is None else y * weight


MISTAKES = {
    "layer_norm": (
        Mistake("divide by d - 1 (torch.var's default): your variance is unbiased; layer norm uses the biased "
                "variance, ((x - mean) ** 2).mean(-1) or var(..., correction=0)", _unbiased),
        Mistake("divide by sqrt(var): you forgot eps; it goes into the variance, torch.sqrt(var + eps)", _no_eps),
        Mistake("divide by sqrt(var) + eps: eps goes inside the square root, torch.sqrt(var + eps)", _eps_outside),
        Mistake("take the mean over the first (batch) dimension: normalize over the last dimension, dim=-1 with "
                "keepdim=True, for the mean as for the variance", _mean_over_batch),
        Mistake("divide x by its standard deviation without subtracting the row's mean first: "
                "x_hat = (x - mean) / sqrt(var + eps)", _not_centred),
        Mistake("add bias before multiplying by weight: y = x_hat * weight + bias, multiply first", _bias_then_weight),
        Mistake("skip the bias when a weight is given (an elif after the weight's if): when both are given, scale by "
                "weight AND then add bias, two separate ifs",
                lambda x, weight=None, bias=None, eps=1e-5: _one_of_weight_and_bias(x, weight, bias, eps)),
        Mistake("skip the weight when a bias is given (an elif after the bias's if): when both are given, scale by "
                "weight AND then add bias, two separate ifs",
                lambda x, weight=None, bias=None, eps=1e-5: _one_of_weight_and_bias(x, weight, bias, eps,
                                                                                    first="bias")),
        Mistake("take one mean and one variance over the whole tensor: each row (the last dimension) gets its own",
                _whole_tensor),
        Mistake("use eps = 1e-5 whatever eps is passed: use the eps argument", _fixed_eps),
        Mistake("compute the variance in one pass, mean(x**2) - mean(x)**2: equal on paper, but in float32 it "
                "cancels when a row's mean is large against its spread (offset 100, spread 0.1); subtract the mean "
                "first, ((x - mean) ** 2).mean(-1)", _one_pass_variance),
    ),
    "layer_norm_backward": (
        Mistake("leave out the term that comes through the mean, - h.mean(dim=-1, keepdim=True)", _bw_no_mean_term),
        Mistake("leave out the term that comes through the variance, - x_hat * (h * x_hat).mean(dim=-1, "
                "keepdim=True)", _bw_no_variance_term),
        Mistake("use h = grad_out * weight in grad_weight: grad_weight is the sum of grad_out * x_hat; weight is not "
                "part of its own gradient (y = weight * x_hat + bias, so dy/dweight = x_hat)",
                _bw_weight_in_grad_weight),
        Mistake("use x_hat * h.mean(...) for the term through the variance: check the term through the variance, "
                "it is x_hat * (h * x_hat).mean(dim=-1, keepdim=True)", _bw_wrong_variance_term),
        Mistake("use grad_out where the formula has h: grad_x ignores weight; h = grad_out * weight", _bw_no_gamma),
        Mistake("leave out the factor r = 1 / sqrt(var + eps) in front of grad_x", _bw_no_r),
        Mistake("multiply grad_out by x instead of x_hat for grad_weight: y depends on weight through x_hat",
                _bw_weight_from_x),
        Mistake("sum grad_weight and grad_bias over the first dimension only: sum over all leading dimensions "
                "(every dimension but the last)",
                _bw_sum_first_dim),
        Mistake("subtract h.sum(-1) where the formula has h.mean(-1): the term through the mean is (1/d) sum_j h_j",
                _bw_sum_mean_term),
        Mistake("leave eps out of r in the backward pass: r = 1 / sqrt(var + eps), the same r as in the forward "
                "pass", _bw_no_eps),
        Mistake("compute the variance with d - 1 (torch.var's default) in the backward pass: x_hat and r use the "
                "biased variance of the forward pass, ((x - mean) ** 2).mean(-1)", _bw_unbiased),
        Mistake("ADD the term through the variance: it is subtracted, grad_x = r * (h - mean(h) - x_hat * "
                "mean(h * x_hat))", _bw_plus_variance_term),
        Mistake("average grad_bias over the rows: bias is added to every row, so its gradient is the SUM of "
                "grad_out over every leading dimension", partial(_bw_mean_over_rows, which=("bias",))),
        Mistake("average grad_weight over the rows: weight scales every row, so its gradient is the SUM of "
                "grad_out * x_hat over every leading dimension", partial(_bw_mean_over_rows, which=("weight",))),
        Mistake("average grad_weight and grad_bias over the rows: both are SUMS over every leading dimension, "
                "since weight and bias act on every row", _bw_mean_over_rows),
    ),
    "rms_norm": (
        Mistake("leave eps out: you forgot eps; RMSNorm divides by torch.sqrt((x ** 2).mean(-1) + eps)", _rms_no_eps),
        Mistake("subtract the row's mean first, as layer norm does: RMSNorm does not centre; divide by "
                "sqrt(mean(x**2)) of x itself", _rms_centred),
        Mistake("compute layer norm (centre, then scale by 1 / std): RMSNorm neither subtracts the "
                "mean nor uses the variance, it divides x by the root of the mean of x**2", _rms_layer_norm),
        Mistake("divide by the mean square itself: take its square root, sqrt(mean(x**2) + eps)", _rms_no_sqrt),
        Mistake("put eps outside the square root, sqrt(mean(x**2)) + eps: eps goes inside it, "
                "torch.sqrt((x ** 2).mean(-1) + eps)", _rms_eps_outside),
        Mistake("divide by x.norm(dim=-1) + eps: the norm is the root of the SUM of squares, d times too big a mean "
                "square; RMS is torch.sqrt((x ** 2).mean(-1) + eps)", _rms_norm_plus_eps),
        Mistake("divide by the standard deviation (the variance around the mean): RMSNorm uses the mean of x**2 "
                "around 0", _rms_std),
        Mistake("use eps = 1e-6 whatever eps is passed: use the eps argument", _rms_fixed_eps),
        Mistake("divide by the root of the SUM of squares: RMS uses the mean, (x ** 2).mean(dim=-1)", _rms_sum),
        Mistake("take one mean square over the whole tensor: each row gets its own, (x ** 2).mean(dim=-1, "
                "keepdim=True)", _rms_whole_tensor),
        Mistake("multiply x by weight before normalizing: normalize x first, then scale, y = weight * x / "
                "sqrt(mean(x**2) + eps)", _rms_weight_first),
        Mistake("add weight to the normalized x: weight is a scale, y = x / sqrt(mean(x**2) + eps) * weight",
                _rms_weight_added),
        Mistake("leave weight out: when weight is given, scale the normalized x by it, y * weight",
                _rms_no_weight),
    ),
}
