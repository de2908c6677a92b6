"""Honest day-8 solutions written another way than the notebook's: they must pass the verdict under every seed."""

import math

import torch


def _block_stats(block):
    """(max, sum of exp(x - max)) of one block; a block of only -inf has sum 0."""
    top = block.amax(dim=-1)
    safe = torch.where(torch.isinf(top) & (top < 0), torch.zeros_like(top), top)
    return top, torch.exp(block - safe[..., None]).sum(dim=-1)


def online_softmax_stats(blocks):
    """Merge the (max, sum) pairs of the blocks one after another."""
    m, row_sum = _block_stats(blocks[0])
    for block in blocks[1:]:
        bm, bl = _block_stats(block)
        top = torch.maximum(m, bm)
        row_sum = row_sum * torch.exp(m - top) + bl * torch.where(bl > 0, torch.exp(bm - top), torch.zeros_like(bl))
        m = top
    return m, row_sum


def tiled_attention(q, k, v, block_q=64, block_k=64, causal=False):
    """Keep a running log-sum-exp and an output normalised after every key tile."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    pieces = []
    for start in range(0, q.shape[-2], block_q):
        q_tile = q[..., start:start + block_q, :]  # (..., bq, D)
        rows = torch.arange(start, start + q_tile.shape[-2]).unsqueeze(-1)
        lse = torch.full(q_tile.shape[:-1], -math.inf, dtype=q.dtype)  # (..., bq)
        o = torch.zeros(*q_tile.shape[:-1], v.shape[-1], dtype=q.dtype)  # (..., bq, D)
        for key_start in range(0, k.shape[-2], block_k):
            scores = torch.einsum("...id,...jd->...ij", q_tile, k[..., key_start:key_start + block_k, :]) * scale
            if causal:
                cols = torch.arange(key_start, key_start + scores.shape[-1]).unsqueeze(0)
                scores = scores.masked_fill(cols > rows, -math.inf)
            top = scores.amax(dim=-1)
            safe = torch.where(torch.isinf(top), torch.zeros_like(top), top)
            # (..., bq) log-sum-exp of this tile's scores; -inf where a row's scores are all hidden
            tile_lse = safe + torch.log(torch.exp(scores - safe[..., None]).sum(dim=-1))
            new_lse = torch.logaddexp(lse, tile_lse)
            keep = torch.exp(lse - new_lse).nan_to_num(0.0)
            weights = torch.exp(scores - new_lse[..., None]).nan_to_num(0.0)
            o = o * keep[..., None] + weights @ v[..., key_start:key_start + block_k, :]
            lse = new_lse
        pieces.append(o)
    return torch.cat(pieces, dim=-2)


def tiled_attention_backward(q, k, v, out, lse, dout, block_q=64, block_k=64, causal=False):
    """Query blocks outside, key blocks inside; D per query block."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
    for i in range(0, q.shape[-2], block_q):
        rows = slice(i, i + block_q)
        d_row = torch.einsum("...id,...id->...i", dout[..., rows, :], out[..., rows, :])  # (..., bq)
        positions = torch.arange(i, min(i + block_q, q.shape[-2])).unsqueeze(-1)
        for j in range(0, k.shape[-2], block_k):
            cols = slice(j, j + block_k)
            scores = torch.einsum("...id,...jd->...ij", q[..., rows, :], k[..., cols, :]) * scale
            probs = torch.exp(scores - lse[..., rows].unsqueeze(-1))
            if causal:
                key_positions = torch.arange(j, min(j + block_k, k.shape[-2])).unsqueeze(0)
                probs = probs.masked_fill(key_positions > positions, 0.0)
            dv[..., cols, :] += torch.einsum("...ij,...id->...jd", probs, dout[..., rows, :])
            dprobs = torch.einsum("...id,...jd->...ij", dout[..., rows, :], v[..., cols, :])
            dscores = probs * (dprobs - d_row.unsqueeze(-1)) * scale
            dq[..., rows, :] += torch.einsum("...ij,...jd->...id", dscores, k[..., cols, :])
            dk[..., cols, :] += torch.einsum("...ij,...id->...jd", dscores, q[..., rows, :])
    return dq, dk, dv
