"""Builds solutions/08_flash_attention/08_flash_attention.ipynb: online softmax and tiled (flash) attention."""

from tools.nbbuild import Notebook

nb = Notebook("08_flash_attention")

nb.md(r"""
# Day 8 — Flash attention

Attention as written on Day 2, $\mathrm{softmax}(QK^\top/\sqrt{d})\,V$, builds a $T \times T$ matrix of
scores for every head of every sequence. At $T = 8192$ that is 67 million numbers per head, 256 MB in
float32, written to memory and read back twice. On a GPU the arithmetic is cheap and moving those bytes is
what costs. **Flash attention** (Dao et al., 2022) computes exactly the same output without ever holding
the score matrix: it walks over tiles of queries and keys and keeps, per query, three small running
quantities. The trick that makes it possible is the **online softmax** (Milakov & Gimelshein, 2018).

**Learning goals.** After this notebook you can

1. compute a softmax in one streaming pass over blocks, with a running max and a rescaled running sum;
2. write tiled attention that is equal to ordinary attention to float tolerance, for any sequence length
   and with a causal mask;
3. say how much memory naive and tiled attention need as $T$ grows, and measure it;
4. explain why flash attention is faster on a GPU although it does at least as many FLOPs.
""")

nb.code(r"""
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_num_threads(1)   # tiny tensors: one thread is fastest, and steady on a shared machine
""")

nb.md(r"""
## 1. The softmax, one block at a time

For one row of scores $x_1, \dots, x_N$, the softmax is $p_i = e^{x_i - m} / \ell$ with

$$m = \max_j x_j, \qquad \ell = \sum_j e^{x_j - m}.$$

Subtracting $m$ changes nothing mathematically but keeps every exponent $\le 0$, so nothing overflows
(try `torch.exp(torch.tensor(800.))`). It seems to need two passes over the row, one for $m$ and one for
$\ell$. It does not. Suppose we have seen a prefix of the row and hold its max $m$ and its sum $\ell$
**relative to that max**. A new block $x_{B}$ arrives:

$$m' = \max\big(m, \max_{j \in B} x_j\big), \qquad
\ell' = \ell \cdot e^{\,m - m'} + \sum_{j \in B} e^{x_j - m'} .$$

The factor $e^{m - m'} \le 1$ **rescales** the old sum: its terms were $e^{x_j - m}$ and must become
$e^{x_j - m'}$. Forget it and every block counted under an older, smaller max is overweighted. When the
max does not change, $e^{m-m'} = 1$ and the update is a plain running sum. Start from $m = -\infty$,
$\ell = 0$; after the last block $(m, \ell)$ are exactly the row max and the normalizer, and
$\log \ell + m$ is the row's log-sum-exp.

A detail: masked scores are $-\infty$. A block may be entirely $-\infty$ for some rows; then $m' = m$ and
its terms add $e^{-\infty} = 0$, which is fine. Only $e^{-\infty - (-\infty)}$ is NaN, and it cannot happen
here as long as the first block of every row has a finite score (true for the tests).

**Exercise.** Write `online_softmax_stats(blocks)`: `blocks` is a list of tensors `(..., b_i)`, the
consecutive chunks of each row (the last chunk may be shorter). Visit them once, in order, and return
`(m, l)`, each of shape `(...)`. You may not call a softmax or log-sum-exp function.
""")

nb.solution("online_softmax_stats", r'''
def online_softmax_stats(blocks):
    """Running max m and running sum l = sum exp(x - m) over consecutive blocks (..., b) of each row."""
    ### BEGIN SOLUTION
    first = blocks[0]
    m = torch.full(first.shape[:-1], float("-inf"), dtype=first.dtype)   # (...) running max
    l = torch.zeros(first.shape[:-1], dtype=first.dtype)                # (...) running sum, relative to m
    for block in blocks:
        m_new = torch.maximum(m, block.amax(dim=-1))
        l = l * torch.exp(m - m_new) + torch.exp(block - m_new[..., None]).sum(dim=-1)
        m = m_new
    return m, l
    ### END SOLUTION
''')

nb.tests("test_online_softmax_stats", 2, r'''
_x = torch.tensor([[1.0, 2.0, 5.0, 3.0, 9.0, 0.0]], dtype=torch.float64)
_res = online_softmax_stats(list(_x.split(2, dim=-1)))
assert isinstance(_res, tuple) and len(_res) == 2, "return a tuple (m, l)"
_m, _l = _res
assert _m.shape == (1,) and _l.shape == (1,), f"m and l have one value per row: expected shape (1,), got {tuple(_m.shape)}, {tuple(_l.shape)}"
assert _m.item() == 9.0, f"m should be the row max 9.0, got {_m.item()}"
_big = torch.tensor([[800.0, 790.0, 810.0, 805.0]])
_mb, _lb = online_softmax_stats(list(_big.split(2, dim=-1)))
assert torch.isfinite(_lb).all(), "l overflowed on large scores: subtract the running max inside exp, exp(block - m_new)"
_expected_l = torch.exp(_x - 9.0).sum().item()
assert abs(_l.item() - torch.exp(_x).sum().item()) > 1e-3, \
    "l must be the sum of exp(x - m), relative to the max: subtract the running max inside exp"
assert abs(_l.item() - _expected_l) < 1e-9, \
    f"l should be sum(exp(x - m)) = {_expected_l:.6f}, got {_l.item():.6f}: your running sum was not rescaled when the max changed (multiply it by exp(m_old - m_new))"
_y = torch.randn(2, 3, 50, dtype=torch.float64)
_m, _l = online_softmax_stats(list(_y.split(16, dim=-1)))             # 16 + 16 + 16 + 2
assert torch.allclose(torch.exp(_y - _m[..., None]) / _l[..., None], torch.softmax(_y, dim=-1)), \
    "exp(x - m) / l must equal torch.softmax(x, dim=-1) (work over the last dimension, per row)"
_z = torch.randn(2, 20, dtype=torch.float64)
_z[0, 8:] = float("-inf")                                              # masked scores
_m, _l = online_softmax_stats(list(_z.split(4, dim=-1)))
assert torch.isfinite(_l).all() and torch.allclose(torch.exp(_z - _m[..., None]) / _l[..., None], torch.softmax(_z, -1)), \
    "-inf scores (masked) must contribute 0 to the sum"
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("08_flash_attention", "online_softmax_stats", online_softmax_stats)
### END HIDDEN TESTS
''')

nb.md(r"""
## 2. Tiled attention

Attention for one query $q_i$ is a softmax-weighted average of the values:

$$o_i = \frac{\sum_j e^{s_{ij} - m_i}\, v_j}{\sum_j e^{s_{ij} - m_i}}, \qquad s_{ij} = \frac{q_i \cdot k_j}{\sqrt d}.$$

The numerator is a sum over keys as well, so it streams the same way as $\ell$. Cut the queries into blocks
of `block_q` rows and the keys and values into blocks of `block_k` rows. For one block of queries keep, per
query, the running max $m$, the running sum $\ell$ and a running (unnormalized) output
$\mathrm{acc} \in \mathbb{R}^{d}$. For each key block $j$:

$$S = Q_i K_j^\top / \sqrt d, \quad m' = \max(m, \mathrm{rowmax}(S)), \quad P = e^{S - m'},$$
$$\ell' = e^{m - m'}\,\ell + \mathrm{rowsum}(P), \qquad \mathrm{acc}' = e^{m - m'}\,\mathrm{acc} + P V_j .$$

After the last key block, $o = \mathrm{acc} / \ell$. The largest temporary is one tile $S$ of
`block_q × block_k` scores, whatever $T$ is. This is the forward pass of FlashAttention. (The backward
pass recomputes each tile from $Q$, $K$ and the saved $m + \log \ell$ instead of storing $P$; see
`gptref.flash.flash_attention`.)

**Causal masking** with $T_q = T_k$: query $i$ may see keys $j \le i$. Inside a tile, set $s_{ij} = -\infty$
where $j > i$ (use absolute positions: $i$ = `i0 + row`, $j$ = `j0 + col`). Every query sees key 0, which
lies in the first key block, so the running max is finite after the first tile. (A faster version skips the
tiles that lie entirely above the diagonal; that is optional here.)

**Exercise.** Write `tiled_attention(q, k, v, block_q=64, block_k=64, causal=False)` for inputs
`(..., T_q, D)`, `(..., T_k, D)`, `(..., T_k, D)` returning `(..., T_q, D)`. $T$ need not be a multiple of
the block sizes. It may not call `F.scaled_dot_product_attention`, a softmax, or gptref's attention, and it
may not build a `(T_q, T_k)` matrix (the test measures the largest tensor you create).
""")

nb.solution("tiled_attention", r'''
def tiled_attention(q, k, v, block_q=64, block_k=64, causal=False):
    """softmax(q k^T / sqrt(D)) v computed tile by tile with an online softmax; never a (T_q, T_k) matrix."""
    ### BEGIN SOLUTION
    T_q, D = q.shape[-2], q.shape[-1]
    T_k = k.shape[-2]
    scale = 1.0 / math.sqrt(D)
    out = torch.empty(*q.shape[:-1], v.shape[-1], dtype=q.dtype)         # (..., T_q, D)
    for i0 in range(0, T_q, block_q):
        qi = q[..., i0:i0 + block_q, :] * scale                           # (..., bq, D)
        bq = qi.shape[-2]
        m = torch.full(qi.shape[:-1], float("-inf"), dtype=q.dtype)      # (..., bq) running max
        l = torch.zeros(qi.shape[:-1], dtype=q.dtype)                    # (..., bq) running sum
        acc = torch.zeros(*qi.shape[:-1], v.shape[-1], dtype=q.dtype)    # (..., bq, D) running output
        for j0 in range(0, T_k, block_k):
            s = qi @ k[..., j0:j0 + block_k, :].transpose(-2, -1)          # (..., bq, bk) one tile of scores
            if causal:
                rows = torch.arange(i0, i0 + bq)[:, None]
                cols = torch.arange(j0, j0 + s.shape[-1])[None, :]
                s = s.masked_fill(cols > rows, float("-inf"))
            m_new = torch.maximum(m, s.amax(dim=-1))
            alpha = torch.exp(m - m_new)                                  # (..., bq) rescales the old state
            p = torch.exp(s - m_new[..., None])                           # (..., bq, bk)
            l = l * alpha + p.sum(dim=-1)
            acc = acc * alpha[..., None] + p @ v[..., j0:j0 + block_k, :]
            m = m_new
        out[..., i0:i0 + bq, :] = acc / l[..., None]
    return out
    ### END SOLUTION
''')

nb.md(r"""
The test below measures memory with a small tool: `largest_tensor(fn, *args)` runs `fn` under a
`TorchFunctionMode` (a hook torch calls for every tensor operation) and records the number of elements of
the largest tensor any operation returned.
""")

nb.code(r"""
from torch.overrides import TorchFunctionMode


class _LargestTensor(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        for r in result if isinstance(result, (tuple, list)) else (result,):
            if isinstance(r, torch.Tensor):
                self.largest = max(self.largest, r.numel())
        return result


def largest_tensor(fn, *args, **kwargs):
    # (result, number of elements of the largest tensor created while fn ran)
    with _LargestTensor() as mode:
        result = fn(*args, **kwargs)
    return result, mode.largest


def naive_attention(q, k, v, causal=False):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])                 # (..., T_q, T_k): the whole matrix
    if causal:
        s = s.masked_fill(torch.ones(s.shape[-2:], dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(s, dim=-1) @ v


_, n = largest_tensor(naive_attention, *torch.randn(3, 1, 256, 16))
print(f"naive attention at T=256, D=16: largest tensor has {n} elements (256 x 256 = {256 * 256})")
""")

nb.tests("test_tiled_attention", 3, r'''
torch.manual_seed(8)
_q, _k, _v = torch.randn(3, 2, 40, 8, dtype=torch.float64).unbind(0)
_out = tiled_attention(_q, _k, _v, block_q=16, block_k=16)
assert isinstance(_out, torch.Tensor) and _out.shape == (2, 40, 8), \
    f"expected output shape (2, 40, 8) = (..., T_q, D), got {tuple(getattr(_out, 'shape', ()))}"
_ref = F.scaled_dot_product_attention(_q, _k, _v)
if not torch.allclose(_out, _ref, atol=1e-8):
    assert not torch.allclose(_out, F.scaled_dot_product_attention(_q, _k, _v, scale=1.0), atol=1e-8), \
        "scale the scores by 1/sqrt(D)"
    _one = tiled_attention(_q, _k, _v, block_q=16, block_k=64)
    assert not torch.allclose(_one, _ref, atol=1e-8), \
        "right with one key block, wrong with several: rescale acc and l by exp(m_old - m_new) when the max grows"
    raise AssertionError(f"max abs error {(_out - _ref).abs().max():.3g} against softmax(q k^T / sqrt(D)) v "
                         "(T = 40 is not a multiple of the block 16: handle the shorter last block)")
_out = tiled_attention(_q, _k, _v, block_q=8, block_k=16, causal=True)
assert torch.allclose(_out, F.scaled_dot_product_attention(_q, _k, _v, is_causal=True), atol=1e-8), \
    "causal=True: inside each tile hide the keys j > i, using absolute positions (i0 + row, j0 + col)"
_q, _k, _v = torch.randn(3, 1, 2, 256, 16).unbind(0)
_out, _n = largest_tensor(tiled_attention, _q, _k, _v, block_q=32, block_k=32)
assert torch.allclose(_out, F.scaled_dot_product_attention(_q, _k, _v), atol=1e-5), "float32 inputs: wrong result"
assert _n < 2 * 256 * 256 // 4, \
    f"your code built a tensor of {_n} elements; the (T_q, T_k) score matrix has {2 * 256 * 256}: work tile by tile"
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("08_flash_attention", "tiled_attention", tiled_attention)
### END HIDDEN TESTS
''')

nb.md(r"""
## 3. Memory as $T$ grows

Per head, naive attention holds the scores $S$ and the probabilities $P$, both $T \times T$ (and autograd
keeps $P$ for the backward pass). Tiled attention holds $Q$, $K$, $V$, $O$ ($4Td$ numbers), one tile
($b_q b_k$) and three per-query vectors. The cell below plots both counts in bytes (float32) and also
**measures** the largest tensor each implementation creates, with the tool above.
""")

nb.code(r"""
D, bq, bk = 32, 64, 64
Ts = [128, 256, 512, 1024, 2048]
measured_naive, measured_tiled = [], []
for T in Ts:
    q, k, v = torch.randn(3, 1, T, D).unbind(0)
    measured_naive.append(largest_tensor(naive_attention, q, k, v)[1] * 4)
    measured_tiled.append(largest_tensor(tiled_attention, q, k, v, block_q=bq, block_k=bk)[1] * 4)
plt.figure(figsize=(6, 4))
plt.loglog(Ts, [2 * T * T * 4 for T in Ts], "--", color="tab:red", label="naive: S and P, 2 T^2 floats")
plt.loglog(Ts, [(4 * T * D + bq * bk) * 4 for T in Ts], "--", color="tab:blue", label="tiled: 4 T d + tile")
plt.loglog(Ts, measured_naive, "o", color="tab:red", label="naive: largest tensor (measured)")
plt.loglog(Ts, measured_tiled, "s", color="tab:blue", label="tiled: largest tensor (measured)")
plt.xlabel("sequence length T"); plt.ylabel("bytes per head (float32)")
plt.title(f"attention memory, d = {D}, tiles {bq} x {bk}")
plt.legend(fontsize=8)
plt.tight_layout()
plt.savefig("attention_memory.png", dpi=90)
plt.show()
""")

nb.md(r"""
The naive curve has slope 2 on the log-log plot ($T^2$), the tiled one slope 1: doubling the context
quadruples naive attention's memory and only doubles flash attention's. (The largest tensor of tiled
attention at long $T$ is the output itself, $T \times d$.)

## 4. On a GPU: the Triton kernel

In plain PyTorch the loops above are slow: each tile is a separate small kernel launch. The real gain comes
when the whole loop runs inside **one** GPU kernel whose tiles live in on-chip SRAM (about 200 KB per
streaming multiprocessor, against tens of GB of slower HBM). `gptref.flash.flash_attention_triton` is such a
kernel, written in Triton; `F.scaled_dot_product_attention` dispatches to a CUDA flash kernel as well. The
cell below compares them when a CUDA GPU is present and does nothing otherwise.
""")

nb.code(r"""
if torch.cuda.is_available():
    try:
        from gptref.flash import flash_attention_triton
    except ImportError as e:
        flash_attention_triton = None
        print("Triton kernel unavailable:", e)
    B, H, D = 4, 8, 64
    for T in (512, 1024, 2048, 4096):
        q, k, v = torch.randn(3, B, H, T, D, device="cuda", dtype=torch.float16).unbind(0)
        runs = {"torch sdpa": lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)}
        if flash_attention_triton is not None:
            runs["gptref triton"] = lambda: flash_attention_triton(q, k, v, causal=True)
        for name, fn in runs.items():
            fn(); torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(10):
                fn()
            torch.cuda.synchronize()
            print(f"T={T:5d} {name:14s} {(time.perf_counter() - t0) / 10 * 1e3:7.2f} ms")
else:
    print("No CUDA GPU here: skipping the Triton benchmark (run this cell on a GPU machine).")
""")

nb.written("q_why_faster", 2, r"""
**Written question.** The FlashAttention backward pass *recomputes* the attention probabilities tile by tile
instead of storing them, so it performs more floating-point operations than the standard implementation.
Yet on a GPU it is several times faster. Explain why, in terms of where the data lives and what limits the
speed of attention. Would you expect the same speed-up from the plain PyTorch `tiled_attention` above on a
GPU? Why or why not?
""", answer=r"""
Standard attention is memory-bound: it writes the T x T score and probability matrices to HBM and reads them
back (softmax, then the product with V, then again in the backward), and HBM bandwidth, not arithmetic,
limits its speed; the GPU's tensor cores sit idle waiting for bytes. FlashAttention keeps each tile in fast
on-chip SRAM/registers, fuses scores, softmax and the product with V into one kernel, and only reads Q, K, V
and writes O (plus the per-row log-sum-exp), so HBM traffic drops from O(T^2) to O(T d) per head. The extra
FLOPs of recomputation are cheap because compute is abundant relative to bandwidth. The plain PyTorch
tiled version does not get this: each tile operation is a separate kernel that reads its inputs from and
writes its result to HBM, with launch overhead per tile, so it saves memory but is slower than one fused
kernel (and usually slower than naive attention at moderate T).
""")

nb.md(r"""
## Summary

* A softmax streams: keep the running max $m$ and the sum $\ell$ relative to it, and **rescale** $\ell$ by
  $e^{m - m'}$ whenever the max grows.
* Attention's numerator $\sum_j e^{s_{ij} - m} v_j$ streams the same way, so attention can be computed tile by
  tile with memory $O(Td)$ instead of $O(T^2)$, equal to the naive result up to float rounding.
* Causal masking in tiles uses absolute positions; tiles entirely above the diagonal can be skipped.
* The speed of flash attention on GPUs comes from fusing everything into one kernel that keeps tiles on chip:
  attention is limited by memory traffic, not arithmetic. The references are `gptref.flash.flash_attention`
  (plain torch, with a tiled backward) and `gptref.flash.flash_attention_triton` (the GPU kernel).
""")

nb.save()
