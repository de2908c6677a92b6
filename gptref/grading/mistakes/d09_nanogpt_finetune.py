"""Day 9's common wrong answers: the block, the schedule, clipping, the SFT loss and the data-parallel step."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from gptref.attention import MultiHeadAttention
from gptref.grading.data_parallel import mlp_from_state
from gptref.grading.explain import Mistake

# ---------------------------------------------------------------- the block


class _Parts(nn.Module):
    """The block's parts under their exercise names (ln_1, attn, ln_2, mlp.c_fc, mlp.c_proj), to wire wrongly."""

    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.attn = MultiHeadAttention(n_embd, n_head)
        self.mlp = nn.Module()
        self.mlp.c_fc, self.mlp.c_proj = nn.Linear(n_embd, 4 * n_embd), nn.Linear(4 * n_embd, n_embd)


def _wired(forward, heads=lambda n_embd, n_head: n_head):
    """A block_forward(x, state, n_head) whose block computes forward(parts, x), its attention with
    heads(n_embd, n_head) heads."""
    def block_forward(x, state, n_head):
        parts = _Parts(x.shape[-1], heads(x.shape[-1], n_head))
        parts.load_state_dict(state)
        with torch.no_grad():
            return forward(parts.eval(), x)
    return block_forward


def _mlp(parts, h, activation=F.gelu):
    return parts.mlp.c_proj(activation(parts.mlp.c_fc(h)))


BLOCK = (
    Mistake("put the norm after the attention's residual sum, ln_1(x + attn(x)) (post-norm: normalize the INPUT of "
            "each sub-layer, x + attn(ln_1(x)))",
            _wired(lambda m, x: (lambda h: h + _mlp(m, m.ln_2(h)))(m.ln_1(x + m.attn(x, causal=True))))),
    Mistake("run the attention and the MLP side by side on the block's input, x + attn(ln_1(x)) + mlp(ln_2(x)) "
            "(GPT-J's parallel block): here they run one after the other, so the MLP reads the stream AFTER the "
            "attention's residual, x = x + attn(ln_1(x)), then x = x + mlp(ln_2(x))",
            _wired(lambda m, x: x + m.attn(m.ln_1(x), causal=True) + _mlp(m, m.ln_2(x)))),
    Mistake("call the attention without causal=True, so every token sees the later ones too (the attention must "
            "be causal: self.attn(ln_1(x), causal=True))",
            _wired(lambda m, x: (lambda h: h + _mlp(m, m.ln_2(h)))(x + m.attn(m.ln_1(x))))),
    Mistake("replace x by the MLP's output instead of adding it: x = x + mlp(ln_2(x)) (the residual connection)",
            _wired(lambda m, x: (lambda h: _mlp(m, m.ln_2(h)))(x + m.attn(m.ln_1(x), causal=True)))),
    Mistake("leave out the GELU: the MLP needs its GELU between c_fc and c_proj, c_proj(gelu(c_fc(h)))",
            _wired(lambda m, x: (lambda h: h + _mlp(m, m.ln_2(h), lambda t: t))(x + m.attn(m.ln_1(x), causal=True)))),
    Mistake("use ReLU instead of GELU in the MLP (GPT-2's MLP is c_proj(gelu(c_fc(h))))",
            _wired(lambda m, x: (lambda h: h + _mlp(m, m.ln_2(h), F.relu))(x + m.attn(m.ln_1(x), causal=True)))),
    Mistake("normalise with ln_1 before the MLP too: each sub-layer has its own norm, ln_2 for the MLP",
            _wired(lambda m, x: (lambda h: h + _mlp(m, m.ln_1(h)))(x + m.attn(m.ln_1(x), causal=True)))),
    Mistake("add the sub-layer's output to the normalised x, h = ln_1(x) + attn(ln_1(x)): the residual stream "
            "x itself is never normalised, x = x + attn(ln_1(x))",
            _wired(lambda m, x: (lambda h: h + _mlp(m, m.ln_2(h)))(m.ln_1(x) + m.attn(m.ln_1(x), causal=True)))),
    Mistake("swap the two norms: ln_1 belongs to the attention and ln_2 to the MLP, x = x + attn(ln_1(x)), then "
            "x = x + mlp(ln_2(x)) (the loaded weights give each norm its own scale and shift)",
            _wired(lambda m, x: (lambda h: h + _mlp(m, m.ln_1(h)))(x + m.attn(m.ln_2(x), causal=True)))),
    Mistake("apply ln_2 before the attention too: each sub-layer has its own norm, ln_1 for the attention",
            _wired(lambda m, x: (lambda h: h + _mlp(m, m.ln_2(h)))(x + m.attn(m.ln_2(x), causal=True)))),
    Mistake("add the input x to the MLP's output instead of the attention's sum h: the second residual adds to "
            "the stream after the attention, x = x + attn(ln_1(x)), then x = x + mlp(ln_2(x))",
            _wired(lambda m, x: x + _mlp(m, m.ln_2(x + m.attn(m.ln_1(x), causal=True))))),
    Mistake("normalise after each residual sum (post-norm, the original Transformer): x = ln_1(x + attn(x)), then "
            "x = ln_2(x + mlp(x)); GPT-2 normalises each sub-layer's INPUT, x = x + attn(ln_1(x)), then "
            "x = x + mlp(ln_2(x))",
            _wired(lambda m, x: (lambda h: m.ln_2(h + _mlp(m, h)))(m.ln_1(x + m.attn(x, causal=True))))),
    Mistake("add the MLP's output to the normalised stream, h = ln_2(x) + mlp(ln_2(x)): the residual stream x "
            "itself is never normalised, x = x + mlp(ln_2(x))",
            _wired(lambda m, x: (lambda h: m.ln_2(h) + _mlp(m, m.ln_2(h)))(x + m.attn(m.ln_1(x), causal=True)))),
    Mistake("use the tanh approximation of GELU (nn.GELU(approximate=\"tanh\")): this block's MLP uses the exact "
            "GELU, nn.GELU(), as the reference does",
            _wired(lambda m, x: (lambda h: h + _mlp(m, m.ln_2(h), lambda t: F.gelu(t, approximate="tanh")))(
                x + m.attn(m.ln_1(x), causal=True)))),
    Mistake("give MultiHeadAttention the size of a head where it takes the NUMBER of heads: "
            "MultiHeadAttention(config.n_embd, config.n_head)",
            _wired(lambda m, x: (lambda h: h + _mlp(m, m.ln_2(h)))(x + m.attn(m.ln_1(x), causal=True)),
                   heads=lambda n_embd, n_head: n_embd // n_head)),
)

# ---------------------------------------------------------------- the schedule


def _schedule(step, max_lr, min_lr, warmup_steps, max_steps, warmup_from_zero=False, half_cosine=True, floor=True,
              ratio_from_zero=False, floor_after_end=True, ratio_over_total=False, amplitude_max=False,
              warmup_through_w=False, angle=math.pi, warmup_over=0):
    if step < warmup_steps or (warmup_through_w and step == warmup_steps):
        return max_lr * (step if warmup_from_zero else step + 1) / (warmup_steps + warmup_over)
    if step > max_steps and floor_after_end:
        return min_lr if floor else 0.0
    if ratio_from_zero:
        ratio = step / max_steps
    else:
        ratio = (step - warmup_steps) / (max_steps if ratio_over_total else max_steps - warmup_steps)
    factor = 0.5 * (1.0 + math.cos(angle * ratio)) if half_cosine else math.cos(angle * ratio)
    if not floor:
        return factor * max_lr
    return min_lr + factor * (max_lr if amplitude_max else max_lr - min_lr)


COSINE = (
    Mistake("warm up as max_lr * step / warmup_steps, so step 0 gets rate 0 (warm up as max_lr * (step + 1) / "
            "warmup_steps)",
            lambda step, max_lr, min_lr, warmup_steps, max_steps: _schedule(
                step, max_lr, min_lr, warmup_steps, max_steps, warmup_from_zero=True)),
    Mistake("use cos(pi * r) itself, which goes from 1 to -1 and takes the rate below min_lr "
            "(use 0.5 * (1 + cos(pi * r)))",
            lambda step, max_lr, min_lr, warmup_steps, max_steps: _schedule(
                step, max_lr, min_lr, warmup_steps, max_steps, half_cosine=False)),
    Mistake("decay to 0 instead of min_lr: the rate is min_lr + 0.5 (1 + cos(pi r)) (max_lr - min_lr)",
            lambda step, max_lr, min_lr, warmup_steps, max_steps: _schedule(
                step, max_lr, min_lr, warmup_steps, max_steps, floor=False)),
    Mistake("take r = step / max_steps: measure r from the end of the warmup, r = (step - w) / (N - w), so that "
            "r = 0 when the decay starts",
            lambda step, max_lr, min_lr, warmup_steps, max_steps: _schedule(
                step, max_lr, min_lr, warmup_steps, max_steps, ratio_from_zero=True)),
    Mistake("let the cosine run on after max_steps, where it rises again: keep min_lr after max_steps",
            lambda step, max_lr, min_lr, warmup_steps, max_steps: _schedule(
                step, max_lr, min_lr, warmup_steps, max_steps, floor_after_end=False)),
    Mistake("divide by max_steps in r = (step - w) / max_steps, so the decay never reaches min_lr: the cosine "
            "runs over the N - w steps after the warmup, r = (step - w) / (N - w)",
            lambda step, max_lr, min_lr, warmup_steps, max_steps: _schedule(
                step, max_lr, min_lr, warmup_steps, max_steps, ratio_over_total=True)),
    Mistake("scale the cosine by max_lr instead of (max_lr - min_lr), so it starts at min_lr + max_lr: "
            "min_lr + 0.5 (1 + cos(pi r)) (max_lr - min_lr) goes from max_lr down to min_lr",
            lambda step, max_lr, min_lr, warmup_steps, max_steps: _schedule(
                step, max_lr, min_lr, warmup_steps, max_steps, amplitude_max=True)),
    Mistake("take cos(r) without pi: r runs from 0 to 1, so the angle must run from 0 to pi, "
            "0.5 * (1 + cos(pi * r)), for the rate to reach min_lr at max_steps",
            lambda step, max_lr, min_lr, warmup_steps, max_steps: _schedule(
                step, max_lr, min_lr, warmup_steps, max_steps, angle=1.0)),
    Mistake("divide the warmup by warmup_steps + 1, so it never reaches max_lr: max_lr * (step + 1) / warmup_steps "
            "gives max_lr at step w - 1",
            lambda step, max_lr, min_lr, warmup_steps, max_steps: _schedule(
                step, max_lr, min_lr, warmup_steps, max_steps, warmup_over=1)),
    Mistake("keep step == warmup_steps in the warmup branch (step <= w), which gives it max_lr * (w + 1) / w, "
            "above the peak: the warmup is step < warmup_steps",
            lambda step, max_lr, min_lr, warmup_steps, max_steps: _schedule(
                step, max_lr, min_lr, warmup_steps, max_steps, warmup_through_w=True)),
)

# ---------------------------------------------------------------- clipping


def _clip(grads, max_norm, norm_of=lambda gs: torch.sqrt(sum((g.double() ** 2).sum() for g in gs)), per_tensor=False,
          always=False, report_after=False):
    if per_tensor:
        clipped = [g * min(1.0, max_norm / (g.norm().item() + 1e-6)) for g in grads]
        return clipped, norm_of(grads)
    total = norm_of(grads)
    factor = max_norm / (float(total) + 1e-6)
    clipped = [g * (factor if always else min(1.0, factor)) for g in grads]
    return clipped, (norm_of(clipped) if report_after else total)


CLIP = (
    Mistake("clip each tensor by its own norm (do not clip each tensor by its own norm: one factor, from the global "
            "norm, for every gradient)",
            lambda grads, max_norm: _clip(grads, max_norm, per_tensor=True)),
    Mistake("always rescale to max_norm (when the total norm is below max_norm, leave the gradients unchanged: "
            "the factor is min(1, max_norm / total_norm))",
            lambda grads, max_norm: _clip(grads, max_norm, always=True)),
    Mistake("return the norm after clipping: return the norm before clipping (the one worth logging)",
            lambda grads, max_norm: _clip(grads, max_norm, report_after=True)),
    Mistake("forget the square root: the global norm is sqrt(sum of squares)",
            lambda grads, max_norm: _clip(grads, max_norm,
                                          norm_of=lambda gs: sum((g.double() ** 2).sum() for g in gs))),
    Mistake("add the tensors' norms: the global norm is sqrt(sum over tensors of ||g_p||^2), not sum of ||g_p||",
            lambda grads, max_norm: _clip(grads, max_norm, norm_of=lambda gs: sum(g.double().norm() for g in gs))),
)

# ---------------------------------------------------------------- the SFT loss


def _per_token(logits, targets):
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none").view(targets.shape)  # (B, T)


def _per_sequence_mean(logits, targets, loss_mask):
    per_token, mask = _per_token(logits, targets), loss_mask.to(logits.dtype)
    return ((per_token * mask).sum(-1) / mask.sum(-1)).mean()


SFT = (
    Mistake("divide by every position (mask.numel()): divide by the number of response tokens (mask.sum())",
            lambda logits, targets, loss_mask: (_per_token(logits, targets) * loss_mask).sum() / loss_mask.numel()),
    Mistake("average over the prompt: the loss must count the response tokens (loss_mask True), not the prompt",
            lambda logits, targets, loss_mask: _per_token(logits, targets)[~loss_mask].mean()),
    Mistake("average over every position: count only the positions where loss_mask is True",
            lambda logits, targets, loss_mask: _per_token(logits, targets).mean()),
    Mistake("average each sequence first and then the sequences: one mean over all response tokens of the batch "
            "weights every token alike",
            _per_sequence_mean),
    Mistake("pass the raw logits to F.nll_loss: nll_loss expects LOG-probabilities (it only picks -input[target]), "
            "so apply F.log_softmax(logits, dim=-1) first, or use F.cross_entropy, which does both",
            lambda logits, targets, loss_mask: F.nll_loss(logits[loss_mask], targets[loss_mask])),
    Mistake("take F.softmax instead of F.log_softmax before F.nll_loss: nll_loss expects LOG-probabilities, "
            "F.log_softmax(logits, dim=-1) (or F.cross_entropy on the logits)",
            lambda logits, targets, loss_mask: F.nll_loss(F.softmax(logits[loss_mask], dim=-1), targets[loss_mask])),
    Mistake("take the log_softmax over dim=1 (the positions of a (B, T, V) tensor): the classes are the LAST "
            "dimension, F.log_softmax(logits, dim=-1)",
            lambda logits, targets, loss_mask: F.nll_loss(F.log_softmax(logits, dim=1)[loss_mask], targets[loss_mask])),
    Mistake("sum the response tokens' losses without dividing: the loss is their mean",
            lambda logits, targets, loss_mask: _per_token(logits, targets)[loss_mask].sum()),
    Mistake("shift the targets once more: they are already the inputs shifted by one, so logits[:, t] goes with "
            "targets[:, t]",
            lambda logits, targets, loss_mask: F.cross_entropy(logits[:, :-1][loss_mask[:, 1:]],
                                                               targets[:, 1:][loss_mask[:, 1:]])),
)

# ---------------------------------------------------------------- the data-parallel step


def simulated_ddp_step(state, x, y, lr, max_norm, world_size=2, *, reduce: str = "mean", clip_first: bool = False,
                       clip: bool = True):
    """One data-parallel SGD step simulated in one process, the gradients combined by `reduce` ("mean", "sum",
    "none": rank 0's own, "mean_twice": the mean divided by world_size again, "skip": no step), clipped before
    the step unless `clip` is False (a clip after the step changes nothing): rank 0's parameters after it."""
    if reduce == "skip":
        return {k: v.detach().clone() for k, v in state.items()}
    grads = []
    for xs, ys in zip(x.chunk(world_size), y.chunk(world_size)):
        model = mlp_from_state(state)
        F.cross_entropy(model(xs), ys).backward()
        if clip_first:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        grads.append([p.grad for p in model.parameters()])
    if reduce == "sum":
        total = [sum(gs) for gs in zip(*grads)]
    elif reduce == "none":
        total = grads[0]
    else:
        total = [sum(gs) / len(grads) / (len(grads) if reduce == "mean_twice" else 1) for gs in zip(*grads)]
    model = mlp_from_state(state)
    for p, g in zip(model.parameters(), total):
        p.grad = g.clone()
    if clip and not clip_first:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _ddp(reduce: str, clip_first: bool = False, clip: bool = True):
    """A wrong data-parallel step with the exercise's signature (run_ddp)."""
    def run_ddp(state, x, y, lr, max_norm, world_size=2):
        return simulated_ddp_step(state, x, y, lr, max_norm, world_size, reduce=reduce, clip_first=clip_first,
                                  clip=clip)
    return run_ddp


DDP = (
    Mistake("all_reduce without dividing: you summed the gradients over the ranks; divide by world_size to average "
            "them (dist.all_reduce sums)",
            _ddp("sum")),
    Mistake("step on each rank's own half: the gradients were not averaged across ranks; dist.all_reduce every "
            "p.grad, then divide by world_size",
            _ddp("none")),
    Mistake("clip each rank's gradient, then average: you clipped before averaging; clip after the all_reduce, so "
            "that every rank clips the same averaged gradient",
            _ddp("mean", clip_first=True)),
    Mistake("divide by world_size twice (the averaged gradients once more, or the loss and then the summed "
            "gradients): they are half the whole batch's gradient; divide once (all_reduce with ReduceOp.AVG "
            "already gives the mean; with the default SUM divide once)",
            _ddp("mean_twice")),
    Mistake("take the optimizer step before clipping: the step used the unclipped gradient (clipping afterwards "
            "changes nothing); the order is all_reduce and divide, clip_grad_norm_, then optimizer.step()",
            _ddp("mean", clip=False)),
    Mistake("leave the parameters where they started: rank 0's parameters did not move, so the step used no "
            "gradient. Look at the order in ddp_train_step: zero_grad, backward, all_reduce, clip, step (a "
            "zero_grad between backward and step clears the gradients)",
            _ddp("skip")),
)

MISTAKES = {"block_forward": BLOCK, "cosine_lr": COSINE, "clip_gradients": CLIP, "sft_loss": SFT, "run_ddp": DDP}
