"""Baichuan 2's pieces in gptref against implementations outside it: transformers' Llama MLP and
BLOOM ALiBi builder, formulas written here, and the sentencepiece library itself."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gptref.heads import NormHead, norm_head_logits
from gptref.losses import max_z_loss
from gptref.mlp import MLP, SwiGLU, swiglu_hidden
from gptref.positions import alibi_bias, alibi_slopes


# -- SwiGLU ---------------------------------------------------------------------------------------
def test_swiglu_matches_transformers_llama_mlp():
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaMLP

    torch.manual_seed(0)
    ours = SwiGLU(64, hidden=176).double()
    theirs = LlamaMLP(LlamaConfig(hidden_size=64, intermediate_size=176, hidden_act="silu", mlp_bias=False)).double()
    theirs.load_state_dict(ours.state_dict())  # the same names: gate_proj, up_proj, down_proj
    x = torch.randn(3, 7, 64, dtype=torch.float64)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_embd,hidden", [(4096, 11008), (5120, 13696), (64, 256), (128, 384), (96, 256)])
def test_swiglu_hidden_is_8_3_rounded_up_to_128(n_embd, hidden):
    # 4096 -> 11008 (Baichuan 2 7B), 5120 -> 13696 (13B); the rest by hand: ceil(8/3 n / 128) * 128
    assert swiglu_hidden(n_embd) == hidden
    if n_embd <= 128:  # (the big ones take seconds to initialise)
        assert SwiGLU(n_embd).up_proj.out_features == hidden


def test_gelu_mlp_matches_formula_and_swiglu_matches_params():
    torch.manual_seed(1)
    m = MLP(32).double()
    x = torch.randn(5, 32, dtype=torch.float64)
    h = x @ m.c_fc.weight.T + m.c_fc.bias
    gelu = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))
    torch.testing.assert_close(m(x), gelu @ m.c_proj.weight.T + m.c_proj.bias)
    # 8/3 with three matrices ~ 4x with two: equal parameter budgets (up to the rounding)
    n = 768
    gelu_params = 2 * n * 4 * n
    swiglu_params = 3 * n * swiglu_hidden(n)
    assert abs(swiglu_params - gelu_params) / gelu_params < 0.01


def test_mlp_activation_option_exact_gelu_and_rejects_unknown():
    """MLP(activation="gelu") is BERT's exact erf GELU, not GPT-2's tanh one; an unknown activation is refused."""
    torch.manual_seed(2)
    m = MLP(16, hidden=40, activation="gelu").double()
    x = 3 * torch.randn(4, 16, dtype=torch.float64)  # large enough that tanh and erf GELU differ
    h = x @ m.c_fc.weight.T + m.c_fc.bias
    gelu = 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))
    torch.testing.assert_close(m(x), gelu @ m.c_proj.weight.T + m.c_proj.bias, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="activation"):
        MLP(16, activation="relu")


# -- ALiBi ----------------------------------------------------------------------------------------
def _slopes_by_the_paper(n: int) -> list[float]:
    """Press et al.: geometric 2^(-8/n)...; for non powers of two, the closest power's slopes then every
    other slope of twice that power (written here independently of gptref)."""
    def geometric(k):
        return [2 ** (-8 * (i + 1) / k) for i in range(k)]

    if n & (n - 1) == 0:
        return geometric(n)
    p = 1 << (n.bit_length() - 1)
    return geometric(p) + [s for i, s in enumerate(geometric(2 * p)) if i % 2 == 0][: n - p]


@pytest.mark.parametrize("n_heads", [1, 2, 4, 6, 8, 12, 16, 20, 40])
def test_alibi_slopes_match_paper_rule(n_heads):
    torch.testing.assert_close(alibi_slopes(n_heads), torch.tensor(_slopes_by_the_paper(n_heads)))


@pytest.mark.parametrize("n_heads,t_q,t_k", [(8, 5, 5), (6, 4, 9), (12, 1, 7), (40, 3, 3)])
def test_alibi_bias_matches_formula(n_heads, t_q, t_k):
    slopes = _slopes_by_the_paper(n_heads)
    want = torch.zeros(n_heads, t_q, t_k)
    for h in range(n_heads):
        for r in range(t_q):
            i = t_k - t_q + r  # queries are the last t_q positions
            for j in range(i + 1):
                want[h, r, j] = -slopes[h] * (i - j)
    torch.testing.assert_close(alibi_bias(n_heads, t_q, t_k), want)


@pytest.mark.parametrize("n_heads", [4, 6, 8, 12, 40])
def test_alibi_bias_matches_bloom_after_softmax(n_heads):
    """BLOOM adds +slope * j (key position); ours -slope * (i - j). Per row they differ by a constant,
    so with the causal mask the attention weights are equal, and bias + slope * i is BLOOM's bias."""
    from transformers.models.bloom.modeling_bloom import build_alibi_tensor

    T = 9
    bloom = build_alibi_tensor(torch.ones(1, T), n_heads, torch.float32).reshape(n_heads, 1, T)  # (H, 1, T)
    ours = alibi_bias(n_heads, T)  # (H, T, T)
    slopes = alibi_slopes(n_heads)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    shifted = ours + slopes[:, None, None] * torch.arange(T, dtype=torch.float32)[None, :, None]
    torch.testing.assert_close(shifted.masked_fill(~causal, 0), bloom.expand(-1, T, -1).masked_fill(~causal, 0))
    scores = torch.randn(n_heads, T, T)
    p_ours = (scores + ours).masked_fill(~causal, float("-inf")).softmax(-1)
    p_bloom = (scores + bloom).masked_fill(~causal, float("-inf")).softmax(-1)
    torch.testing.assert_close(p_ours, p_bloom)


def test_alibi_cache_rows_are_the_last_rows_of_the_full_bias():
    full = alibi_bias(6, 10)
    torch.testing.assert_close(alibi_bias(6, 3, 10), full[:, -3:, :])
    torch.testing.assert_close(alibi_bias(6, 1, 10), full[:, -1:, :])


def test_alibi_bad_input_names_it():
    with pytest.raises(ValueError, match="n_heads"):
        alibi_slopes(0)
    with pytest.raises(ValueError, match="t_k"):
        alibi_bias(4, 5, 3)


# -- NormHead -------------------------------------------------------------------------------------
def test_norm_head_matches_normalize_then_linear():
    torch.manual_seed(2)
    head = NormHead(16, 50).double()
    with torch.no_grad():
        head.weight.mul_(torch.rand(50, 1, dtype=torch.float64) * 10)  # rows of very different norms
    x = torch.randn(2, 3, 16, dtype=torch.float64)
    want = F.linear(x, F.normalize(head.weight, dim=-1))
    torch.testing.assert_close(head(x), want)
    torch.testing.assert_close(norm_head_logits(x, head.weight), want)
    # a row's norm no longer matters; its direction does
    w2 = head.weight.detach().clone()
    w2[7] *= 1000
    torch.testing.assert_close(norm_head_logits(x, w2), want)
    head(x).sum().backward()  # the gradient flows through the normalisation
    assert head.weight.grad is not None and torch.isfinite(head.weight.grad).all()


# -- max-z loss -----------------------------------------------------------------------------------
def test_max_z_loss_matches_formula():
    torch.manual_seed(3)
    logits = torch.randn(2, 5, 11, dtype=torch.float64) * 4
    want = 2e-4 * sum(max(logits[b, t].tolist()) ** 2 for b in range(2) for t in range(5)) / 10
    torch.testing.assert_close(max_z_loss(logits), torch.tensor(want, dtype=torch.float64))
    torch.testing.assert_close(max_z_loss(logits, weight=1.0), torch.tensor(want / 2e-4, dtype=torch.float64))
    # not the logsumexp (PaLM's z-loss): the two differ on these logits
    assert not torch.allclose(max_z_loss(logits), 2e-4 * logits.logsumexp(-1).pow(2).mean())
    ignore = torch.zeros(2, 5, dtype=torch.bool)
    ignore[0, 1:] = True
    kept = [max(logits[b, t].tolist()) ** 2 for b in range(2) for t in range(5) if not ignore[b, t]]
    torch.testing.assert_close(max_z_loss(logits, ignore_mask=ignore),
                               torch.tensor(2e-4 * sum(kept) / len(kept), dtype=torch.float64))
    with pytest.raises(ValueError, match="ignore_mask"):
        max_z_loss(logits, ignore_mask=ignore[0])


# -- SentencePiece --------------------------------------------------------------------------------
TEXT = ("To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"
        "The slings and arrows of outrageous fortune,\n    def f(x):\n        return 1234 + x\n"
        "1234 1234 1234 12 34 1234\n") * 40  # "1234" so frequent that BPE would merge its digits if allowed


@pytest.fixture(scope="module")
def spm_tok():
    from gptref.tokenizers import SentencePieceTokenizer

    return SentencePieceTokenizer.train(TEXT, 300)


def test_sentencepiece_agrees_with_the_library_and_round_trips(spm_tok, tmp_path):
    import sentencepiece as spm

    from gptref.tokenizers import SentencePieceTokenizer

    path = tmp_path / "tok.model"
    spm_tok.save(path)
    lib = spm.SentencePieceProcessor(model_file=str(path))
    probe = "The question, 2024: 世界 naïve\n\tindent   spaces  ☃ and 99 arrows"
    assert spm_tok.encode(probe) == lib.encode(probe)
    assert spm_tok.decode(spm_tok.encode(probe)) == probe  # byte fallback + identity: exact round trip
    assert lib.unk_id() not in spm_tok.encode(probe), "byte fallback: nothing may be unknown"
    again = SentencePieceTokenizer.from_spec(spm_tok.spec())
    assert again.model_proto == spm_tok.model_proto and again.encode(probe) == spm_tok.encode(probe)
    assert SentencePieceTokenizer.load(path).encode(probe) == spm_tok.encode(probe)


def test_sentencepiece_has_baichuan2_options(spm_tok):
    """The options, seen in behaviour (the library's own model proto reader needs protobuf)."""
    pieces = spm_tok.pieces("return 1234")
    assert pieces[-4:] == ["1", "2", "3", "4"], f"digits must be split one per token, got {pieces}"
    assert not spm_tok.pieces("return")[0].startswith("▁"), "no dummy prefix: the first word gets no space"
    assert any(set(p) == {"▁"} and len(p) > 1 for p in spm_tok.pieces("        return")), "whitespace-only pieces"
    for raw in ("Ｆｕｌｌ width", "a   b", "  lead", "ﬁ ligature"):  # NFKC would change each
        assert spm_tok.decode(spm_tok.encode(raw)) == raw, f"identity normalisation must keep {raw!r}"


def test_sentencepiece_bad_input_names_it():
    from gptref.tokenizers import SentencePieceTokenizer

    with pytest.raises(ValueError, match="SentencePiece"):
        SentencePieceTokenizer(b"not a model")
    with pytest.raises(ValueError, match="vocab_size"):
        SentencePieceTokenizer.train(TEXT, 10)
    with pytest.raises(ValueError, match="spm"):
        SentencePieceTokenizer.from_spec({"kind": "bpe"})


# -- Baichuan 2's options in gptref's GPT ---------------------------------------------------------
BAICHUAN = dict(positions="alibi", norm="rmsnorm", mlp="swiglu", mlp_multiple_of=16, head="normhead", z_loss=2e-4,
                bias=False)


def baichuan_gpt(seed: int, **shape):
    from gptref.gpt import GPT, GPTConfig

    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**BAICHUAN, **shape}))


def test_gpt_alibi_cache_matches_full_forward_beyond_block_size():
    model = baichuan_gpt(4, vocab_size=23, block_size=8, n_layer=2, n_head=6, n_embd=48).eval()
    idx = torch.randint(0, 23, (2, 13))  # longer than block_size: ALiBi has no position table
    full, _ = model(idx)
    cache = model.new_cache(max_len=13)
    parts = [model(idx[:, :5], cache=cache)[0]] + [model(idx[:, t:t + 1], cache=cache)[0] for t in range(5, 13)]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=1e-5, atol=1e-5)
    assert cache.length == 13
    with pytest.raises(ValueError, match="max_len"):
        model(idx[:, :1], cache=cache)  # the cache is full
    from gptref.gpt import GPT, GPTConfig

    with pytest.raises(ValueError, match="alibi"):
        GPT(GPTConfig(vocab_size=23, block_size=8, n_layer=1, n_head=2, n_embd=8)).new_cache(max_len=9)


def _reference_baichuan_forward(sd: dict, idx: torch.Tensor, targets: torch.Tensor, n_layer: int, n_head: int,
                                eps: float):
    """Baichuan 2's decoder written out with torch ops from a GPT state dict: (logits, CE + 2e-4 * max-logit^2)."""
    B, T = idx.shape
    x = sd["transformer.wte.weight"][idx]  # (B, T, C)
    C = x.shape[-1]
    D = C // n_head

    def rms(x, w):
        return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    # slopes, written for 6 heads from the paper: the 4 of 4 heads, then slopes 1 and 3 of 8 heads
    assert n_head == 6
    slopes = torch.tensor([2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8, 2 ** -1, 2 ** -3], dtype=x.dtype)
    pos = torch.arange(T, dtype=x.dtype)
    scores_bias = -slopes[:, None, None] * (pos[:, None] - pos[None, :])  # (H, T, T), j <= i matters
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    for layer in range(n_layer):
        p = f"transformer.h.{layer}."
        h = rms(x, sd[p + "ln_1.weight"])
        q, k, v = (h @ sd[p + "attn.c_attn.weight"].T).split(C, dim=-1)
        q, k, v = (t.view(B, T, n_head, D).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        att = q @ k.transpose(-1, -2) / math.sqrt(D) + scores_bias  # (B, H, T, T)
        att = att.masked_fill(future, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + y @ sd[p + "attn.c_proj.weight"].T
        h = rms(x, sd[p + "ln_2.weight"])
        gate, up = h @ sd[p + "mlp.gate_proj.weight"].T, h @ sd[p + "mlp.up_proj.weight"].T
        x = x + (gate * torch.sigmoid(gate) * up) @ sd[p + "mlp.down_proj.weight"].T
    x = rms(x, sd["transformer.ln_f.weight"])
    w = sd["lm_head.weight"]
    logits = x @ (w / w.pow(2).sum(1, keepdim=True).sqrt()).T  # (B, T, V), unit-norm token rows
    ce = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(-1))
    return logits, ce + 2e-4 * logits.max(-1).values.pow(2).mean()


def test_gpt_with_baichuan_options_matches_a_forward_written_out():
    """GPT(mlp="swiglu", positions="alibi", head="normhead", norm="rmsnorm", z_loss=2e-4) == the formulas."""
    model = baichuan_gpt(5, vocab_size=29, block_size=16, n_layer=2, n_head=6, n_embd=48).double().eval()
    with torch.no_grad():
        for p in model.parameters():  # norms start at ones: make every weight matter
            p.copy_(torch.randn_like(p) * 0.3)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    assert "lm_head.weight" in sd and sd["lm_head.weight"].data_ptr() != sd["transformer.wte.weight"].data_ptr()
    idx, tgt = torch.randint(0, 29, (3, 11)), torch.randint(0, 29, (3, 11))
    logits, loss = model(idx, tgt)
    want_logits, want_loss = _reference_baichuan_forward(sd, idx, tgt, 2, 6, model.config.norm_eps)
    torch.testing.assert_close(logits, want_logits, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(loss, want_loss, rtol=1e-10, atol=1e-10)
    assert isinstance(model.lm_head, NormHead)


def test_gpt_z_loss_leaves_out_ignored_targets():
    model = baichuan_gpt(6, vocab_size=17, block_size=8, n_layer=1, n_head=2, n_embd=16, z_loss=0.5)
    idx, tgt = torch.randint(0, 17, (3, 6)), torch.randint(0, 17, (3, 6))
    tgt[0, :4] = -100
    logits, loss = model(idx, tgt)
    keep = tgt != -100
    want = F.cross_entropy(logits[keep], tgt[keep]) + 0.5 * logits[keep].max(-1).values.pow(2).mean()
    torch.testing.assert_close(loss, want)


def test_spm_tokenizer_travels_in_a_checkpoint(tmp_path):
    """The homework's tokenizer spec for "spm" rebuilds the same model after a weights_only checkpoint load."""
    from gptref.tokenizers import SentencePieceTokenizer, tokenizer_from_spec
    from gptref.train.checkpoint import load_checkpoint, save_checkpoint

    tok = SentencePieceTokenizer.train(TEXT, 300)
    save_checkpoint({"tokenizer": tok.spec()}, tmp_path / "ckpt.pt")
    again = tokenizer_from_spec(load_checkpoint(tmp_path / "ckpt.pt")["tokenizer"])
    probe = "Whether 'tis nobler 4567 ☃"
    assert again.encode(probe) == tok.encode(probe) and again.decode(again.encode(probe)) == probe
