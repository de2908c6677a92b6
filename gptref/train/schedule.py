"""Learning-rate schedules: linear warmup, then cosine decay to min_lr (nanoGPT's), or warmup-stable-decay (WSD,
MiniCPM: Hu et al. 2024): warmup, a long constant stretch, then a short linear cooldown to min_lr."""

from __future__ import annotations

import math

SCHEDULES = ("cosine", "wsd")


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


def wsd_lr_at(step: int, learning_rate: float, min_lr: float, warmup_iters: int, decay_iters: int,
              cooldown_frac: float) -> float:
    """WSD's lr for step `step`: the same warmup as lr_at, then learning_rate until the last cooldown_frac of
    decay_iters, then linearly down to min_lr at decay_iters, then min_lr."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if not 0.0 < cooldown_frac <= 1.0:
        raise ValueError(f"cooldown_frac must be in (0, 1], got {cooldown_frac}")
    if step < warmup_iters:
        return learning_rate * (step + 1) / warmup_iters
    if step >= decay_iters:
        return min_lr
    cooldown_start = max(warmup_iters, decay_iters - round(cooldown_frac * decay_iters))
    if step < cooldown_start:
        return learning_rate
    left = (decay_iters - step) / (decay_iters - cooldown_start)  # 1 at the cooldown's start -> 0 at decay_iters
    return min_lr + left * (learning_rate - min_lr)


def schedule_lr(cfg, step: int) -> float:
    """The lr cfg's schedule ("cosine" or "wsd") gives at `step`; cfg is a TrainConfig."""
    if cfg.schedule == "wsd":
        return wsd_lr_at(step, cfg.learning_rate, cfg.min_lr, cfg.warmup_iters, cfg.decay_iters, cfg.cooldown_frac)
    return lr_at(step, cfg.learning_rate, cfg.min_lr, cfg.warmup_iters, cfg.decay_iters)
