"""Grouping gradients into buckets of at most a given size, in reverse parameter order (the order backward
produces them), and flattening a list of tensors into one buffer and back."""

from __future__ import annotations

import torch


def assign_buckets(params: list[torch.Tensor], bucket_mb: float) -> list[list[torch.Tensor]]:
    """Consecutive groups of `params` taken from the last to the first, each at most bucket_mb megabytes
    (a parameter larger than that gets a bucket of its own)."""
    limit = bucket_mb * 1024 * 1024
    buckets: list[list[torch.Tensor]] = []
    size = 0.0
    for param in reversed(params):
        nbytes = param.numel() * param.element_size()
        if not buckets or size + nbytes > limit:
            buckets.append([])
            size = 0.0
        buckets[-1].append(param)
        size += nbytes
    return buckets


def flatten(tensors: list[torch.Tensor]) -> torch.Tensor:
    """One 1-D buffer holding every tensor's values, one after the other."""
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten_into(buffer: torch.Tensor, tensors: list[torch.Tensor]) -> None:
    """Copy the consecutive pieces of `buffer` back into `tensors` (the inverse of flatten)."""
    offset = 0
    for t in tensors:
        t.copy_(buffer[offset:offset + t.numel()].view_as(t))
        offset += t.numel()
