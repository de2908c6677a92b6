"""The modern recipe's options, each against an independent computation or a property on seeded inputs:
ReLU^2, QK-norm, zero-init output projections, the untied head, WSD, the Muon/AdamW split and Muon's step."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gptref.attention import MultiHeadAttention
from gptref.gpt import GPT, GPTConfig
from gptref.mlp import MLP
from gptref.train import load_config, train
from gptref.train.muon import Muon, orthogonalise
from gptref.train.optim import make_muon_optimizer, muon_split
from gptref.train.schedule import wsd_lr_at

SMALL = dict(vocab_size=37, block_size=16, n_layer=2, n_head=2, n_embd=32, bias=False)


def test_relu2_is_the_square_of_relu():
    torch.manual_seed(0)
    mlp = MLP(16, activation="relu2", bias=True)
    x = torch.randn(3, 5, 16)
    hidden = F.linear(x, mlp.c_fc.weight, mlp.c_fc.bias)  # (3, 5, 64)
    want = F.linear(torch.clamp(hidden, min=0) ** 2, mlp.c_proj.weight, mlp.c_proj.bias)
    torch.testing.assert_close(mlp(x), want)


def test_qk_norm_gives_unit_rms_q_and_k_per_head_and_attends_with_them():
    torch.manual_seed(1)
    attn = MultiHeadAttention(32, 4, bias=True, kernel="sdpa", fused_qkv=True, qk_norm=True)
    x = 3 * torch.randn(2, 7, 32)
    q, k, v = attn._project(x, None, None)  # (B, H, T, D) each
    for t in (q, k):
        torch.testing.assert_close(t.pow(2).mean(-1), torch.ones(2, 4, 7))
    # the whole forward, by hand: project, split heads, divide q and k by their RMS, causal softmax attention
    qkv = F.linear(x, attn.c_attn.weight, attn.c_attn.bias)  # (B, T, 3C)
    heads = [part.reshape(2, 7, 4, 8).transpose(1, 2) for part in qkv.split(32, dim=2)]  # 3 x (B, H, T, D)
    q_ref, k_ref = (h / h.pow(2).mean(-1, keepdim=True).sqrt() for h in heads[:2])
    scores = q_ref @ k_ref.transpose(-1, -2) / math.sqrt(8)  # (B, H, T, T)
    scores = scores.masked_fill(torch.ones(7, 7, dtype=torch.bool).triu(1), float("-inf"))
    out = (scores.softmax(-1) @ heads[2]).transpose(1, 2).reshape(2, 7, 32)  # (B, T, C)
    torch.testing.assert_close(attn(x, causal=True), F.linear(out, attn.c_proj.weight, attn.c_proj.bias))


@pytest.mark.parametrize("mlp", ["gelu", "swiglu"])
def test_zero_init_projections_make_every_block_the_identity(mlp):
    torch.manual_seed(2)
    model = GPT(GPTConfig(**SMALL, mlp=mlp, mlp_multiple_of=16, zero_init_proj=True))
    x = torch.randn(2, 9, 32)
    for block in model.transformer.h:
        torch.testing.assert_close(block(x), x, rtol=0, atol=0)
    idx = torch.randint(0, 37, (2, 9))
    embedded = model.transformer.wte(idx) + model.transformer.wpe(torch.arange(9))  # (B, T, C)
    torch.testing.assert_close(model(idx)[0], model.lm_head(model.transformer.ln_f(embedded)))
    plain = GPT(GPTConfig(**SMALL, mlp=mlp, mlp_multiple_of=16))
    assert not torch.allclose(plain.transformer.h[0](x), x)  # the default init is not the identity


def test_untied_head_has_its_own_parameter():
    tied, untied = GPT(GPTConfig(**SMALL)), GPT(GPTConfig(**SMALL, tie_head=False))
    assert tied.lm_head.weight is tied.transformer.wte.weight
    assert untied.lm_head.weight.data_ptr() != untied.transformer.wte.weight.data_ptr()
    assert untied.num_params() == tied.num_params() + 37 * 32
    idx = torch.randint(0, 37, (2, 5))
    untied(idx, idx)[1].backward()
    assert untied.lm_head.weight.grad is not None and untied.transformer.wte.weight.grad is not None
    assert not torch.equal(untied.lm_head.weight.grad, untied.transformer.wte.weight.grad)


@pytest.mark.parametrize("warmup,total,frac", [(10, 100, 0.2), (0, 50, 0.5), (5, 37, 1.0), (100, 300, 0.3)])
def test_wsd_is_constant_in_the_middle_continuous_and_ends_at_min_lr(warmup, total, frac):
    peak, floor = 2e-3, 2e-4
    lrs = np.array([wsd_lr_at(s, peak, floor, warmup, total, frac) for s in range(total + 5)])
    start = max(warmup, total - round(frac * total))
    assert np.all(lrs[warmup:start] == peak)  # stable
    assert np.all(np.diff(lrs[start:total + 1]) < 0) and lrs[total] == pytest.approx(floor)  # decays to min_lr
    assert np.all(lrs[total:] == floor)
    # continuity: no step changes lr by more than one step of the steeper piece (warmup or cooldown slope)
    largest_slope = max(peak / max(warmup, 1), (peak - floor) / (total - start))
    assert np.max(np.abs(np.diff(lrs))) <= largest_slope * (1 + 1e-9)
    # the same curve from an independent piecewise-linear interpolation
    knots_x = [0, warmup, start, total] if warmup else [0, start, total]
    knots_y = [0, peak, peak, floor] if warmup else [peak, peak, floor]
    steps = np.arange(warmup, total + 1)
    np.testing.assert_allclose(lrs[warmup:total + 1], np.interp(steps, knots_x, knots_y), rtol=1e-12)


@pytest.mark.parametrize("tie_head", [True, False])
def test_muon_split_puts_every_parameter_in_one_group_with_the_hidden_matrices_in_muon(tie_head):
    model = GPT(GPTConfig(**dict(SMALL, bias=True), tie_head=tie_head))
    optimizer = make_muon_optimizer(model, 1e-3, 0.02, 0.1)
    in_muon = [id(p) for g in optimizer.muon.param_groups for p in g["params"]]
    in_adamw = [id(p) for g in optimizer.adamw.param_groups for p in g["params"]]
    everything = [id(p) for p in model.parameters()]
    assert sorted(in_muon + in_adamw) == sorted(everything) and len(set(in_muon + in_adamw)) == len(everything)
    names = {id(p): n for n, p in model.named_parameters()}
    hidden = {id(p) for n, p in model.named_parameters() if n.startswith("transformer.h.") and p.dim() == 2}
    assert set(in_muon) == hidden and len(hidden) == 4 * 2  # c_attn, attn.c_proj, c_fc, mlp.c_proj per layer
    assert {"transformer.wte.weight", "transformer.wpe.weight"} <= {names[i] for i in in_adamw}
    assert muon_split(model)[0] == [p for p in model.parameters() if id(p) in hidden]


def test_orthogonalise_pushes_every_singular_value_near_one():
    torch.manual_seed(3)
    for rows, cols in ((64, 16), (16, 64), (32, 32)):
        rank = min(rows, cols)
        left, _ = torch.linalg.qr(torch.randn(rows, rank))  # (rows, rank), orthonormal columns
        right, _ = torch.linalg.qr(torch.randn(cols, rank))  # (cols, rank)
        spread = torch.logspace(-1.5, 0, rank)  # singular values over a factor of 30
        matrix = left @ torch.diag(spread) @ right.T  # (rows, cols)
        singular = torch.linalg.svdvals(orthogonalise(matrix))
        assert singular.min() > 0.5 and singular.max() < 1.5, (rows, cols, singular)
        assert torch.linalg.svdvals(matrix).min() < 0.05  # the input was far from orthogonal


def test_muon_steps_like_torch_optim_muon():
    """Our float32 Muon against torch.optim.Muon (bfloat16 Newton-Schulz): the same updates to bf16 precision."""
    torch.manual_seed(4)
    start = [torch.randn(48, 16), torch.randn(16, 40)]
    ours_params = [torch.nn.Parameter(w.clone()) for w in start]
    torch_params = [torch.nn.Parameter(w.clone()) for w in start]
    ours = Muon(ours_params, lr=0.02, weight_decay=0.1, momentum=0.95)
    reference = torch.optim.Muon(torch_params, lr=0.02, weight_decay=0.1, momentum=0.95)
    for _ in range(3):  # different gradients each step: momentum and Nesterov matter
        grads = [torch.randn_like(w) for w in start]
        for params, optimizer in ((ours_params, ours), (torch_params, reference)):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            optimizer.step()
    for mine, theirs, w in zip(ours_params, torch_params, start):
        moved_mine, moved_theirs = (mine - w).detach().flatten(), (theirs - w).detach().flatten()
        assert F.cosine_similarity(moved_mine, moved_theirs, dim=0) > 0.995
        assert moved_mine.norm() / moved_theirs.norm() == pytest.approx(1.0, rel=0.02)


@pytest.mark.parametrize("ns_steps", [3, 5])
def test_muon_ns_steps_reaches_muon_and_steps_like_torch_optim_muon_with_as_many(ns_steps):
    """muon_ns_steps (a TrainConfig option) reaches the Muon group, and our Muon with that many Newton-Schulz steps
    moves like torch.optim.Muon(ns_steps=...) on seeded gradients; fewer steps orthogonalise less."""
    from gptref.train.config import TrainConfig
    from gptref.train.optim import make_optimizer_for

    model = GPT(GPTConfig(**SMALL))
    cfg = TrainConfig(optimizer="muon", muon_ns_steps=ns_steps)
    assert make_optimizer_for(cfg, model).muon.param_groups[0]["ns_steps"] == ns_steps
    torch.manual_seed(5)
    start = torch.randn(48, 16)
    mine, theirs = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    ours = Muon([mine], lr=0.02, weight_decay=0.0, momentum=0.95, ns_steps=ns_steps)
    reference = torch.optim.Muon([theirs], lr=0.02, weight_decay=0.0, momentum=0.95, ns_steps=ns_steps)
    grad = torch.randn_like(start)
    for param, optimizer in ((mine, ours), (theirs, reference)):
        param.grad = grad.clone()
        optimizer.step()
    moved_mine, moved_theirs = (mine - start).detach().flatten(), (theirs - start).detach().flatten()
    assert F.cosine_similarity(moved_mine, moved_theirs, dim=0) > 0.995
    assert moved_mine.norm() / moved_theirs.norm() == pytest.approx(1.0, rel=0.02)


def test_muon_ns_steps_below_one_is_refused():
    from gptref.train.config import TrainConfig

    with pytest.raises(ValueError, match="muon_ns_steps must be >= 1, got 0"):
        TrainConfig(optimizer="muon", muon_ns_steps=0).validate()


def test_the_modern_recipe_trains_and_resumes_bit_identically(tmp_path):
    from gptref.commands.homework import recipe_options

    options = dict(recipe_options("modern"), n_layer=1, n_head=2, n_embd=32, block_size=16, batch_size=4,
                   max_iters=6, warmup_iters=2, eval_interval=3, eval_iters=2, log_interval=2, progress=False,
                   threads=1)
    assert {"optimizer", "qk_norm", "activation", "zero_init_proj", "tie_head", "schedule"} <= set(options)
    full = train(load_config(out_dir=str(tmp_path / "full"), **options))
    train(load_config(out_dir=str(tmp_path / "part"), stop_at=3, **options))
    resumed = train(load_config(out_dir=str(tmp_path / "part"), resume=True, **options))
    assert resumed.history["train"] == full.history["train"] and resumed.history["eval"] == full.history["eval"]
    assert full.history["eval"][-1][2] < full.history["eval"][0][2]
