"""Day 9, nanoGPT: a transformer block, the cosine learning-rate schedule, gradient clipping, the SFT loss.

References: gptref.gpt.Block for the block; torch.nn.utils.clip_grad_norm_ for clipping; F.cross_entropy on
the selected positions for the SFT loss; the schedule is written out below (nanoGPT's get_lr).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

import gptref.gpt as gpt
from gptref.grading.spec import Exercise
from gptref.train.schedule import lr_at

DAY = "09_nanogpt_finetune"


# ---------------------------------------------------------------- the block


def _block_config(x: torch.Tensor, n_head: int) -> gpt.GPTConfig:
    return gpt.GPTConfig(vocab_size=1, block_size=x.shape[1], n_layer=1, n_head=n_head, n_embd=x.shape[-1])


def reference_block_forward(x, state, n_head):
    """gptref's pre-norm Block with the given weights, on x (B, T, C)."""
    block = gpt.Block(_block_config(x, n_head))
    block.load_state_dict(state)
    with torch.no_grad():
        return block.eval()(x)


def _block_cases(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    cases = []
    for B, T, C, H in [(2, 5, 16, 2), (1, 9, 24, 4), (3, 1, 8, 1), (2, 12, 32, 8)]:
        shapes = gpt.Block(_block_config(torch.zeros(1, T, C), H)).state_dict()
        state = {}
        for name, t in shapes.items():
            if name.startswith(("ln_1", "ln_2")):  # norms near (1, 0) but not exactly, so their place matters
                base = 1.0 if name.endswith("weight") else 0.0
                state[name] = base + 0.3 * torch.randn(t.shape, generator=g)
            else:
                fan_in = t.shape[-1] if t.dim() == 2 else C
                state[name] = torch.randn(t.shape, generator=g) / math.sqrt(fan_in)
        x = torch.randn(B, T, C, generator=g) * 2 + 1  # mean and scale far from LayerNorm's output
        cases.append({"x": x, "state": state, "n_head": H})
    return cases


def _compare_block(got, expected, case) -> str | None:
    if not isinstance(got, torch.Tensor):
        return f"the block must return a tensor, got {type(got).__name__}"
    if tuple(got.shape) != tuple(expected.shape):
        return f"output has shape {tuple(got.shape)}, expected the input's {tuple(expected.shape)}"
    if torch.allclose(got, expected, rtol=1e-4, atol=1e-4):
        return None
    err = (got - expected).abs().max().item()
    return (f"max abs error {err:.3g} against the pre-norm block x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)) "
            f"(shape {tuple(case['x'].shape)}, n_head={case['n_head']})")


# ---------------------------------------------------------------- cosine schedule with warmup


def reference_cosine_lr(step, max_lr, min_lr, warmup_steps, max_steps):
    """The exercise's signature over gptref.train.schedule.lr_at, the schedule the homework trains with."""
    return lr_at(step, max_lr, min_lr, warmup_steps, max_steps)


def _lr_cases(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed + 1)
    cases = []
    for max_lr, min_lr, warmup, total in [(6e-4, 6e-5, 10, 100), (1e-3, 0.0, 100, 5000), (3e-3, 3e-4, 1, 20)]:
        steps = {0, warmup - 1, warmup, warmup + 1, (warmup + total) // 2, total - 1, total, total + 1, total + 50}
        steps |= set(torch.randint(0, total + 10, (6,), generator=g).tolist())
        for s in sorted(x for x in steps if x >= 0):
            cases.append({"step": s, "max_lr": max_lr, "min_lr": min_lr, "warmup_steps": warmup, "max_steps": total})
    return cases


def _compare_lr(got, expected, case) -> str | None:
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if not isinstance(got, (int, float)):
        return f"return a float, got {type(got).__name__}"
    if abs(got - expected) <= 1e-9 * max(1.0, abs(expected)) + 1e-12:
        return None
    s, w, n = case["step"], case["warmup_steps"], case["max_steps"]
    phase = "warmup" if s < w else "after max_steps" if s > n else "cosine decay"
    return (f"cosine_lr(step={s}) with warmup_steps={w}, max_steps={n}, max_lr={case['max_lr']}, "
            f"min_lr={case['min_lr']} ({phase}): got {got:.6g}, expected {expected:.6g}")


# ---------------------------------------------------------------- gradient clipping


def reference_clip_gradients(grads, max_norm):
    """torch's clip_grad_norm_ applied to copies: (clipped gradients, total norm before clipping)."""
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return [p.grad for p in params], total


def _clip_cases(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed + 2)
    cases = []
    for shapes, scale, max_norm in [([(4, 3), (3,)], 5.0, 1.0), ([(10,), (2, 2, 2), (7, 1)], 0.05, 1.0),
                                    ([(64, 32)], 1.0, 0.5), ([(5,), (5,), (5,), (5,)], 3.0, 2.0)]:
        grads = [torch.randn(s, generator=g, dtype=torch.float64) * scale for s in shapes]
        cases.append({"grads": grads, "max_norm": max_norm})
    return cases


def _compare_clip(got, expected, case) -> str | None:
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"return a pair (clipped_grads, total_norm), got {type(got).__name__}"
    clipped, total = got
    exp_clipped, exp_total = expected
    if isinstance(total, torch.Tensor):
        total = total.item()
    if not isinstance(total, (int, float)) or abs(total - exp_total.item()) > 1e-6 * (1 + exp_total.item()):
        return (f"total_norm should be the norm of ALL gradients together, sqrt(sum of squares) = "
                f"{exp_total.item():.6g}, got {total}")
    if not isinstance(clipped, (list, tuple)) or len(clipped) != len(exp_clipped):
        return f"clipped_grads should be a list of {len(exp_clipped)} tensors"
    below = exp_total.item() <= case["max_norm"]
    for i, (a, e, g0) in enumerate(zip(clipped, exp_clipped, case["grads"])):
        if not isinstance(a, torch.Tensor) or a.shape != e.shape:
            return f"clipped gradient {i} should be a tensor of shape {tuple(e.shape)}"
        if not torch.allclose(a.to(e.dtype), e, rtol=1e-5, atol=1e-9):
            if below:
                return "the total norm is below max_norm: leave the gradients unchanged"
            return (f"gradient {i} is not scaled right: multiply EVERY gradient by the same factor "
                    f"max_norm / total_norm (the direction must not change)")
    return None


# ---------------------------------------------------------------- SFT loss


def reference_sft_loss(logits, targets, loss_mask):
    """Mean cross-entropy over the positions where loss_mask is True (the response tokens)."""
    return F.cross_entropy(logits[loss_mask], targets[loss_mask])


def _sft_cases(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed + 3)
    cases = []
    for B, T, V, dtype in [(2, 8, 11, torch.float64), (3, 12, 5, torch.float64), (1, 6, 30, torch.float32),
                           (4, 10, 7, torch.float64)]:
        prompt_len = torch.randint(1, T - 1, (B,), generator=g)
        total_len = torch.minimum(prompt_len + torch.randint(1, T, (B,), generator=g), torch.tensor(T))
        pos = torch.arange(T)[None, :]
        mask = (pos >= prompt_len[:, None]) & (pos < total_len[:, None])  # response tokens; padding after
        cases.append({"logits": torch.randn(B, T, V, generator=g, dtype=dtype) * 2,
                      "targets": torch.randint(0, V, (B, T), generator=g), "loss_mask": mask})
    return cases


def _compare_sft(got, expected, case) -> str | None:
    if not isinstance(got, torch.Tensor) or got.numel() != 1:  # 0-d comes back from the sandbox as (1,)
        return f"return a scalar tensor, got {getattr(got, 'shape', type(got).__name__)}"
    tol = 1e-5 if expected.dtype == torch.float32 else 1e-9
    if abs(got.item() - expected.item()) <= tol * (1 + abs(expected.item())):
        return None
    logits, targets, mask = case["logits"], case["targets"], case["loss_mask"]
    per_token = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view(targets.shape)
    close = lambda a: abs(got.item() - a) <= 1e-5 * (1 + abs(a))
    if close((per_token * mask).sum().item() / mask.numel()):
        return "divide by the number of response tokens (mask.sum()), not by every position"
    if close(per_token[~mask].mean().item()):
        return "the loss must count the response tokens (loss_mask True), not the prompt"
    if close(per_token.mean().item()):
        return "count only the positions where loss_mask is True"
    return f"got {got.item():.6f}, expected the mean cross-entropy over the response tokens {expected.item():.6f}"


def _clip_forbidden() -> tuple:
    utils = torch.nn.utils
    names = ("clip_grad_norm_", "clip_grad_norm", "get_total_norm", "clip_grads_with_norm_")
    return tuple(getattr(utils, n) for n in names if getattr(utils, n, None) is not None)


EXERCISES = [
    Exercise(
        day=DAY, name="block_forward", grade_ids=("test_block",),
        make_cases=_block_cases, reference=reference_block_forward, compare=_compare_block,
        forbidden=(gpt.Block.__init__, gpt.Block.forward, gpt.MLP.__init__, gpt.MLP.forward),
        description="a pre-norm transformer block assembled from attention, MLP and LayerNorm",
    ),
    Exercise(
        day=DAY, name="cosine_lr", grade_ids=("test_cosine_lr",),
        make_cases=_lr_cases, reference=reference_cosine_lr, compare=_compare_lr,
        description="linear warmup then cosine decay to min_lr",
    ),
    Exercise(
        day=DAY, name="clip_gradients", grade_ids=("test_clip_gradients",),
        make_cases=_clip_cases, reference=reference_clip_gradients, compare=_compare_clip,
        forbidden=_clip_forbidden(),
        description="clip the global gradient norm to max_norm",
    ),
    Exercise(
        day=DAY, name="sft_loss", grade_ids=("test_sft_loss",),
        make_cases=_sft_cases, reference=reference_sft_loss, compare=_compare_sft,
        description="cross-entropy averaged over the response tokens only",
    ),
]
