"""gptref.flash: tiled attention equal to naive float64 attention (values and gradients), memory
that grows linearly in T, and (with CUDA and Triton) the Triton kernel against torch's SDPA."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

import gptref.flash
from gptref.attention import scaled_dot_product_attention
from gptref.flash import flash_attention, flash_attention_triton, online_softmax
from gptref.flash.memory import track_allocations


def _naive(q, k, v, causal):
    """Reference: the full (T_q, T_k) attention, causal aligned with queries last (brute-force mask)."""
    tq, tk = q.shape[-2], k.shape[-2]
    mask = None
    if causal:
        mask = torch.tensor([[j <= i + tk - tq for j in range(tk)] for i in range(tq)])
    return scaled_dot_product_attention(q, k, v, mask)[0]


CASES = [  # (lead dims, T_q, T_k, D, Dv, causal, block_q, block_k)
    ((2, 3), 37, 37, 16, 16, True, 16, 8),
    ((2, 3), 37, 37, 16, 16, False, 16, 8),
    ((1, 2), 20, 45, 8, 12, True, 7, 9),  # T_k > T_q: queries are the last positions
    ((1, 2), 45, 20, 8, 8, True, 16, 16),  # T_k < T_q: the first rows see no key
    ((3,), 50, 33, 32, 32, False, 64, 64),  # 3-D, blocks bigger than T
    ((2, 2), 1, 29, 16, 16, True, 4, 5),  # one query (decoding)
]


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_flash_matches_naive_values_and_grads(case):
    lead, tq, tk, d, dv, causal, bq, bk = case
    g = torch.Generator().manual_seed(hash(case) % 2**31)
    q = torch.randn(*lead, tq, d, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(*lead, tk, d, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(*lead, tk, dv, generator=g, dtype=torch.float64, requires_grad=True)
    dout = torch.randn(*lead, tq, dv, generator=g, dtype=torch.float64)
    out = flash_attention(q, k, v, causal=causal, block_q=bq, block_k=bk)
    ref = _naive(q, k, v, causal)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    grads = torch.autograd.grad(out, (q, k, v), dout)
    ref_grads = torch.autograd.grad(ref, (q, k, v), dout)
    for name, a, b in zip("qkv", grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=lambda m: f"d{name}: {m}")


def test_flash_float32_default_blocks_and_gradcheck():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 2, 300, 16, generator=g) for _ in range(3))
    torch.testing.assert_close(flash_attention(q, k, v, causal=True),
                               F.scaled_dot_product_attention(q, k, v, is_causal=True), rtol=1e-4, atol=1e-5)
    small = [torch.randn(1, 2, 6, 4, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    assert torch.autograd.gradcheck(lambda q, k, v: flash_attention(q, k, v, True, 4, 4), small)


def test_online_softmax():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 4, 100, generator=g, dtype=torch.float64) * 10
    x[0, 0, 50:] = float("-inf")
    for block in (1, 7, 64, 200):
        torch.testing.assert_close(online_softmax(x, block), torch.softmax(x, dim=-1))


def _peak(fn, T, bq, bk, D=16, N=2, backward=False):
    g = torch.Generator().manual_seed(T)
    q, k, v = (torch.randn(N, T, D, generator=g, requires_grad=backward) for _ in range(3))
    with track_allocations() as mem:
        out = fn(q, k, v, bq, bk)
        if backward:
            out.backward(torch.ones_like(out))
        del out
    return mem


@pytest.mark.parametrize("backward", [False, True])
def test_flash_memory_is_linear_in_T(backward):
    flash = lambda q, k, v, bq, bk: flash_attention(q, k, v, causal=True, block_q=bq, block_k=bk)  # noqa: E731
    naive = lambda q, k, v, bq, bk: _naive(q, k, v, causal=False)  # noqa: E731
    bq, bk, D, N, elt = 32, 64, 16, 2, 4
    small, big = _peak(flash, 256, bq, bk, backward=backward), _peak(flash, 1024, bq, bk, backward=backward)
    # the largest single tensor is O(T * D) (out, grads) or one (block_q, block_k) tile, never O(T^2)
    assert big.largest <= N * max(1024 * D, bq * bk) * elt, big.largest
    # 4x the length -> at most ~4x the memory (linear), where (T, T) scores would need 16x
    assert big.peak <= 4.5 * small.peak, (small.peak, big.peak)
    # and the tracker does see quadratic memory when it is there
    n_small, n_big = _peak(naive, 256, bq, bk, backward=backward), _peak(naive, 1024, bq, bk, backward=backward)
    assert n_big.largest >= N * 1024 * 1024 * elt and n_big.peak >= 12 * n_small.peak


def test_bad_arguments():
    q = torch.randn(1, 4, 8)
    with pytest.raises(ValueError, match="head dim"):
        flash_attention(q, torch.randn(1, 4, 6), torch.randn(1, 4, 8))
    with pytest.raises(ValueError, match="T_k"):
        flash_attention(q, q, torch.randn(1, 5, 8))
    with pytest.raises(ValueError, match="block_q"):
        flash_attention(q, q, q, block_q=0)


def test_import_is_lazy_and_triton_error_is_clear():
    assert "gptref.flash.triton_kernel" not in sys.modules
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="CUDA"):
        flash_attention_triton(*(torch.randn(1, 1, 8, 64) for _ in range(3)))


def _has_triton():
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


needs_gpu = [pytest.mark.cuda, pytest.mark.skipif(not _has_triton(), reason="needs a CUDA GPU and triton")]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("D", [64, 128])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("T", [128, 1000])
@needs_gpu[0]
@needs_gpu[1]
def test_triton_matches_sdpa(dtype, D, causal, T):
    g = torch.Generator(device="cuda").manual_seed(T + D)
    q, k, v = (torch.randn(2, 3, T, D, generator=g, device="cuda", dtype=dtype, requires_grad=True) for _ in range(3))
    dout = torch.randn(2, 3, T, D, generator=g, device="cuda", dtype=dtype)
    out = gptref.flash.flash_attention_triton(q, k, v, causal=causal)
    # reference in float32 math, from the same low-precision inputs
    q32, k32, v32 = (t.detach().float().requires_grad_() for t in (q, k, v))
    ref = F.scaled_dot_product_attention(q32, k32, v32, is_causal=causal)
    tol = dict(rtol=2e-2, atol=2e-2) if dtype == torch.bfloat16 else dict(rtol=5e-3, atol=5e-3)
    torch.testing.assert_close(out.float(), ref, **tol)
    grads = torch.autograd.grad(out, (q, k, v), dout)
    ref_grads = torch.autograd.grad(ref, (q32, k32, v32), dout.float())
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a.float(), b, rtol=5e-2, atol=5e-2)


@needs_gpu[0]
@needs_gpu[1]
def test_triton_cross_lengths_causal():
    g = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(1, 2, 70, 64, generator=g, device="cuda", dtype=torch.float16)
    k, v = (torch.randn(1, 2, 200, 64, generator=g, device="cuda", dtype=torch.float16) for _ in range(2))
    out = gptref.flash.flash_attention_triton(q, k, v, causal=True)
    torch.testing.assert_close(out.float(), _naive(q.double(), k.double(), v.double(), True).float(),
                               rtol=5e-3, atol=5e-3)


_INTERPRETED = textwrap.dedent("""
    import torch
    from gptref.attention import scaled_dot_product_attention
    from gptref.flash.triton_kernel import _TritonFlashAttention
    torch.manual_seed(0)
    for tq, tk, D, causal in [(100, 100, 64, True), (70, 150, 32, True), (90, 40, 16, True), (75, 33, 128, False)]:
        q, k, v = (torch.randn(1, 2, t, D, dtype=torch.float64) for t in (tq, tk, tk))
        mask = torch.ones(tq, tk, dtype=torch.bool).tril(tk - tq) if causal else None
        ins = [t.float().requires_grad_() for t in (q, k, v)]
        ref_ins = [t.clone().requires_grad_() for t in (q, k, v)]
        out = _TritonFlashAttention.apply(*ins, causal)
        ref = scaled_dot_product_attention(*ref_ins, mask)[0]
        torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-5)
        dout = torch.randn(1, 2, tq, D, dtype=torch.float64)
        for a, b in zip(torch.autograd.grad(out, ins, dout.float()), torch.autograd.grad(ref, ref_ins, dout)):
            torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-5)
    print("ok")
""")


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_triton_kernel_in_interpreter():
    """The Triton kernels run on the CPU through TRITON_INTERPRET=1 (float32), against float64 naive."""
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    res = subprocess.run([sys.executable, "-c", _INTERPRETED], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-3000:]
