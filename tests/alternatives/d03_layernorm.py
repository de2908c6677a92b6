"""Day 3 written another way: the backward pass from the explicit chain rule through mean and variance."""
import torch


def layer_norm_backward(grad_out, x, weight, eps=1e-5):
    d = x.shape[-1]
    centred = x - x.sum(-1, keepdim=True) / d
    var = (centred * centred).sum(-1, keepdim=True) / d
    inv_std = (var + eps) ** -0.5
    x_hat = centred * inv_std
    grad_x_hat = grad_out * weight
    # through the variance: dvar = sum(grad_x_hat * centred) * -1/2 * (var + eps)^(-3/2)
    grad_var = (grad_x_hat * centred).sum(-1, keepdim=True) * -0.5 * inv_std ** 3
    # through the mean: every x_i moves the mean by 1/d; the variance term has zero mean so it drops out
    grad_mean = -(grad_x_hat * inv_std).sum(-1, keepdim=True)
    grad_x = grad_x_hat * inv_std + grad_var * 2 * centred / d + grad_mean / d
    rows = grad_out.reshape(-1, d)  # (rows, d)
    return grad_x, (rows * x_hat.reshape(-1, d)).sum(0), rows.sum(0)


def layer_norm(x, weight=None, bias=None, eps=1e-5):
    flat = x.reshape(-1, x.shape[-1])  # (rows, d)
    mean = flat.mean(1, keepdim=True)
    std = torch.sqrt(flat.var(1, unbiased=False, keepdim=True) + eps)
    out = ((flat - mean) / std).reshape(x.shape)
    if weight is not None:
        out = weight * out
    if bias is not None:
        out = bias + out
    return out


def rms_norm(x, weight=None, eps=1e-6):
    out = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return out if weight is None else weight * out
