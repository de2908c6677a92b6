"""Learning-rate schedule: linear warmup, then cosine decay to min_lr, then flat."""

from __future__ import annotations

import math


def lr_at(step: int, learning_rate: float, min_lr: float, warmup_iters: int, decay_iters: int) -> float:
    """lr for optimizer step `step` (0-based): lr*(step+1)/warmup while warming up, then cosine down to min_lr
    by decay_iters."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if step < warmup_iters:
        return learning_rate * (step + 1) / warmup_iters
    if step >= decay_iters:
        return min_lr
    progress = (step - warmup_iters) / max(1, decay_iters - warmup_iters)  # 0 -> 1
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (learning_rate - min_lr)
