"""Builds solutions/08_flash_attention/08_flash_attention.ipynb: online softmax and tiled (flash) attention."""

from tools.nbbuild import Notebook

nb = Notebook("08_flash_attention")

nb.md(r"""
# Day 8 — Flash attention

Attention as written on Day 2, $\mathrm{softmax}(QK^\top/\sqrt{d})\,V$, builds a $T \times T$ matrix of
scores for every head of every sequence; the cell below prints how large it is at $T = 8192$. Those scores
are written to memory and read back twice. On a GPU the arithmetic is cheap and moving those bytes is
what costs. **Flash attention** (Dao et al., 2022) computes exactly the same output without ever holding
the score matrix: it walks over tiles of queries and keys and keeps, per query, three small running
quantities. The trick that makes it possible is the **online softmax** (Milakov & Gimelshein, 2018).

**Learning goals.** After this notebook you can

1. compute a softmax in one streaming pass over blocks, with a running max and a rescaled running sum;
2. write tiled attention that is equal to ordinary attention to float tolerance, for any sequence length
   and with a causal mask;
3. say how much memory naive and tiled attention need as $T$ grows, and measure it;
4. derive and write the backward pass tile by tile, recomputing the probabilities instead of storing them;
5. explain why flash attention is faster on a GPU although it does at least as many FLOPs.
""")

nb.code(r"""
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_num_threads(1)   # tiny tensors: one thread is fastest, and steady on a shared machine
print(f"T = 8192: {8192 ** 2 / 1e6:.1f} million scores per head, {8192 ** 2 * 4 / 2 ** 20:.0f} MiB in float32")
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
from gptref.grading.compare import difference
from gptref.grading.explain import call, which_mistake
from gptref.grading.ladders import agreeing, first_broken
from gptref.grading.ladders.d08_flash_attention import LADDERS
from gptref.grading.mistakes.d08_flash_attention import MISTAKES


def _stats_ladder(x, block, got, known):
    """Your (m, l) for the rows of x cut into blocks of `block` scores: the ladder every correct (m, l) climbs
    (gptref.grading.ladders.d08_flash_attention: form; m is the row max; 1 <= l <= number of scores), then
    l = sum exp(x - m) over the whole row; fails on the first broken, naming a known mistake of `known` (those that
    give every one of your answers) when it is one."""
    blocks = list(x.split(block, dim=-1))
    true_max = x.amax(dim=-1)                                           # (...) one max per row
    expected = (true_max, torch.exp(x - true_max[..., None]).sum(dim=-1))
    message = first_broken(LADDERS["online_softmax_stats"], got, {"blocks": blocks}) or difference(
        got[1], expected[1], "l (the sum of exp(x - m) over the whole row)",
        rtol=1e-5 if x.dtype == torch.float32 else 1e-9, atol=1e-6 if x.dtype == torch.float32 else 1e-9)
    if message:
        raise AssertionError(f"{message}\n  (scores of shape {tuple(x.shape)}, {x.dtype}, blocks of {block})"
                             + which_mistake(got, known, {"blocks": blocks}, expected))

torch.manual_seed(7)
_negative = -5 - torch.rand(3, 12, dtype=torch.float64)                 # every score negative
_negative[1] = -2.5                                                     # an all-equal row
_negative[2] = _negative[2].sort(descending=True).values                # the max sits in the first block
_masked = torch.randn(2, 20, dtype=torch.float64)
_masked[0, 8:] = float("-inf")                                          # whole blocks of masked scores
_masked[1, 2:5] = float("-inf")
_inputs = [(torch.tensor([[1.0, 2.0, 5.0, 3.0, 9.0, 0.0]], dtype=torch.float64), 2),   # the max grows twice
           (torch.tensor([[800.0, 790.0, 810.0, 805.0]], dtype=torch.float64), 2),     # exp(800) overflows
           (_negative, 4), (_masked, 4),
           (torch.randn(2, 3, 50) * 3, 16),                             # float32; blocks 16 + 16 + 16 + 2
           (torch.randn(4, 9, dtype=torch.float64), 1),                 # one score at a time
           (torch.randn(4, 9, dtype=torch.float64), 32)]                # one block holds the whole row
_cases = [{"blocks": list(_x.split(_block, dim=-1))} for _x, _block in _inputs]
_answers = [call(online_softmax_stats, **_case) for _case in _cases]
_known = agreeing(MISTAKES["online_softmax_stats"], _cases, _answers)  # named only if it gives every answer
for (_x, _block), _got in zip(_inputs, _answers):
    _stats_ladder(_x, _block, _got, _known)
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
`block_q × block_k` scores, whatever $T$ is. This is the forward pass of FlashAttention. (Its backward
pass recomputes each tile from $Q$, $K$ and the saved $m + \log \ell$ instead of storing $P$: section 4.)

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
from gptref.grading.compare import difference
from gptref.grading.explain import call, which_mistake
from gptref.grading.ladders import agreeing, first_broken
from gptref.grading.ladders.d08_flash_attention import LADDERS
from gptref.grading.mistakes.d08_flash_attention import MISTAKES


def _args(q, k, v, block_q, block_k, causal=False):
    return {"q": q, "k": k, "v": v, "block_q": block_q, "block_k": block_k, "causal": causal}


def _attention_ladder(kwargs, out, known):
    """Your tiled_attention output `out` on one input: the ladder every correct output climbs
    (gptref.grading.ladders.d08_flash_attention: form; finite; a weighted average of the values the query may see;
    causal query 0 = v[0]), then equal to torch's; a wrong value is run again with one tile to tell the tiles' loop
    from the arithmetic. A known mistake is named only from `known`, those that give every one of your outputs."""
    q, k, v, block_q, block_k, causal = (kwargs[name] for name in ("q", "k", "v", "block_q", "block_k", "causal"))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    where = f"q {tuple(q.shape)} {q.dtype}, k {tuple(k.shape)}, blocks {block_q}x{block_k}, causal={causal}"
    _rtol = 1e-4 if q.dtype == torch.float32 else 1e-8
    message = first_broken(LADDERS["tiled_attention"], out, kwargs)
    if message is None:
        message = difference(out, expected, "the output", rtol=_rtol, atol=_rtol)
        if message:
            one_tile = call(tiled_attention, q, k, v, block_q=q.shape[-2], block_k=k.shape[-2], causal=causal)
            if difference(one_tile, expected, rtol=_rtol, atol=_rtol) is None:
                message += ("; with one tile covering the whole sequence your output is right, so the error is in "
                            "how the tiles are visited and combined: check that the loops reach the last, shorter "
                            "tile when T is not a multiple of the block, and what carries over from one tile to the "
                            "next (the running max, the factor exp(m_old - m_new) on l and acc, positions counted "
                            "from the start of the sequence, which key tiles a causal query tile may skip)")
    if message:
        raise AssertionError(f"{message}\n  ({where})"
                             + which_mistake(out, known, kwargs, expected,
                                             lambda a, b: difference(a, b, rtol=_rtol, atol=_rtol)))

torch.manual_seed(8)
_q, _k, _v = torch.randn(3, 2, 40, 8, dtype=torch.float64).unbind(0)
_cases = [_args(_q * 2, _k * 2, _v, 16, 16),                              # T = 40 is not a multiple of 16
          _args(_q, _k, _v, 8, 16, causal=True),
          _args(_q, _k, _v, 16, 8, causal=True),                         # key tiles smaller than query tiles
          _args(_q[0, :25], _k[0, :10], _v[0, :10], 8, 4),                # no leading dims, T_q != T_k
          _args(_q[:, :1], _k[:, :1], _v[:, :1], 4, 4, causal=True),      # T = 1, blocks larger than T
          _args(_q * 6, _k * 6, _v, 8, 8),                                # large scores: the max jumps between tiles
          _args(_q, _k[:, :1].expand(2, 40, 8), _v, 8, 8, causal=True)]   # all keys equal: uniform weights
_q, _k, _v = torch.randn(3, 1, 2, 256, 16).unbind(0)
_cases.append(_args(_q, _k, _v, 32, 32))                                  # float32
_outputs = [call(tiled_attention, **_case) for _case in _cases]
_known = agreeing(MISTAKES["tiled_attention"], _cases, _outputs)  # named only if it gives every output
for _case, _out in zip(_cases, _outputs):
    _attention_ladder(_case, _out, _known)
_out, _n = largest_tensor(tiled_attention, _q, _k, _v, block_q=32, block_k=32)
assert _n < 2 * 256 * 256 // 4, \
    f"your code built a tensor of {_n} elements; the (T_q, T_k) score matrix has {2 * 256 * 256}: work tile by tile"
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("08_flash_attention", "tiled_attention", tiled_attention)
### END HIDDEN TESTS
''')

nb.md(r"""
## 3. Memory as $T$ grows

Per head, naive attention holds the scores $S$ and the probabilities $P$, both $T \times T$, at the same time
(and autograd keeps $P$ for the backward pass). Tiled attention holds, besides its inputs, the output $O$
($Td$ numbers) and a few tiles of $b_q b_k$ numbers and per-query vectors. The cell below **measures** one
quantity for each implementation: the peak of the memory its tensors occupy while it runs, inputs not counted
(`gptref.flash.memory.track_allocations` follows every tensor torch allocates and frees). The dashed lines are
the model of that same quantity: $2T^2$ floats for naive, $Td + 4 b_q b_k$ for tiled.
""")

nb.code(r"""
from gptref.flash.memory import track_allocations


def peak_bytes(fn, *args, **kwargs):
    # the peak of the bytes held by tensors created while fn runs (its inputs not counted)
    with track_allocations() as memory:
        fn(*args, **kwargs)
    return memory.peak


D, bq, bk = 32, 64, 64
Ts = [128, 256, 512, 1024]
peak_naive, peak_tiled = [], []
for T in Ts:
    q, k, v = torch.randn(3, 1, T, D).unbind(0)
    peak_naive.append(peak_bytes(naive_attention, q, k, v))
    peak_tiled.append(peak_bytes(tiled_attention, q, k, v, block_q=bq, block_k=bk))
    print(f"T = {T:5d}: naive peak {peak_naive[-1] / 2**20:8.3f} MiB, tiled peak {peak_tiled[-1] / 2**20:8.3f} MiB")
for name, peaks in (("naive", peak_naive), ("tiled", peak_tiled)):
    slope = math.log(peaks[-1] / peaks[-2]) / math.log(Ts[-1] / Ts[-2])
    print(f"{name}: from T = {Ts[-2]} to {Ts[-1]} the peak grows as T^{slope:.2f}")
plt.figure(figsize=(6, 4))
plt.loglog(Ts, peak_naive, "o", color="tab:red", label="naive: measured peak")
plt.loglog(Ts, peak_tiled, "s", color="tab:blue", label="tiled: measured peak")
plt.loglog(Ts, [2 * T * T * 4 for T in Ts], "--", color="tab:red", label="model: S and P, 2 T^2 floats")
plt.loglog(Ts, [(T * D + 4 * bq * bk) * 4 for T in Ts], "--", color="tab:blue",
           label="model: O and 4 tiles, T d + 4 bq bk")
plt.xlabel("sequence length T"); plt.ylabel("peak bytes of new tensors, per head (float32)")
plt.title(f"attention forward memory, d = {D}, tiles {bq} x {bk}")
plt.legend(fontsize=8)
plt.tight_layout()
plt.savefig("attention_memory.png", dpi=90)
plt.show()
""")

nb.md(r"""
The cell above prints the growth exponent of each measured peak between its two longest sequences: about 2 for
naive attention (doubling the context quadruples its memory) and below 1 for tiled attention, whose peak is
the output ($T \times d$, growing like $T$) plus tiles whose size does not depend on $T$.
""")

nb.md(r"""
## 4. The backward pass, tile by tile

Training needs the gradients of a loss $L$ with respect to $Q$, $K$ and $V$, given $dO = \partial L / \partial O$.
Write one query's row: $s_{ij} = q_i \cdot k_j / \sqrt d$, $P_{ij} = e^{s_{ij}} / \sum_k e^{s_{ik}}$,
$o_i = \sum_j P_{ij} v_j$. The chain rule gives, with $dP_{ij} = dO_i \cdot v_j$,

$$dV_j = \sum_i P_{ij}\, dO_i, \qquad dS_{ij} = P_{ij}\,\big(dP_{ij} - D_i\big), \qquad D_i = \sum_j P_{ij}\, dP_{ij},$$
$$dQ_i = \frac{1}{\sqrt d} \sum_j dS_{ij}\, k_j, \qquad dK_j = \frac{1}{\sqrt d} \sum_i dS_{ij}\, q_i .$$

The middle line is the softmax's Jacobian, $\partial P_{ij} / \partial s_{ik} = P_{ij}(\delta_{jk} - P_{ik})$, summed
against $dP_{ij}$. Written this way $D_i$ seems to need the whole row of $P$ and $dP$, which a tile does not
have. It does not:

$$D_i = \sum_j P_{ij}\,(dO_i \cdot v_j) = dO_i \cdot \sum_j P_{ij} v_j = dO_i \cdot o_i ,$$

so $D = \mathrm{rowsum}(dO \circ O)$ is computed once, before the loop, from two $T \times d$ tensors.

**Recompute, do not store.** Naive attention's autograd keeps $P$ ($T^2$ numbers per head) from the forward
for the backward. Flash attention keeps only the log-sum-exp of each row, $\mathrm{lse}_i = m_i + \log \ell_i$
($T$ numbers, the forward's last $m$ and $\ell$), and rebuilds each tile exactly:
$P_{ij} = e^{s_{ij} - \mathrm{lse}_i}$. That costs one more $Q_i K_j^\top$ product per tile, while storing $P$
costs memory quadratic in $T$ and, on a GPU, moving those $T^2$ numbers through slow memory twice: recomputing
is cheaper in memory and usually in time as well.

The loop (FlashAttention-2): for each key block $j$ (keeping $dK_j$ and $dV_j$), for each query block $i$:
recompute $S$ (with the causal mask) and $P = e^{S - \mathrm{lse}_i}$; $dV_j \mathrel{+}= P^\top dO_i$;
$dP = dO_i V_j^\top$; $dS = P \circ (dP - D_i)$; $dQ_i \mathrel{+}= dS\,K_j / \sqrt d$;
$dK_j \mathrel{+}= dS^\top Q_i / \sqrt d$.

Checks that any correct answer passes, used by the test below: since each row of $P$ sums to 1,
$\sum_j dV_j = \sum_i dO_i$; since each row of $dS$ sums to $D_i - D_i = 0$, $\sum_j dK_j = 0$; and since
scaling every query by a factor changes each score exactly as scaling every key by it,
$\sum_i dQ_i \cdot q_i = \sum_j dK_j \cdot k_j$.

**Exercise.** Write `tiled_attention_backward(q, k, v, out, lse, dout, block_q=64, block_k=64, causal=False)`
returning `(dq, dk, dv)` shaped like `(q, k, v)`, for inputs `(..., T, D)`; `out` and `lse` are what the forward
saved (the cell below computes them the naive way, for the tests). Causal masking is as in the forward
($T_q = T_k$). Do not use autograd, a softmax, or build a `(T_q, T_k)` matrix.
""")

nb.code(r"""
def attention_with_lse(q, k, v, causal=False):
    # (softmax(q k^T / sqrt(D)) v, log-sum-exp of each query's scores): what the forward saves, computed naively
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])                 # (..., T_q, T_k)
    if causal:
        s = s.masked_fill(torch.ones(s.shape[-2:], dtype=torch.bool).triu(1), float("-inf"))
    lse = s.logsumexp(dim=-1)                                            # (..., T_q)
    return torch.exp(s - lse[..., None]) @ v, lse
""")

nb.solution("tiled_attention_backward", r'''
def tiled_attention_backward(q, k, v, out, lse, dout, block_q=64, block_k=64, causal=False):
    """(dq, dk, dv) of softmax(q k^T / sqrt(D)) v, recomputing each tile of P from q, k and the saved lse."""
    ### BEGIN SOLUTION
    scale = 1.0 / math.sqrt(q.shape[-1])
    T_q, T_k = q.shape[-2], k.shape[-2]
    dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
    delta = (dout * out).sum(dim=-1)                                      # (..., T_q) D = rowsum(dO * O)
    for j0 in range(0, T_k, block_k):
        kj, vj = k[..., j0:j0 + block_k, :], v[..., j0:j0 + block_k, :]    # (..., bk, D)
        for i0 in range(0, T_q, block_q):
            qi, doi = q[..., i0:i0 + block_q, :], dout[..., i0:i0 + block_q, :]   # (..., bq, D)
            s = qi @ kj.transpose(-2, -1) * scale                          # (..., bq, bk) recomputed scores
            if causal:
                rows = torch.arange(i0, i0 + s.shape[-2])[:, None]
                cols = torch.arange(j0, j0 + s.shape[-1])[None, :]
                s = s.masked_fill(cols > rows, float("-inf"))
            p = torch.exp(s - lse[..., i0:i0 + block_q, None])             # (..., bq, bk) the softmax weights
            dv[..., j0:j0 + block_k, :] += p.transpose(-2, -1) @ doi       # dV_j += P^T dO_i
            dp = doi @ vj.transpose(-2, -1)                                # (..., bq, bk) dL/dP
            ds = p * (dp - delta[..., i0:i0 + block_q, None])             # (..., bq, bk) dL/dS
            dq[..., i0:i0 + block_q, :] += ds @ kj * scale                 # dQ_i += dS K_j / sqrt(D)
            dk[..., j0:j0 + block_k, :] += ds.transpose(-2, -1) @ qi * scale   # dK_j += dS^T Q_i / sqrt(D)
    return dq, dk, dv
    ### END SOLUTION
''')

nb.tests("test_tiled_attention_backward", 3, r'''
from gptref.grading.compare import difference
from gptref.grading.explain import call, which_mistake
from gptref.grading.ladders import agreeing, first_broken
from gptref.grading.ladders.d08_flash_attention import LADDERS
from gptref.grading.mistakes.d08_flash_attention import MISTAKES


def _args(q, k, v, block_q, block_k, causal=False):
    """The arguments of tiled_attention_backward for one input, with a random upstream gradient dout."""
    dout = torch.randn_like(q)
    out, lse = attention_with_lse(q, k, v, causal)
    return {"q": q, "k": k, "v": v, "out": out, "lse": lse, "dout": dout, "block_q": block_q, "block_k": block_k,
            "causal": causal}


def _backward_ladder(kwargs, got, known):
    """Your (dq, dk, dv) on one input: the ladder every correct (dq, dk, dv) climbs
    (gptref.grading.ladders.d08_flash_attention: form; finite; sum of dV = sum of dO; sum of dK = 0; causal
    dQ[0] = 0; sum(dQ * Q) = sum(dK * K)), then equal to autograd of naive attention. A known mistake is named only
    from `known`, those that give every one of your answers."""
    q, k, v, dout, block_q, block_k, causal = (kwargs[name] for name in
                                               ("q", "k", "v", "dout", "block_q", "block_k", "causal"))
    leaves = [t.detach().clone().requires_grad_(True) for t in (q, k, v)]
    naive_attention(*leaves, causal=causal).backward(dout)
    expected = tuple(t.grad for t in leaves)
    tol = 1e-4 if q.dtype == torch.float32 else 1e-8
    where = f"q {tuple(q.shape)} {q.dtype}, k {tuple(k.shape)}, blocks {block_q}x{block_k}, causal={causal}"
    message = first_broken(LADDERS["tiled_attention_backward"], got, kwargs)
    for name, grad, want in zip(("dq", "dk", "dv"), got if message is None else (), expected):
        message = message or difference(grad, want, f"{name} (against autograd of naive attention)", rtol=tol,
                                        atol=tol)
    if message:
        raise AssertionError(f"{message}\n  ({where})"
                             + which_mistake(got, known, kwargs, expected,
                                             lambda a, b: difference(a, b, rtol=tol, atol=tol)))

torch.manual_seed(80)
_q, _k = torch.randn(2, 2, 40, 8, dtype=torch.float64).unbind(0)
_q, _k, _v = _q * 2, _k * 2, torch.randn(2, 40, 8, dtype=torch.float64)
_cases = [_args(_q, _k, _v, 16, 16),                                      # T = 40 is not a multiple of 16
          _args(_q, _k, _v, 8, 16, causal=True),
          _args(_q, _k, _v, 64, 64, causal=True),                         # one tile, larger than T
          _args(_q[0, :25], _k[0, :10], _v[0, :10], 8, 4),                # no leading dims, T_q != T_k
          _args(_q[:, :1], _k[:, :1], _v[:, :1], 4, 4, causal=True),      # T = 1
          _args(_q.float(), _k.float(), _v.float(), 16, 8, causal=True)]  # float32
_grads = [call(tiled_attention_backward, **_case) for _case in _cases]
_known = agreeing(MISTAKES["tiled_attention_backward"], _cases, _grads)  # named only if it gives every answer
for _case, _got in zip(_cases, _grads):
    _backward_ladder(_case, _got, _known)

class _YourBackward(torch.autograd.Function):
    """Naive forward, your backward: torch.autograd.gradcheck compares it with finite differences."""

    @staticmethod
    def forward(ctx, q, k, v):
        out, lse = attention_with_lse(q, k, v, causal=True)
        ctx.save_for_backward(q, k, v, out, lse)
        return out

    @staticmethod
    def backward(ctx, dout):
        return tiled_attention_backward(*ctx.saved_tensors, dout, block_q=2, block_k=3, causal=True)


_tiny = [torch.randn(1, 5, 4, dtype=torch.float64, requires_grad=True) for _ in range(3)]
assert torch.autograd.gradcheck(_YourBackward.apply, _tiny, raise_exception=False), \
    "float64 finite differences (torch.autograd.gradcheck, T = 5, tiles 2x3, causal) disagree with your gradients"
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("08_flash_attention", "tiled_attention_backward", tiled_attention_backward)
### END HIDDEN TESTS
''')

nb.md(r"""
The backward's memory: naive attention's autograd keeps $P$ from the forward and builds $dP$ and $dS$, all
$T \times T$; the tiled backward needs, besides $Q, K, V, O, dO$ and the $T$ numbers of lse, only its three
gradients and a few tiles. The cell below measures the peak of the new tensors of each, as in section 3: for
naive attention, forward and backward together (its backward needs the $P$ its forward kept); for your tiled
backward, the backward alone (its $O$ and lse come from a tiled forward, whose peak section 3 measured).
""")

nb.code(r"""
def naive_forward_backward(q, k, v, dout):
    # autograd of naive attention: the forward keeps P for the backward
    q, k, v = (t.detach().requires_grad_(True) for t in (q, k, v))
    naive_attention(q, k, v).backward(dout)
    return q.grad, k.grad, v.grad


peak_naive_backward, peak_tiled_backward = [], []
for T in Ts:
    q, k, v, dout = torch.randn(4, 1, T, D).unbind(0)
    out, lse = attention_with_lse(q, k, v)
    peak_naive_backward.append(peak_bytes(naive_forward_backward, q, k, v, dout))
    peak_tiled_backward.append(peak_bytes(tiled_attention_backward, q, k, v, out, lse, dout, block_q=bq, block_k=bk))
    print(f"T = {T:5d}: naive forward + backward peak {peak_naive_backward[-1] / 2**20:8.3f} MiB, "
          f"tiled backward peak {peak_tiled_backward[-1] / 2**20:8.3f} MiB")
plt.figure(figsize=(6, 4))
plt.loglog(Ts, peak_naive_backward, "o-", color="tab:red", label="naive: autograd, forward + backward (keeps P)")
plt.loglog(Ts, peak_tiled_backward, "s-", color="tab:blue", label="tiled backward (recomputes P per tile)")
plt.xlabel("sequence length T"); plt.ylabel("peak bytes of new tensors, per head (float32)")
plt.title(f"attention backward memory, d = {D}, tiles {bq} x {bk}")
plt.legend(fontsize=8)
plt.tight_layout()
plt.savefig("attention_backward_memory.png", dpi=90)
plt.show()
""")

nb.md(r"""
## 5. On a GPU: the Triton kernel

In plain PyTorch the loops above are slow: each tile is a separate small kernel launch. The real gain comes
when the whole loop runs inside **one** GPU kernel whose tiles live in on-chip SRAM (a few hundred KB per
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
* The backward recomputes each tile of $P$ from $Q$, $K$ and the saved log-sum-exp instead of storing it, and
  needs only $D = \mathrm{rowsum}(dO \circ O)$ to turn $dP$ into $dS = P \circ (dP - D)$: its memory stays
  linear in $T$ as well (section 4 measures it).
* The speed of flash attention on GPUs comes from fusing everything into one kernel that keeps tiles on chip:
  attention is limited by memory traffic, not arithmetic. The references are `gptref.flash.flash_attention`
  (plain torch, with a tiled backward) and `gptref.flash.flash_attention_triton` (the GPU kernel).
""")

nb.save()
