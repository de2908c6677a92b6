"""Day 2 written by hand, plain style."""
import math

import torch


def causal_mask(t_q, t_k=None):
    if t_k is None:
        t_k = t_q
    offset = t_k - t_q
    mask = torch.zeros(t_q, t_k, dtype=torch.bool)
    for i in range(t_q):
        mask[i, : i + offset + 1] = True
    return mask


def masked_softmax(scores, mask):
    mask = torch.broadcast_to(mask, scores.shape)
    biggest = scores.masked_fill(~mask, -1e30).max(dim=-1, keepdim=True).values
    e = torch.exp((scores - biggest).masked_fill(~mask, float("-inf")))
    total = e.sum(dim=-1, keepdim=True)
    total = torch.where(total == 0, torch.ones_like(total), total)
    return e / total


def scaled_dot_product_attention(q, k, v, mask=None):
    head_dim = q.size(-1)
    logits = torch.matmul(q, k.transpose(-1, -2))
    logits = logits / math.sqrt(head_dim)
    if mask is None:
        mask = torch.ones_like(logits, dtype=torch.bool)
    mask = torch.broadcast_to(mask, logits.shape)
    row_max = logits.masked_fill(~mask, -1e30).max(dim=-1, keepdim=True).values
    unnorm = torch.exp((logits - row_max).masked_fill(~mask, float("-inf")))
    norm = unnorm.sum(dim=-1, keepdim=True)
    attn = unnorm / torch.clamp(norm, min=1e-30)
    return torch.matmul(attn, v), attn
