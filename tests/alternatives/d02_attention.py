"""Day 2 written another way: einsum and explicit loops instead of the notebook's reshapes and matmuls."""
import math

import torch


def padding_mask(key_is_token):
    return key_is_token.to(torch.bool)[:, None, None, :]


def _attend(q, k, v, allowed):
    scores = torch.einsum("...qd,...kd->...qk", q, k) / math.sqrt(q.shape[-1])
    scores = torch.where(allowed, scores, torch.full_like(scores, -math.inf))
    top = scores.amax(-1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    e = torch.exp(scores - top)
    total = e.sum(-1, keepdim=True)
    weights = torch.where(total > 0, e / torch.where(total > 0, total, torch.ones_like(total)), torch.zeros_like(e))
    return torch.einsum("...qk,...kd->...qd", weights, v), weights


def encoder_self_attention(x, x_is_token, w_q, w_k, w_v):
    B, T, _ = x.shape
    allowed = x_is_token.bool().unsqueeze(1).expand(B, T, T)
    return _attend(x @ w_q, x @ w_k, x @ w_v, allowed)


def decoder_self_attention(y, y_is_token, w_q, w_k, w_v):
    B, T, _ = y.shape
    earlier = torch.tensor([[j <= i for j in range(T)] for i in range(T)])
    allowed = earlier.unsqueeze(0) & y_is_token.bool().unsqueeze(1)
    return _attend(y @ w_q, y @ w_k, y @ w_v, allowed)


def cross_attention(y, x, x_is_token, w_q, w_k, w_v):
    B, T, S = y.shape[0], y.shape[1], x.shape[1]
    allowed = x_is_token.bool().unsqueeze(1).expand(B, T, S)
    return _attend(y @ w_q, x @ w_k, x @ w_v, allowed)


def split_heads(x, n_heads):
    size = x.shape[-1] // n_heads
    return torch.stack([x[..., h * size:(h + 1) * size] for h in range(n_heads)], dim=1)


def merge_heads(x):
    return torch.cat(x.unbind(dim=1), dim=-1)


def mha_forward(x, state, n_heads, n_kv_heads=None, context=None, mask=None):
    n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads

    def linear(name, t):
        out = t @ state[name + ".weight"].T
        return out + state[name + ".bias"] if name + ".bias" in state else out

    source = x if context is None else context
    q = split_heads(linear("q_proj", x), n_heads)
    k = split_heads(linear("k_proj", source), n_kv_heads)
    v = split_heads(linear("v_proj", source), n_kv_heads)
    share = n_heads // n_kv_heads
    k = torch.stack([k[:, h // share] for h in range(n_heads)], dim=1)
    v = torch.stack([v[:, h // share] for h in range(n_heads)], dim=1)
    scores_shape = q.shape[:-1] + (k.shape[-2],)
    allowed = torch.ones(scores_shape, dtype=torch.bool) if mask is None else mask.bool().expand(scores_shape)
    out, _ = _attend(q, k, v, allowed)
    with torch.no_grad():
        return linear("out_proj", merge_heads(out))
