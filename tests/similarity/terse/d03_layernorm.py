"""Day 3 written by hand, terse style."""
import torch


def layer_norm(x, weight=None, bias=None, eps=1e-5):
    var, mean = torch.var_mean(x, dim=-1, unbiased=False, keepdim=True)
    y = (x - mean) * torch.rsqrt(var + eps)
    y = y if weight is None else y * weight
    return y if bias is None else y + bias


def rms_norm(x, weight=None, eps=1e-6):
    scale = torch.rsqrt(torch.mean(torch.square(x), -1, keepdim=True) + eps)
    return x * scale * (1 if weight is None else weight)
