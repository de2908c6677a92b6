"""Day 9's cosine_lr ladder, on seeded random schedules: a cosine without its floor, a warmup from min_lr and an r
that stays 0 are named only when the rates are exactly theirs."""

from __future__ import annotations

import math
import random

from gptref.grading.ladders import first_broken
from gptref.grading.ladders.d09_nanogpt_finetune import LADDERS
from gptref.train.schedule import lr_at


def _no_floor(step, max_lr, min_lr, warmup_steps, max_steps):
    """A cosine_lr that forgets to add min_lr after the warmup."""
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    ratio = min(1.0, (step - warmup_steps) / (max_steps - warmup_steps))
    return 0.5 * (1 + math.cos(math.pi * ratio)) * (max_lr - min_lr)


def _settings(seed):
    rng = random.Random(seed)
    max_lr = rng.uniform(1e-4, 1e-2)
    warmup = rng.randint(1, 20)
    return dict(max_lr=max_lr, min_lr=max_lr * rng.uniform(0.05, 0.3), warmup_steps=warmup,
                max_steps=warmup + rng.randint(5, 100))


def _first_message(schedule, settings):
    for step in range(settings["max_steps"] + 5):
        message = first_broken(LADDERS["cosine_lr"], schedule(step, **settings), dict(step=step, **settings))
        if message:
            return message
    return None


def test_a_cosine_without_its_floor_is_named():
    for seed in range(20):
        message = _first_message(_no_floor, _settings(seed))
        assert message and "the floor min_lr is not added" in message


def test_the_right_schedule_and_another_wrong_cosine_are_not_told_about_the_floor():
    def half_period(step, max_lr, min_lr, warmup_steps, max_steps):   # cos without pi: another mistake
        if step < warmup_steps:
            return max_lr * (step + 1) / warmup_steps
        ratio = min(1.0, (step - warmup_steps) / (max_steps - warmup_steps))
        return min_lr + 0.5 * (1 + math.cos(ratio)) * (max_lr - min_lr)

    def right(step, max_lr, min_lr, warmup_steps, max_steps):   # gptref's trainer's schedule
        return lr_at(step, max_lr, min_lr, warmup_steps, max_steps)

    for seed in range(20):
        settings = _settings(seed)
        assert _first_message(right, settings) is None
        assert "floor" not in (_first_message(half_period, settings) or "")


def _warmup_from_min_lr(step, max_lr, min_lr, warmup_steps, max_steps):
    if step < warmup_steps:
        return min_lr + (max_lr - min_lr) * (step + 1) / warmup_steps
    return lr_at(step, max_lr, min_lr, warmup_steps, max_steps)


def _integer_ratio(step, max_lr, min_lr, warmup_steps, max_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step > max_steps:
        return min_lr
    return min_lr + 0.5 * (1 + math.cos(math.pi * ((step - warmup_steps) // (max_steps - warmup_steps)))) * (
        max_lr - min_lr)


def test_a_warmup_from_min_lr_and_an_r_that_stays_zero_are_named():
    for seed in range(20):
        settings = _settings(seed)
        if settings["warmup_steps"] > 1:
            assert "your warmup rises from min_lr" in _first_message(_warmup_from_min_lr, settings)
        settings["max_steps"] += (settings["max_steps"] - settings["warmup_steps"]) % 2   # an integer midpoint
        assert "as if r were 0 there" in _first_message(_integer_ratio, settings)
        assert "as if r were 0" not in (_first_message(_no_floor, settings) or "")
