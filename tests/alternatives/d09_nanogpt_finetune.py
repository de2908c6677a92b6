"""Day 9 written another way: the block from explicit modules, the schedule by phases, clipping with one
flattened vector, the SFT loss through ignore_index."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from gptref.attention import MultiHeadAttention


class _Block(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = MultiHeadAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, 4 * width))
        self.mlp.add_module("act", nn.GELU())
        self.mlp.add_module("c_proj", nn.Linear(4 * width, width))

    def forward(self, x):
        attended = self.attn(self.ln_1(x), causal=True)
        x = attended + x
        return self.mlp(self.ln_2(x)) + x


def block_forward(x, state, n_head):
    block = _Block(x.shape[-1], n_head)
    block.load_state_dict(state)
    block.eval()
    with torch.no_grad():
        return block(x)


def cosine_lr(step, max_lr, min_lr, warmup_steps, max_steps):
    if step >= max_steps + 1:
        return float(min_lr)
    if step + 1 <= warmup_steps:
        return float(max_lr) * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / float(max_steps - warmup_steps)
    return min_lr + (max_lr - min_lr) * (1 + math.cos(progress * math.pi)) / 2


def clip_gradients(grads, max_norm):
    flat = torch.cat([g.reshape(-1).double() for g in grads])
    norm = flat.norm()
    scale = max_norm / (norm + 1e-6)
    if scale >= 1:
        return [g.clone() for g in grads], norm
    return [g * scale.to(g.dtype) for g in grads], norm


def sft_loss(logits, targets, loss_mask):
    masked = targets.masked_fill(~loss_mask, -100)
    return F.cross_entropy(logits.transpose(1, 2), masked, ignore_index=-100)
