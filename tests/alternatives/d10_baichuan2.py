"""Day 10 written another way: einsum, explicit loops over heads, F.normalize, amax."""
import math

import torch
import torch.nn.functional as F


def swiglu(x, w_gate, w_up, w_down):
    gate = torch.einsum("...c,hc->...h", x, w_gate)
    up = torch.einsum("...c,hc->...h", x, w_up)
    return torch.einsum("...h,ch->...c", gate * torch.sigmoid(gate) * up, w_down)


def alibi_bias(n_heads, t_q, t_k=None):
    t_k = t_q if t_k is None else t_k
    closest = 2 ** int(math.log2(n_heads))
    slopes = [2.0 ** (-8.0 * k / closest) for k in range(1, closest + 1)]
    extra = [2.0 ** (-8.0 * k / (2 * closest)) for k in range(1, 2 * closest + 1, 2)]
    slopes += extra[: n_heads - closest]
    bias = torch.zeros(n_heads, t_q, t_k)
    for head, slope in enumerate(slopes):
        for row in range(t_q):
            query = t_k - t_q + row
            for key in range(query + 1):
                bias[head, row, key] = -slope * (query - key)
    return bias


def norm_head_logits(x, weight):
    return F.linear(x, F.normalize(weight, p=2.0, dim=-1))


def max_z_loss(logits, weight=2e-4):
    z = logits.amax(dim=-1)
    return (weight * z * z).mean()
