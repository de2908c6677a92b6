"""gptref.gpt: the loss, the KV cache, RoPE and the other pieces against an independent forward, the kernels,
the GPT-2 loader (against transformers) and argument checks."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch.nn import functional as F

from gptref.gpt import GPT, GPTConfig
from gptref.positions import rope


@pytest.fixture(autouse=True, scope="module")
def _tiny_tensors_one_thread(one_thread):
    """Tiny tensors: one thread is faster (the shared fixture in conftest.py)."""


TINY = dict(vocab_size=37, block_size=24, n_layer=2, n_head=2, n_embd=32)


def tiny_gpt(seed: int = 0, **options) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**TINY, **options})).eval()


@pytest.mark.parametrize(
    "field,value",
    [
        ("vocab_size", 0),
        ("block_size", -1),
        ("n_layer", 1.5),
        ("n_head", 5),  # 32 not divisible by 5
        ("dropout", 1.0),
        ("positions", "xpos"),
        ("mlp", "relu"),
        ("mlp_multiple_of", 0),
        ("head", "tied"),
        ("z_loss", -1e-4),
        ("norm", "batchnorm"),
        ("activation", "relu"),
        ("kernel", "cudnn"),
    ],
)
def test_config_rejects_bad_fields(field, value):
    with pytest.raises(ValueError, match=field):
        GPTConfig(**{**TINY, field: value})


def test_forward_rejects_bad_idx():
    model = tiny_gpt()
    with pytest.raises(ValueError, match="idx"):
        model(torch.zeros(2, TINY["block_size"] + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="idx"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="targets"):
        model(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long))
    cache = model.new_cache()
    model(torch.zeros(1, TINY["block_size"] - 1, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 2, dtype=torch.long), cache=cache)


@pytest.mark.parametrize("positions,norm", [("learned", "layernorm"), ("rope", "rmsnorm")])
def test_loss_is_cross_entropy_of_the_logits_with_ignore_index(positions, norm):
    model = tiny_gpt(positions=positions, norm=norm)
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(0, TINY["vocab_size"], (3, 10), generator=g)
    targets = torch.randint(0, TINY["vocab_size"], (3, 10), generator=g)
    targets[0, :4] = -100  # e.g. a prompt masked out for supervised fine-tuning
    logits, loss = model(idx, targets)
    assert logits.shape == (3, 10, TINY["vocab_size"])
    keep = targets != -100
    expected = F.cross_entropy(logits[keep], targets[keep])
    torch.testing.assert_close(loss, expected)
    assert model(idx)[1] is None


def test_weight_tying_and_parameter_count():
    model = tiny_gpt()
    assert model.lm_head.weight is model.transformer.wte.weight
    V, T, C, L = TINY["vocab_size"], TINY["block_size"], TINY["n_embd"], TINY["n_layer"]
    per_block = 2 * 2 * C + (C * 3 * C + 3 * C) + (C * C + C) + (C * 4 * C + 4 * C) + (4 * C * C + C)
    assert model.num_params() == V * C + T * C + L * per_block + 2 * C
    assert model.num_params(non_embedding=True) == model.num_params() - T * C
    std = model.transformer.h[0].attn.c_proj.weight.std().item()  # nanoGPT's scaled residual init
    assert abs(std - 0.02 / math.sqrt(2 * L)) < 0.003


@pytest.mark.parametrize("positions,norm", [("learned", "layernorm"), ("rope", "layernorm"), ("rope", "rmsnorm")])
def test_kv_cache_logits_equal_full_forward(positions, norm):
    model = tiny_gpt(positions=positions, norm=norm)
    idx = torch.randint(0, TINY["vocab_size"], (2, TINY["block_size"]), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full, _ = model(idx)
        cache = model.new_cache()
        pieces, start = [], 0
        for size in (5, 1, 1, 7, 1, 9):  # prompt, single steps and multi-token chunks; 24 tokens in all
            pieces.append(model(idx[:, start : start + size], cache=cache)[0])
            start += size
            assert cache.length == start
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)


def test_kv_cache_reorder_selects_rows():
    model = tiny_gpt(positions="rope")
    idx = torch.randint(0, TINY["vocab_size"], (3, 8), generator=torch.Generator().manual_seed(3))
    rows = torch.tensor([2, 2, 0])
    with torch.no_grad():
        cache = model.new_cache()
        model(idx[:, :6], cache=cache)
        cache.reorder(rows)
        step, _ = model(idx[rows, 6:], cache=cache)
        full, _ = model(idx[rows])
    torch.testing.assert_close(step, full[:, 6:], atol=1e-5, rtol=1e-5)


def test_rope_is_a_rotation_of_channel_pairs_by_position_times_frequency():
    """GPT's RoPE is gptref.positions.rope (interleaved pairs): compare with complex multiplication,
    pair (x_2i, x_2i+1) * exp(1j * pos * base^(-2i/D))."""
    D, T = 8, 6
    x = torch.randn(2, 3, T, D, generator=torch.Generator().manual_seed(4))
    ours = rope(x, torch.arange(T), 10000.0)
    freq = 10000.0 ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)  # (D/2,)
    angle = torch.arange(T, dtype=torch.float64)[:, None] * freq  # (T, D/2)
    z = torch.view_as_complex(x.double().reshape(2, 3, T, D // 2, 2).contiguous())  # (2, 3, T, D/2)
    expected = torch.view_as_real(z * torch.polar(torch.ones_like(angle), angle)).reshape(2, 3, T, D)
    torch.testing.assert_close(ours, expected.float(), atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------- the assembled model against torch ops alone


def _rotate_complex(x: torch.Tensor, base: float) -> torch.Tensor:
    """RoPE written independently: channel pairs (2i, 2i+1) times exp(1j * t * base^(-2i/D)); x (B, H, T, D)."""
    T, D = x.shape[-2:]
    angle = torch.arange(T, dtype=torch.float64)[:, None] * base ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
    z = torch.view_as_complex(x.double().unflatten(-1, (D // 2, 2)).contiguous())  # (B, H, T, D/2)
    return torch.view_as_real(z * torch.polar(torch.ones_like(angle), angle)).flatten(-2).to(x.dtype)


def _sinusoid_table(T: int, C: int) -> torch.Tensor:
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    div = torch.exp(torch.arange(0, C, 2, dtype=torch.float64) * (-math.log(10000.0) / C))
    table = torch.zeros(T, C, dtype=torch.float64)
    table[:, 0::2], table[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
    return table.float()


def _independent_logits(model: GPT, idx: torch.Tensor) -> torch.Tensor:
    """The logits of `model` recomputed from its weights with torch ops only (no gptref module runs)."""
    cfg, w = model.config, model.state_dict()
    B, T = idx.shape
    C, H = cfg.n_embd, cfg.n_head
    x = F.embedding(idx, w["transformer.wte.weight"])  # (B, T, C)
    if cfg.positions == "learned":
        x = x + w["transformer.wpe.weight"][:T]
    elif cfg.positions == "sinusoidal":
        x = x + _sinusoid_table(T, C)

    def norm(h, prefix):
        if cfg.norm == "rmsnorm":
            return F.rms_norm(h, (C,), w[prefix + ".weight"], cfg.norm_eps)
        return F.layer_norm(h, (C,), w[prefix + ".weight"], w.get(prefix + ".bias"), cfg.norm_eps)

    for i in range(cfg.n_layer):
        p = f"transformer.h.{i}."
        qkv = F.linear(norm(x, p + "ln_1"), w[p + "attn.c_attn.weight"], w.get(p + "attn.c_attn.bias"))
        q, k, v = (t.reshape(B, T, H, C // H).transpose(1, 2) for t in qkv.split(C, dim=-1))  # (B, H, T, D)
        if cfg.positions == "rope":
            q, k = _rotate_complex(q, cfg.rope_base), _rotate_complex(k, cfg.rope_base)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + F.linear(y, w[p + "attn.c_proj.weight"], w.get(p + "attn.c_proj.bias"))
        h = F.gelu(F.linear(norm(x, p + "ln_2"), w[p + "mlp.c_fc.weight"], w.get(p + "mlp.c_fc.bias")))
        x = x + F.linear(h, w[p + "mlp.c_proj.weight"], w.get(p + "mlp.c_proj.bias"))
    return F.linear(norm(x, "transformer.ln_f"), w["lm_head.weight"])


@pytest.mark.parametrize("positions,norm,kernel", [
    ("learned", "layernorm", "sdpa"), ("rope", "layernorm", "sdpa"), ("rope", "rmsnorm", "math"),
    ("sinusoidal", "layernorm", "math"), ("rope", "layernorm", "flash"),
])
def test_logits_equal_an_independent_forward(positions, norm, kernel):
    """A planted bug in gptref.positions.rope, norms or attention changes the GPT's logits."""
    model = tiny_gpt(positions=positions, norm=norm, kernel=kernel, rope_base=50.0)
    with torch.no_grad():
        for p in model.parameters():  # large weights, so every piece matters
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.2)
    idx = torch.randint(0, TINY["vocab_size"], (2, TINY["block_size"]), generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        torch.testing.assert_close(model(idx)[0], _independent_logits(model, idx), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kernel", ["math", "flash"])
def test_kernels_give_the_same_loss_and_gradients(kernel):
    """Each attention kernel trains the same model: loss and every gradient equal the sdpa kernel's."""
    idx = torch.randint(0, TINY["vocab_size"], (2, 16), generator=torch.Generator().manual_seed(12))
    results = []
    for k in ("sdpa", kernel):
        model = tiny_gpt(positions="rope", kernel=k).double()
        _, loss = model(idx, idx)
        loss.backward()
        results.append((loss.detach(), {n: p.grad for n, p in model.named_parameters()}))
    torch.testing.assert_close(results[1][0], results[0][0])
    for name, grad in results[0][1].items():
        torch.testing.assert_close(results[1][1][name], grad, msg=lambda m: f"{name}: {m}")


def test_generate_temperature_zero_is_an_argmax_loop():
    model = tiny_gpt(positions="rope")
    idx = torch.randint(0, TINY["vocab_size"], (2, 3), generator=torch.Generator().manual_seed(6))
    out = model.generate(idx, 10, temperature=0.0)
    expected = idx
    with torch.no_grad():
        for _ in range(10):
            expected = torch.cat([expected, model(expected)[0][:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, expected)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    a = model.generate(idx, 30, top_k=5, generator=g1)  # runs past block_size=24
    b = model.generate(idx, 30, top_k=5, generator=g2)
    assert a.shape == (2, 33) and torch.equal(a, b)


# ---------------------------------------------------------------- Hugging Face GPT-2


@pytest.fixture(scope="module")
def hf_gpt2(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(8)
    config = transformers.GPT2Config(
        n_layer=2, n_head=2, n_embd=32, vocab_size=101, n_positions=40, bos_token_id=0, eos_token_id=0,
        initializer_range=0.3,  # large weights: GELU variants and norm placement must matter
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    path = tmp_path_factory.mktemp("gpt2")
    model.save_pretrained(path)
    return model, path


@pytest.mark.parametrize("source", ["path", "state_dict", "model"])
def test_from_hf_gpt2_gives_the_same_logits(hf_gpt2, source):
    hf, path = hf_gpt2
    if source == "path":
        model = GPT.from_hf_gpt2(path)
    elif source == "state_dict":
        model = GPT.from_hf_gpt2(hf.state_dict(), n_head=2)
    else:
        model = GPT.from_hf_gpt2(hf)
    model.eval()
    assert (model.config.n_layer, model.config.n_head, model.config.block_size) == (2, 2, 40)
    idx = torch.randint(0, 101, (3, 40), generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        expected = hf(idx).logits
        logits, _ = model(idx)
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)  # float32; logits of size ~10 here


def test_from_hf_gpt2_matches_to_float64_rounding(hf_gpt2):
    hf, path = hf_gpt2
    hf64 = copy.deepcopy(hf).double()
    model = GPT.from_hf_gpt2(path).double().eval()
    idx = torch.randint(0, 101, (2, 40), generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        torch.testing.assert_close(model(idx)[0], hf64(idx).logits, atol=1e-10, rtol=1e-10)


def test_from_hf_gpt2_rejects_what_it_cannot_load(tmp_path):
    with pytest.raises(ValueError, match="source"):
        GPT.from_hf_gpt2({"foo": torch.zeros(1)})
    with pytest.raises(ValueError, match="path"):
        GPT.from_hf_gpt2(tmp_path)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (and triton)")
def test_triton_kernel_trains_the_same_model_on_cuda():
    """kernel="triton" (gptref.flash's Triton kernel) against "sdpa" in bfloat16 on the GPU: loss and logits."""
    pytest.importorskip("triton")
    idx = torch.randint(0, TINY["vocab_size"], (2, 16), generator=torch.Generator().manual_seed(13)).cuda()
    outs = []
    for kernel in ("sdpa", "triton"):
        model = GPT(GPTConfig(**{**TINY, "n_embd": 64, "kernel": kernel})).cuda()
        torch.manual_seed(0)
        model.load_state_dict(GPT(GPTConfig(**{**TINY, "n_embd": 64})).state_dict())
        with torch.autocast("cuda", dtype=torch.bfloat16):
            outs.append(model(idx, idx))
    torch.testing.assert_close(outs[1][0].float(), outs[0][0].float(), atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(outs[1][1].float(), outs[0][1].float(), atol=1e-2, rtol=1e-2)
