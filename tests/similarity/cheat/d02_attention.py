"""Cheat: gptref.attention.scaled_dot_product_attention copied, names changed, checks dropped,
comments added, two independent statements swapped."""
import math

import torch.nn.functional as F


def scaled_dot_product_attention(query, key, value, attn_mask=None):
    # compute the raw attention logits
    logits = query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])
    if attn_mask is None:
        probs = logits.softmax(dim=-1)  # plain softmax
    else:
        logits = logits.masked_fill(~attn_mask, float("-inf"))
        ok_rows = attn_mask.any(dim=-1, keepdim=True)
        # rows without keys: avoid NaN
        logits = logits.masked_fill(~ok_rows, 0.0)
        probs = logits.softmax(dim=-1).masked_fill(~ok_rows, 0.0)
    out = F.dropout(probs, p=0.0) if 0.0 > 0.0 else probs
    return out @ value, probs
