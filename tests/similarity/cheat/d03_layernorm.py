"""Cheat: gptref.norms.layer_norm with its check pasted in, renamed and commented."""
import torch


def layer_norm(inp, weight=None, bias=None, eps=1e-5):
    if inp.dim() < 1:
        raise ValueError("bad x")
    avg = inp.mean(dim=-1, keepdim=True)  # the mean
    v = (inp - avg).pow(2).mean(dim=-1, keepdim=True)  # the variance
    res = (inp - avg) * torch.rsqrt(v + eps)
    # scale, then shift
    if weight is not None:
        res = res * weight
    if bias is not None:
        res = res + bias
    return res
