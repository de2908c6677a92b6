"""Day 9, nanoGPT: a transformer block, the cosine learning-rate schedule, gradient clipping, the SFT loss,
and one data-parallel training step.

References: ReferenceBlock (gptref.attention.MultiHeadAttention, causal, with gptref.mlp.MLP and LayerNorms)
for the block; torch.nn.utils.clip_grad_norm_ for clipping; F.cross_entropy on the selected positions for the
SFT loss; the schedule is written out below (nanoGPT's get_lr); one single-process SGD step on the whole batch
for the data-parallel step.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import gptref.attention as A
import gptref.gpt as gpt
from gptref.grading.data_parallel import mlp_from_state
from gptref.grading.ladders.d09_nanogpt_finetune import LADDERS
from gptref.grading.spec import Exercise
from gptref.mlp import MLP
from gptref.train.schedule import lr_at

DAY = "09_nanogpt_finetune"


# ---------------------------------------------------------------- the block


def _block_config(x: torch.Tensor, n_head: int) -> gpt.GPTConfig:
    return gpt.GPTConfig(vocab_size=1, block_size=x.shape[1], n_layer=1, n_head=n_head, n_embd=x.shape[-1])


class ReferenceBlock(nn.Module):
    """The day-9 block: x + attn(ln_1(x)) with gptref.attention.MultiHeadAttention (causal), then x + mlp(ln_2(x))."""

    def __init__(self, config: gpt.GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = A.MultiHeadAttention(config.n_embd, config.n_head)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config.n_embd, activation=config.activation, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), causal=True)
        return x + self.mlp(self.ln_2(x))


def reference_block_forward(x, state, n_head):
    """The reference pre-norm block with the given weights, on x (B, T, C)."""
    block = ReferenceBlock(_block_config(x, n_head))
    block.load_state_dict(state)
    with torch.no_grad():
        return block.eval()(x)


def _block_cases(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    cases = []
    for B, T, C, H in [(2, 5, 16, 2), (1, 9, 24, 4), (3, 1, 8, 1), (2, 12, 32, 8)]:
        shapes = ReferenceBlock(_block_config(torch.zeros(1, T, C), H)).state_dict()
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
    # constructed on every seed: responses of different lengths (3, 1 and 6 tokens), one starting at position 0
    mask = torch.tensor([[False, False, True, True, True, False], [False, False, False, False, True, False],
                         [True] * 6])
    cases.append({"logits": torch.randn(3, 6, 8, generator=g, dtype=torch.float64) * 2,
                  "targets": torch.randint(0, 8, (3, 6), generator=g), "loss_mask": mask})
    return cases


def _compare_sft(got, expected, case) -> str | None:
    if not isinstance(got, torch.Tensor) or got.numel() != 1:  # 0-d comes back from the sandbox as (1,)
        return f"return a scalar tensor, got {getattr(got, 'shape', type(got).__name__)}"
    tol = 1e-5 if expected.dtype == torch.float32 else 1e-9
    if abs(got.item() - expected.item()) <= tol * (1 + abs(expected.item())):
        return None
    logits, targets, mask = case["logits"], case["targets"], case["loss_mask"]
    per_token = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view(targets.shape)
    def close(value: float) -> bool:
        return abs(got.item() - value) <= 1e-5 * (1 + abs(value))

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


# ---------------------------------------------------------------- one data-parallel step


def reference_run_ddp(state, x, y, lr, max_norm, world_size=2):
    """What `world_size` data-parallel ranks must agree on: one SGD step on the WHOLE batch, clipped."""
    model = mlp_from_state(state)
    F.cross_entropy(model(x), y).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _ddp_cases(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed + 5)
    cases = []
    for n_in, hidden, n_out, batch, max_norm in [(6, 16, 4, 8, 0.05), (5, 8, 3, 12, 100.0), (4, 12, 5, 6, 0.5)]:
        shapes = {"0.weight": (hidden, n_in), "0.bias": (hidden,), "2.weight": (n_out, hidden), "2.bias": (n_out,)}
        state = {k: torch.randn(*shape, generator=g, dtype=torch.float64) / math.sqrt(shape[-1])
                 for k, shape in shapes.items()}
        cases.append({"state": state, "x": torch.randn(batch, n_in, generator=g, dtype=torch.float64),
                      "y": torch.randint(0, n_out, (batch,), generator=g), "lr": 0.5, "max_norm": max_norm})
    return cases


def _compare_ddp(got, expected, case) -> str | None:
    if not isinstance(got, dict) or set(got) != set(expected):
        return f"return the model's state_dict after the step (keys {sorted(expected)}), got {type(got).__name__}"
    def close(params: dict, target: dict) -> bool:
        return all(torch.allclose(params[k].to(target[k].dtype), target[k], rtol=0, atol=1e-9) for k in target)

    if close(got, expected):
        return None
    err = max((got[k].to(expected[k].dtype) - expected[k]).abs().max().item() for k in expected)
    return f"the parameters after one data-parallel step differ from one step on the whole batch by up to {err:.3g}"


EXERCISES = [
    Exercise(
        day=DAY, name="block_forward", grade_ids=("test_block",),
        make_cases=_block_cases, reference=reference_block_forward, compare=_compare_block,
        forbidden=(ReferenceBlock.__init__, ReferenceBlock.forward, gpt.Block.__init__, gpt.Block.forward,
                   MLP.__init__, MLP.forward),
        description="a pre-norm transformer block assembled from attention, MLP and LayerNorm",
        # the ladder: x's shape and dtype, finite; then values on four sizes (T = 1 and one head among them), which
        # imply the visible test's causality check (the reference is causal and T > 1 cases have random tokens)
        properties=LADDERS["block_forward"],
        edge_cases=("T = 1", "one head", "x with mean and scale far from LayerNorm's output", "LayerNorm weights not 1",
                    "n_head neither 1 nor n_embd / n_head (so heads and head size cannot be swapped unseen)"),
    ),
    Exercise(
        day=DAY, name="cosine_lr", grade_ids=("test_cosine_lr",),
        make_cases=_lr_cases, reference=reference_cosine_lr, compare=_compare_lr,
        description="linear warmup then cosine decay to min_lr",
        # the ladder: a number; (0, max_lr] during the warmup, [min_lr, max_lr] after; then values at every
        # boundary step (0, w - 1, w, w + 1, the middle, N - 1, N, N + 1, N + 50), which imply the visible
        # test's continuity and monotonicity checks
        properties=LADDERS["cosine_lr"],
        edge_cases=("step 0", "the last warmup step and the first cosine step", "a one-step warmup", "min_lr = 0",
                    "max_steps and the steps after it"),
    ),
    Exercise(
        day=DAY, name="clip_gradients", grade_ids=("test_clip_gradients",),
        make_cases=_clip_cases, reference=reference_clip_gradients, compare=_compare_clip,
        forbidden=_clip_forbidden(),
        description="clip the global gradient norm to max_norm",
        # the ladder: a pair with one tensor per gradient and a number; global norm <= max_norm; one factor for all
        properties=LADDERS["clip_gradients"],
        edge_cases=("a norm below max_norm (unchanged)", "one tensor", "several tensors of different shapes",
                    "four tensors of the same shape"),
    ),
    Exercise(
        day=DAY, name="sft_loss", grade_ids=("test_sft_loss",),
        make_cases=_sft_cases, reference=reference_sft_loss, compare=_compare_sft,
        description="cross-entropy averaged over the response tokens only",
        # the ladder: a scalar in the logits' dtype, finite, between the smallest and largest response-token loss
        properties=LADDERS["sft_loss"],
        edge_cases=("responses of different lengths in one batch", "a one-token response", "a response from "
                    "position 0", "padding after the response", "float32 and float64"),
    ),
    Exercise(
        day=DAY, name="run_ddp", grade_ids=("test_ddp_train_step",),
        make_cases=_ddp_cases, reference=reference_run_ddp, compare=_compare_ddp,
        forbidden=(reference_run_ddp, torch.nn.parallel.DistributedDataParallel),
        description="one data-parallel SGD step on 2 processes (gloo all_reduce) equals one step on the whole batch",
        edge_cases=("clipping inactive (max_norm 100) and active (0.05, 0.5)", "half-batches of 3, 4 and 6 rows",
                    "a step must move the parameters (a step without gradients is caught)"),
    ),
]
