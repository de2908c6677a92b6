"""Day 7 written by hand, plain style."""
import math

import torch


def sinusoidal_positions(n_positions, d_model):
    table = torch.zeros(n_positions, d_model, dtype=torch.float64)
    for pos in range(n_positions):
        for i in range(0, d_model, 2):
            angle = pos / math.pow(10000.0, i / d_model)
            table[pos, i] = math.sin(angle)
            if i + 1 < d_model:
                table[pos, i + 1] = math.cos(angle)
    return table.float()


def rope(x, positions=None, base=10000.0):
    T, D = x.shape[-2:]
    if positions is None:
        positions = list(range(T))
    out = x.clone()
    for t in range(T):
        for i in range(D // 2):
            angle = float(positions[t]) * base ** (-2.0 * i / D)
            c, s = math.cos(angle), math.sin(angle)
            a, b = x[..., t, 2 * i], x[..., t, 2 * i + 1]
            out[..., t, 2 * i] = a * c - b * s
            out[..., t, 2 * i + 1] = a * s + b * c
    return out
