"""Cheat: gptref.norms.layer_norm with its check, renamed and commented."""
import torch


def _validate(t, w, b=None):
    if t.dim() < 1:
        raise ValueError("bad x")
    for nm, p in (("weight", w), ("bias", b)):
        if p is not None and tuple(p.shape) != (t.shape[-1],):
            raise ValueError(nm)


def layer_norm(inp, weight=None, bias=None, eps=1e-5):
    _validate(inp, weight, bias)
    avg = inp.mean(dim=-1, keepdim=True)  # the mean
    v = (inp - avg).pow(2).mean(dim=-1, keepdim=True)  # the variance
    res = (inp - avg) * torch.rsqrt(v + eps)
    if bias is not None and weight is None:
        res = res + bias
    elif weight is not None:
        res = res * weight
        if bias is not None:
            res = res + bias
    return res
