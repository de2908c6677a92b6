"""gptref.attention against torch's scaled_dot_product_attention and nn.MultiheadAttention."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from gptref.attention import (
    KVCache,
    LayerCaches,
    MultiHeadAttention,
    attend,
    causal_mask,
    merge_heads,
    padding_mask,
    scaled_dot_product_attention,
    split_heads,
)

F64 = dict(dtype=torch.float64)


def _qkv(B=2, H=3, tq=5, tk=7, D=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, H, tq, D, generator=g, **F64), torch.randn(B, H, tk, D, generator=g, **F64),
            torch.randn(B, H, tk, D, generator=g, **F64))


def _pad(B, tk, seed=1):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, tk + 1, (B,), generator=g)
    return torch.arange(tk)[None, :] < lengths[:, None]  # (B, T_k), True = real token, >= 1 per row


@pytest.mark.parametrize("kind", ["none", "causal", "padding", "both", "cross", "cross_padding"])
def test_sdpa_matches_torch(kind):
    tq, tk = (5, 7) if kind.startswith("cross") else (6, 6)
    q, k, v = _qkv(tq=tq, tk=tk)
    mask = None
    if kind in ("causal", "both"):
        mask = causal_mask(tq, tk)
    if kind in ("padding", "both", "cross_padding"):
        pm = padding_mask(_pad(2, tk))
        mask = pm if mask is None else mask & pm
    out, w = scaled_dot_product_attention(q, k, v, mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1], **F64))
    if mask is not None:
        assert (w.masked_select(~mask.expand_as(w)) == 0).all()


def test_sdpa_3d_and_mask_shapes():
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(3, 4, 8, generator=g, **F64) for _ in range(3))
    out, w = scaled_dot_product_attention(q, k, v, causal_mask(4))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True))
    assert w.shape == (3, 4, 4)
    assert padding_mask(torch.ones(2, 5, dtype=torch.bool)).shape == (2, 1, 1, 5)


def test_causal_mask_alignment():
    # brute force: query i is at position t_k - t_q + i and sees keys at positions <= its own
    for tq, tk in [(4, 4), (3, 7), (1, 5), (5, 3)]:
        expected = torch.tensor([[j <= tk - tq + i for j in range(tk)] for i in range(tq)])
        assert torch.equal(causal_mask(tq, tk), expected)
    assert torch.equal(causal_mask(4), torch.ones(4, 4, dtype=torch.bool).tril())


def test_fully_masked_rows_give_zeros_and_finite_grads():
    q, k, v = _qkv(tq=4, tk=4)
    q.requires_grad_(True)
    mask = torch.ones(2, 1, 4, 4, dtype=torch.bool)
    mask[0, :, 1] = False  # query 1 of batch 0 may attend to nothing
    out, w = scaled_dot_product_attention(q, k, v, mask)
    assert torch.isfinite(out).all() and torch.isfinite(w).all()
    assert (out[0, :, 1] == 0).all() and (w[0, :, 1] == 0).all()
    out.sum().backward()
    assert torch.isfinite(q.grad).all()
    # the other rows are unchanged: compare with torch on them
    expected = F.scaled_dot_product_attention(q.detach(), k, v, attn_mask=mask)
    keep = mask.any(-1).expand(2, 3, 4)
    torch.testing.assert_close(out.detach()[keep], expected[keep])


def test_split_merge_heads():
    x = torch.randn(2, 5, 12, generator=torch.Generator().manual_seed(3))
    h = split_heads(x, 3)
    assert h.shape == (2, 3, 5, 4)
    torch.testing.assert_close(h[:, 1], x[..., 4:8])  # head 1 owns channels 4..7
    torch.testing.assert_close(merge_heads(h), x)


def _copy_into_torch(mha: MultiHeadAttention, ref: nn.MultiheadAttention) -> None:
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([mha.q_proj.weight, mha.k_proj.weight, mha.v_proj.weight]))
        ref.in_proj_bias.copy_(torch.cat([mha.q_proj.bias, mha.k_proj.bias, mha.v_proj.bias]))
        ref.out_proj.weight.copy_(mha.out_proj.weight)
        ref.out_proj.bias.copy_(mha.out_proj.bias)


@pytest.mark.parametrize("cross", [False, True])
def test_mha_matches_nn_multihead_attention(cross):
    torch.manual_seed(4)
    d, h = 16, 4
    mha = MultiHeadAttention(d, h).double().eval()
    ref = nn.MultiheadAttention(d, h, batch_first=True).double().eval()
    _copy_into_torch(mha, ref)
    x = torch.randn(2, 5, d, **F64)
    ctx = torch.randn(2, 7, d, **F64) if cross else x
    keep = _pad(2, ctx.shape[1])
    mask = padding_mask(keep) & (causal_mask(5) if not cross else True)
    out, w = mha(x, context=ctx if cross else None, mask=mask, need_weights=True)
    # torch's attn_mask / key_padding_mask are True where NOT allowed
    expected, ew = ref(x, ctx, ctx, key_padding_mask=~keep, attn_mask=None if cross else ~causal_mask(5),
                       average_attn_weights=False)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(w, ew)


@pytest.mark.parametrize("n_kv", [1, 2])
def test_gqa_equals_repeated_kv_heads(n_kv):
    torch.manual_seed(5)
    d, h, B, T = 16, 4, 2, 6
    mha = MultiHeadAttention(d, h, n_kv_heads=n_kv).double()
    x = torch.randn(B, T, d, **F64)
    out = mha(x, causal=True)
    assert mha.k_proj.weight.shape == (n_kv * d // h, d)
    q = mha.q_proj(x).view(B, T, h, d // h).transpose(1, 2)
    k = mha.k_proj(x).view(B, T, n_kv, d // h).transpose(1, 2)
    v = mha.v_proj(x).view(B, T, n_kv, d // h).transpose(1, 2)
    # torch's own grouped-query attention (query head i uses kv head i // (h // n_kv))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    expected = mha.out_proj(y.transpose(1, 2).reshape(B, T, d))
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("n_kv", [4, 2])
def test_kv_cache_matches_full_pass(n_kv):
    torch.manual_seed(6)
    mha = MultiHeadAttention(16, 4, n_kv_heads=n_kv).double()
    x = torch.randn(2, 7, 16, **F64)
    full = mha(x, causal=True)
    cache = KVCache()
    parts = [mha(x[:, :3], cache=cache, causal=True)]  # a prompt of 3 tokens, then one at a time
    for t in range(3, 7):
        parts.append(mha(x[:, t : t + 1], cache=cache, causal=True))
    torch.testing.assert_close(torch.cat(parts, dim=1), full)
    assert cache.length == 7 and cache.k.shape == (2, n_kv, 7, 4)


def test_cross_attention_cache_projects_context_once():
    torch.manual_seed(7)
    mha = MultiHeadAttention(8, 2).double()
    x, ctx = torch.randn(1, 3, 8, **F64), torch.randn(1, 5, 8, **F64)
    cache = KVCache()
    a = mha(x[:, :2], context=ctx, cache=cache)
    b = mha(x[:, 2:], context=ctx, cache=cache)
    torch.testing.assert_close(torch.cat([a, b], 1), mha(x, context=ctx))
    assert cache.length == 5


def test_bad_arguments_raise_value_error():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="q and k"):
        scaled_dot_product_attention(q, k[..., :4], v)
    with pytest.raises(ValueError, match="mask"):
        scaled_dot_product_attention(q, k, v, torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        scaled_dot_product_attention(q, k, v, torch.ones(5, 7))
    with pytest.raises(ValueError, match="n_heads"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="n_kv_heads"):
        MultiHeadAttention(12, 4, n_kv_heads=3)
    with pytest.raises(ValueError, match="x must be"):
        MultiHeadAttention(8, 2)(torch.randn(2, 3, 6))
    with pytest.raises(ValueError, match="key_is_token"):
        padding_mask(torch.ones(2, 3))


# ---------------------------------------------------------------- kernels, additive bias, GPT-2's fused layout


def _softmax_reference(q, k, v, mask=None, bias=None):
    """softmax(q k^T / sqrt(D) + bias, masked) v written with einsum, in float64."""
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / q.shape[-1] ** 0.5
    if bias is not None:
        scores = scores + bias
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.einsum("bhqk,bhkd->bhqd", scores.softmax(-1), v)


@pytest.mark.parametrize("kernel", ["math", "sdpa", "flash"])
@pytest.mark.parametrize("tq,tk", [(5, 5), (1, 7), (3, 7)])
def test_attend_kernels_agree_on_causal_attention_with_a_cache_offset(kernel, tq, tk):
    """causal=True is causal_mask(T_q, T_k): the queries are the last T_q positions, for every kernel."""
    q, k, v = _qkv(tq=tq, tk=tk, seed=20)
    expected = _softmax_reference(q, k, v, mask=causal_mask(tq, tk))
    torch.testing.assert_close(attend(q, k, v, causal=True, kernel=kernel), expected)


@pytest.mark.parametrize("kernel", ["math", "sdpa"])
def test_attend_adds_the_bias_and_masks(kernel):
    q, k, v = _qkv(seed=21)
    bias = torch.randn(1, 3, 5, 7, generator=torch.Generator().manual_seed(22), **F64) * 3  # (1, H, T_q, T_k)
    mask = padding_mask(_pad(2, 7))  # (B, 1, 1, T_k)
    expected = _softmax_reference(q, k, v, mask=mask & causal_mask(5, 7), bias=bias)
    torch.testing.assert_close(attend(q, k, v, mask, bias, causal=True, kernel=kernel), expected)
    mha = MultiHeadAttention(12, 3, kernel=kernel).double()
    x = torch.randn(2, 5, 12, **F64)
    torch.testing.assert_close(mha(x, bias=bias[..., :5]), mha(x, bias=bias[..., :5], need_weights=True)[0])


def test_attend_refuses_what_a_kernel_cannot_do():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="flash"):
        attend(q, k, v, mask=torch.ones(5, 7, dtype=torch.bool), kernel="flash")
    with pytest.raises(ValueError, match="kernel"):
        attend(q, k, v, kernel="cudnn")
    with pytest.raises(ValueError, match="bias"):
        scaled_dot_product_attention(q, k, v, bias=torch.ones(5, 7, dtype=torch.long))
    with pytest.raises(ValueError, match="kernel"):
        MultiHeadAttention(8, 2, kernel="fast")
    with pytest.raises(ValueError, match="fused_qkv"):
        MultiHeadAttention(8, 2, fused_qkv=True)(torch.randn(1, 3, 8), context=torch.randn(1, 4, 8))


@pytest.mark.parametrize("n_kv", [4, 2])
def test_fused_qkv_is_the_same_attention_in_gpt2_layout(n_kv):
    """fused_qkv=True: c_attn holds [q; k; v] stacked, c_proj the output projection; same function."""
    torch.manual_seed(23)
    plain = MultiHeadAttention(16, 4, n_kv_heads=n_kv).double()
    fused = MultiHeadAttention(16, 4, n_kv_heads=n_kv, fused_qkv=True, kernel="sdpa").double()
    assert sorted(n for n, _ in fused.named_parameters()) == [
        "c_attn.bias", "c_attn.weight", "c_proj.bias", "c_proj.weight"]
    with torch.no_grad():
        fused.c_attn.weight.copy_(torch.cat([plain.q_proj.weight, plain.k_proj.weight, plain.v_proj.weight]))
        fused.c_attn.bias.copy_(torch.cat([plain.q_proj.bias, plain.k_proj.bias, plain.v_proj.bias]))
        fused.c_proj.load_state_dict(plain.out_proj.state_dict())
    x = torch.randn(2, 6, 16, **F64)
    torch.testing.assert_close(fused(x, causal=True), plain(x, causal=True))


def test_layer_caches_and_kv_cache_capacity_and_reorder():
    caches = LayerCaches(3, max_len=4)
    assert len(caches) == 3 and caches.length == 0 and caches.max_len == 4
    k = torch.arange(2 * 3, dtype=torch.float64).view(2, 1, 3, 1)  # (B=2, H=1, T=3, D=1)
    for cache in caches:
        cache.append(k, -k)
    caches.reorder(torch.tensor([1, 1]))
    assert caches.length == 3 and all(torch.equal(c.k, k[[1, 1]]) and torch.equal(c.v, -k[[1, 1]]) for c in caches)
    with pytest.raises(ValueError, match="max_len"):
        caches[0].append(k[:, :, :2], k[:, :, :2])
