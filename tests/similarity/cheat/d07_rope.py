"""Cheat (a known miss, kept to measure): gptref.positions.rope and rope_angles pasted together,
the non-interleaved branch dropped, renamed. Similarity 0.74 to the reference with rope_angles
inlined, under the 0.85 threshold: dropping whole branches is beyond what the check catches."""
import torch


def rope(inp, positions=None, base=10000.0):
    n_pos, dim = inp.shape[-2], inp.shape[-1]
    if positions is None:
        positions = torch.arange(n_pos, device=inp.device)
    positions = torch.as_tensor(positions, device=inp.device)
    # angles, as rope_angles does
    freqs = base ** (-torch.arange(0, dim, 2, dtype=torch.float64, device=positions.device) / dim)
    angle = positions.to(torch.float64)[..., None] * freqs
    c, s = angle.cos().to(inp.dtype), angle.sin().to(inp.dtype)
    even, odd = inp[..., 0::2], inp[..., 1::2]
    a = even * c - odd * s
    b = even * s + odd * c
    return torch.stack([a, b], dim=-1).flatten(-2)
