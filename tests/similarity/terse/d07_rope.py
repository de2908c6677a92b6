"""Day 7 written by hand, terse style: complex numbers."""
import torch


def sinusoidal_positions(n_positions, d_model):
    i = torch.arange(d_model)
    freq = torch.exp(-(i - i % 2).double() / d_model * torch.log(torch.tensor(10000.0, dtype=torch.float64)))
    phase = torch.arange(n_positions).double()[:, None] * freq
    return torch.where(i % 2 == 0, phase.sin(), phase.cos()).float()


def rope(x, positions=None, base=10000.0):
    T, D = x.shape[-2], x.shape[-1]
    pos = torch.arange(T) if positions is None else torch.as_tensor(positions)
    inv = 1.0 / base ** (torch.arange(0, D, 2).double() / D)
    rot = torch.polar(torch.ones(T, D // 2, dtype=torch.float64), torch.outer(pos.double(), inv))
    z = torch.view_as_complex(x.double().reshape(*x.shape[:-1], D // 2, 2).contiguous())
    return torch.view_as_real(z * rot).reshape(x.shape).to(x.dtype)
