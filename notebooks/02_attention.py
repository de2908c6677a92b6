"""Builds solutions/02_attention/02_attention.ipynb: attention, its masks, its three uses, heads, the layer."""

from tools.nbbuild import Notebook

nb = Notebook("02_attention")

nb.md(r"""
# Day 2 — Attention and its three variants

Attention is how one token gathers information from others. Every layer of a transformer does
it, and the three architectures you will meet (encoder, decoder, encoder-decoder) differ mostly
in **which** tokens may look at which. That "which" is a boolean mask.

**Learning goals.** After this notebook you can

1. write scaled dot-product attention and explain each factor of $\operatorname{softmax}(QK^\top/\sqrt{d})\,V$;
2. build the causal mask and the padding mask, and combine them;
3. say what a query whose keys are all masked must produce, and make your code produce it;
4. use one attention function for encoder self-attention, decoder (causal) self-attention and
   encoder-decoder cross-attention;
5. split a model dimension into heads and merge it back;
6. build the multi-head attention layer (projections, heads, masks, output projection) for
   self- and cross-attention, with grouped key/value heads, and match `torch.nn.MultiheadAttention`.

Convention used all course long (and by `torch.nn.functional.scaled_dot_product_attention`):
a boolean mask is **True where a query may attend to a key**.
""")

nb.code(r"""
import math

import matplotlib.pyplot as plt
import torch

import gptref.attention as ref  # the course's reference implementation (used where an exercise is not about it)

torch.manual_seed(0)
""")

nb.md(r"""
## 1. The idea

Each of $T_q$ queries $q_i \in \mathbb{R}^d$ scores each of $T_k$ keys $k_j \in \mathbb{R}^d$ by a dot
product, the scores become weights by a softmax over the keys, and the output is the weighted
average of the values $v_j$:

$$s_{ij} = \frac{q_i \cdot k_j}{\sqrt{d}}, \qquad
a_{ij} = \frac{e^{s_{ij}}}{\sum_{j'} e^{s_{ij'}}}, \qquad
o_i = \sum_j a_{ij}\, v_j .$$

In matrix form, with $Q \in \mathbb{R}^{T_q\times d}$, $K \in \mathbb{R}^{T_k\times d}$,
$V \in \mathbb{R}^{T_k\times d_v}$:
$O = \operatorname{softmax}(QK^\top/\sqrt d)\,V$, the softmax taken **along each row** (over the keys).

**Why $\sqrt d$?** If the entries of $q$ and $k$ are independent with mean 0 and variance 1, then
$q\cdot k$ is a sum of $d$ such products and has variance $d$. Dividing by $\sqrt d$ brings the
scores back to variance 1, so the softmax does not saturate into a one-hot vector (whose
gradient is almost zero) as $d$ grows.

**Masks.** A mask $M_{ij} \in \{\text{True}, \text{False}\}$ removes key $j$ from query $i$'s
softmax: set $s_{ij} = -\infty$ where $M_{ij}$ is False, so $e^{s_{ij}} = 0$. Two masks matter:

* the **causal mask**: in a decoder, position $i$ may not see the future, so $M_{ij} = [\,j \le i\,]$,
  a lower-triangular matrix;
* the **padding mask**: sequences in a batch have different lengths and are padded to the longest;
  no query may attend to a padding key, so $M_{b,j} = [\,\text{token } j \text{ of sequence } b \text{ is real}\,]$.

Masks broadcast: a causal mask of shape $(T_q, T_k)$ and a padding mask of shape
$(B, 1, 1, T_k)$ both apply to scores of shape $(B, H, T_q, T_k)$, and `&` combines them.
""")

nb.md(r"""
## 2. A worked example

Three tokens, $d = 2$. The second query points the same way as the third key, so it should
put most of its weight there: row 1 of the weights the cell prints shows how much.
""")

nb.code(r"""
q = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
k = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
v = torch.tensor([[10.0, 0.0], [0.0, 10.0], [5.0, 5.0]])

scores = q @ k.T / math.sqrt(2)          # (3, 3): row i = query i, column j = key j
weights = torch.softmax(scores, dim=-1)  # each row sums to 1
print("scores\n", scores)
print("weights\n", weights.round(decimals=3))
print("output\n", (weights @ v).round(decimals=2))

out, w = ref.scaled_dot_product_attention(q[None], k[None], v[None], ref.causal_mask(3))
print("with a causal mask, query 0 sees only key 0:\n", w[0].round(decimals=3))
""")

nb.md(r"""
## 3. Exercises: the masks

**Exercise 1 — causal mask.** Write `causal_mask(t_q, t_k=None)` returning a `(t_q, t_k)` bool tensor
(`t_k` defaults to `t_q`). When `t_k > t_q`, the queries are the **last** `t_q` of the `t_k`
positions (this happens when generating with a cache of earlier keys): query $i$ sits at
position $t_k - t_q + i$ and may see keys $0, \dots, t_k - t_q + i$.
""")

nb.solution("causal_mask", r"""
def causal_mask(t_q, t_k=None):
    ### BEGIN SOLUTION
    t_k = t_q if t_k is None else t_k
    rows = torch.arange(t_q)[:, None] + (t_k - t_q)  # (t_q, 1): each query's position
    cols = torch.arange(t_k)[None, :]                # (1, t_k): each key's position
    return cols <= rows                              # (t_q, t_k)
    ### END SOLUTION
""")

nb.tests("test_causal_mask", 1, r"""
from gptref.grading.compare import difference, form_difference
from gptref.grading.explain import call, which_mistake
from gptref.grading.ladders import mistakes_agreeing
from gptref.grading.mistakes.d02_attention import MISTAKES


def _check_causal_mask(*args):
    '''causal_mask(*args) in order: a bool (t_q, t_k) tensor; each query sees its own position, no later key and
    every earlier key. A failure also names the known mistake it matches.'''
    t_q, t_k = args[0], args[-1]
    m = call(causal_mask, *args)
    position = torch.arange(t_q)[:, None] + (t_k - t_q)   # (t_q, 1): query i sits at position t_k - t_q + i
    expected = torch.arange(t_k)[None, :] <= position     # (t_q, t_k)

    def fail(problem):
        kwargs = dict(zip(("t_q", "t_k"), args))
        known = mistakes_agreeing(causal_mask, MISTAKES["causal_mask"],
                                  [dict(zip(("t_q", "t_k"), a)) for a in _CAUSAL_CASES])
        raise AssertionError(f"causal_mask{args}: {problem}" + which_mistake(m, known, kwargs, expected))

    if form_difference(m, expected, "the mask"):
        fail(form_difference(m, expected, "the mask"))
    for i in range(t_q):
        p = t_k - t_q + i
        if not m[i, p]:
            fail(f"query {i} sits at position {p} (the queries are the last t_q of the t_k positions) and must see "
                 f"its own key there, but that entry is False")
        if m[i, p + 1:].any():
            fail(f"query {i} (position {p}) may see the later key {p + 1 + int(m[i, p + 1:].nonzero()[0])}: "
                 f"no query sees the future")
        if not m[i, :p].all():
            fail(f"query {i} (position {p}) must see every earlier key, but key "
                 f"{int((~m[i, :p]).nonzero()[0])} is False")


_CAUSAL_CASES = [(3,), (1,),  # T = 1
                 (2, 4),       # t_k > t_q: the queries are positions 2 and 3
                 (1, 5)]       # one new query against a cache of 4 earlier keys
for _args in _CAUSAL_CASES:   # a known mistake is named only when it gives your answers on all of them
    _check_causal_mask(*_args)
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("02_attention", "causal_mask", causal_mask)
### END HIDDEN TESTS
""")

nb.md(r"""
**Exercise 2 — padding mask.** Write `padding_mask(key_is_token)`: from a `(B, T_k)` bool tensor,
True where the token is real, return the `(B, 1, 1, T_k)` mask that broadcasts over heads and
queries of `(B, H, T_q, T_k)` scores.
""")

nb.solution("padding_mask", r"""
def padding_mask(key_is_token):
    ### BEGIN SOLUTION
    B, T_k = key_is_token.shape
    return key_is_token.bool().reshape(B, 1, 1, T_k)  # (B, T_k) -> (B, 1, 1, T_k)
    ### END SOLUTION
""")

nb.tests("test_padding_mask", 1, r"""
from gptref.grading.compare import difference, form_difference
from gptref.grading.explain import call, which_mistake
from gptref.grading.ladders import mistakes_agreeing
from gptref.grading.mistakes.d02_attention import MISTAKES


def _check_padding_mask(is_token):
    '''padding_mask in order: a bool (B, 1, 1, T_k) tensor, then True exactly at the real tokens.'''
    m = call(padding_mask, is_token)
    B, T_k = is_token.shape
    expected = is_token.reshape(B, 1, 1, T_k)

    def fail(problem):
        known = mistakes_agreeing(padding_mask, MISTAKES["padding_mask"], [{"key_is_token": t} for t in _PADDING_CASES])
        raise AssertionError(problem + which_mistake(m, known, {"key_is_token": is_token}, expected))

    if form_difference(m, expected, "padding_mask(key_is_token)"):
        fail(form_difference(m, expected, "padding_mask(key_is_token)"))
    wrong = m[:, 0, 0] != is_token
    if wrong.any():
        b, j = wrong.nonzero()[0].tolist()
        fail(f"key {j} of sequence {b} is {'a real token' if is_token[b, j] else 'padding'}, so mask[{b}, 0, 0, {j}] "
             f"should be {bool(is_token[b, j])} (True where a query MAY attend)")


_PADDING_CASES = [torch.tensor([[True, True, False], [True, False, False]]),
                  torch.tensor([[True], [False]])]     # T_k = 1, and a sequence that is all padding
for _is_token in _PADDING_CASES:   # a known mistake is named only when it gives your answers on both
    _check_padding_mask(_is_token)
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("02_attention", "padding_mask", padding_mask)
### END HIDDEN TESTS
""")

nb.md(r"""
## 4. Exercises: masked softmax and attention

**What should a fully masked row give?** With padding on the *query* side, or a mask built
from data, some query may be allowed to see **no** key at all. Then every score in its row is
$-\infty$ and the softmax is $0/0$: `torch.softmax` returns NaN, and one NaN spreads through
every later layer and into the loss. The convention here (and in gptref) is that such a row
gets **all-zero weights**, hence a zero output.

**Exercise 3 — masked softmax.** Write `masked_softmax(scores, mask)`: the softmax of `scores`
over the last dimension, keeping only positions where the (broadcasting) bool `mask` is True;
a row whose mask is all False must give zeros, not NaN. You may use `torch.softmax`.
""")

nb.solution("masked_softmax", r"""
def masked_softmax(scores, mask):
    ### BEGIN SOLUTION
    mask = mask.expand_as(scores)
    any_key = mask.any(dim=-1, keepdim=True)              # (..., T_q, 1)
    scores = scores.masked_fill(~mask, float("-inf"))
    scores = scores.masked_fill(~any_key, 0.0)            # finite, so no 0/0
    return torch.softmax(scores, dim=-1).masked_fill(~any_key, 0.0)
    ### END SOLUTION
""")

nb.tests("test_masked_softmax", 1, r"""
from gptref.grading.compare import difference, form_difference
from gptref.grading.explain import call, which_mistake
from gptref.grading.mistakes.d02_attention import MISTAKES
from gptref.grading.ladders import mistakes_agreeing
from gptref.grading.ladders.d02_attention import weights_problem


def _check_masked_softmax(scores, mask):
    '''masked_softmax in order: the scores' form, the weights' properties above, then the values.'''
    given = (scores.clone(), mask.clone())
    w = call(masked_softmax, *given)
    for name, after, before in zip(("scores", "mask"), given, (scores, mask)):
        if not torch.equal(after, before):
            raise AssertionError(f"masked_softmax changed its argument {name!r} in place (masked_fill_, an operation "
                                 f"ending in _, or [...] =): leave the inputs as they are, use masked_fill")
    allowed = mask.expand_as(scores)
    expected = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1).nan_to_num(0.0)

    def fail(problem):
        if isinstance(w, torch.Tensor) and w.shape == scores.shape:
            off = ~torch.isfinite(w).all(-1) | ((w.double().sum(-1) - 1).abs() > 1e-4)   # rows broken
            big = scores.masked_fill(~allowed, 0).abs().amax(-1) > 88                      # exp overflows there
            if (off & big & allowed.any(-1)).any():
                problem += (" (the broken rows have scores above 88, where exp overflows float32: subtract each "
                            "row's largest allowed score before exp, as torch.softmax does)")
            elif (allowed.any(-1) & (w == 0).all(-1)).any():
                problem += (" (every weight of that query is 0 although it may see keys: if you compute exp "
                            "yourself, the exp of scores far below the number you subtract underflows to 0; subtract "
                            "each row's OWN largest allowed score, amax(dim=-1, keepdim=True))")
        known = mistakes_agreeing(masked_softmax, MISTAKES["masked_softmax"],
                                  [{"scores": s, "mask": m} for s, m in _SOFTMAX_CASES])
        raise AssertionError("masked_softmax: " + problem
                             + which_mistake(w, known, {"scores": scores, "mask": mask}, expected))

    if form_difference(w, scores, "the weights"):
        fail(form_difference(w, scores, "the weights"))
    if weights_problem(w, allowed):
        fail(weights_problem(w, allowed))
    if difference(w, expected, "the weights"):
        fail(difference(w, expected, "the weights")
             + " (the allowed keys' weights are the softmax over those keys only)")


torch.manual_seed(0)
_s = torch.stack([-60 - torch.rand(5), torch.full((5,), 2.5), 100 + 20 * torch.randn(5), torch.randn(5)])  # (4, 5)
_SOFTMAX_CASES = [  # (scores, mask); a known mistake is named only when it gives your answers on all of them
    (torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]]), torch.tensor([[True, True, False], [False, False, False]])),
    (_s, torch.tensor([[True, False, True, True, False]] * 4)),  # negative maxima, equal, large
    (_s.double()[None], torch.ones(4, 5, dtype=torch.bool).tril(1)),  # float64, a broadcast mask
    # allowed scores far below any finite fill value: only -inf leaves the masked key (0.0) at weight exactly 0
    (torch.tensor([[-3e10, -2e10, 0.0, -1e10], [0.5, -1.0, 2.0, 0.3]], dtype=torch.float64),
     torch.tensor([[True, True, False, True]] * 2)),
]
for _scores, _mask in _SOFTMAX_CASES:
    _check_masked_softmax(_scores, _mask)
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("02_attention", "masked_softmax", masked_softmax)
### END HIDDEN TESTS
""")

nb.md(r"""
**Exercise 4 — scaled dot-product attention.** Write `scaled_dot_product_attention(q, k, v, mask=None)`
for 3-D `(B, T, D)` or 4-D `(B, H, T, D)` inputs, returning `(output, weights)` with output
`(..., T_q, D_v)` and weights `(..., T_q, T_k)`; a fully masked row gives zero weights and a zero
output. Do not call `torch.nn.functional.scaled_dot_product_attention` (or `ref`'s): the point
is to write it. You may call your `masked_softmax`.
""")

nb.solution("sdpa", r"""
def scaled_dot_product_attention(q, k, v, mask=None):
    ### BEGIN SOLUTION
    d = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)  # (..., T_q, T_k)
    if mask is None:
        weights = torch.softmax(scores, dim=-1)
    else:
        mask = mask.expand_as(scores)
        any_key = mask.any(dim=-1, keepdim=True)      # (..., T_q, 1)
        scores = scores.masked_fill(~mask, float("-inf")).masked_fill(~any_key, 0.0)
        weights = torch.softmax(scores, dim=-1).masked_fill(~any_key, 0.0)
    return weights @ v, weights                      # (..., T_q, D_v), (..., T_q, T_k)
    ### END SOLUTION
""")

nb.tests("test_sdpa", 2, r"""
from gptref.grading.compare import difference, form_difference
from gptref.grading.explain import call, which_mistake
from gptref.grading.mistakes.d02_attention import MISTAKES
from gptref.grading.ladders import mistakes_agreeing
from gptref.grading.ladders.d02_attention import weights_problem


def _check_sdpa(q, k, v, mask=None):
    '''scaled_dot_product_attention in order: a tuple (output, weights) of the right shapes; the weights'
    properties; output = weights @ v (zero for a query that sees no key); then the values by hand.'''
    args = (q, k, v) if mask is None else (q, k, v, mask)
    given = tuple(a.clone() for a in args)
    res = call(scaled_dot_product_attention, *given)
    for name, after, before in zip(("q", "k", "v", "mask"), given, args):
        if not torch.equal(after, before):
            raise AssertionError(f"scaled_dot_product_attention changed its argument {name!r} in place (masked_fill_, "
                                 f"an operation ending in _, or [...] =): leave the inputs as they are")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])                     # (..., T_q, T_k)
    allowed = torch.ones_like(scores, dtype=torch.bool) if mask is None else mask.expand_as(scores)
    w_ref = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1).nan_to_num(0.0)
    expected = (w_ref @ v, w_ref)

    def fail(problem):
        kwargs = dict(zip(("q", "k", "v", "mask"), args))
        known = mistakes_agreeing(scaled_dot_product_attention, MISTAKES["scaled_dot_product_attention"],
                                  [dict(zip(("q", "k", "v", "mask"), a)) for a in _SDPA_CASES])
        raise AssertionError("scaled_dot_product_attention: " + problem
                             + which_mistake(res, known, kwargs, expected))

    if not isinstance(res, tuple) or len(res) != 2:
        fail(f"return a tuple (output, weights), got {type(res).__name__}")
    for name, got, want in zip(("output", "weights"), res, expected):
        if form_difference(got, want, name):
            fail(form_difference(got, want, name) + " (output is (..., T_q, D_v), weights (..., T_q, T_k))")
    out, w = res
    if weights_problem(w, allowed):
        fail(weights_problem(w, allowed))
    if (out[~allowed.any(-1)] != 0).any():
        fail("a query that may see no key must get a zero output")
    if difference(out, w @ v, "output"):
        fail("the output should be weights @ v for your own weights: " + difference(out, w @ v, "output"))
    if difference(w, w_ref, "weights"):
        fail(difference(w, w_ref, "weights") + " (compared with softmax(q k^T / sqrt(D)) over the allowed keys)")


torch.manual_seed(1)
_q, _k, _v = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 6)
_q4 = torch.randn(2, 3, 4, 8)                                                     # (B, H, T, D)
_d = torch.randn(2, 4, 16, dtype=torch.float64)                                   # float64, padding (B, 1, T_k)
_SDPA_CASES = [  # a known mistake is named only when it gives your answers on all of them
    (_q, _k, _v),                                                                 # no mask, D_v != D
    (_q, _k, _v, torch.tensor([[False] * 5, [True, True, False, False, False], [True] * 5])),  # a fully masked query
    (_q4, _q4, _q4, ref.causal_mask(4)),
    (torch.randn(1, 1, 1, 8), torch.randn(1, 1, 6, 8), torch.randn(1, 1, 6, 8),   # one head, T_q = 1
     ref.padding_mask(torch.tensor([[True, True, True, False, False, False]]))),
    (_d, _d, _d, torch.tensor([[True] * 4, [True, True, False, False]])[:, None, :]),
]
for _args in _SDPA_CASES:
    _check_sdpa(*_args)
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("02_attention", "scaled_dot_product_attention", scaled_dot_product_attention)
### END HIDDEN TESTS
""")

nb.written("q_masked_row", 1, r"""
**Question.** A query whose keys are *all* masked: why is "all-zero weights, zero output" the
right answer, rather than NaN, or uniform weights $1/T_k$ over the masked keys? Think of where
such rows occur (padding queries, batched data) and what each choice does to the next layer and
to the gradient.
""", answer=r"""
Such rows come from positions that should not exist for the model (a padding query, or a
query whose allowed keys were all removed). NaN is contagious: it propagates through every
later matmul into the loss and the gradients, destroying the whole batch, even though the
row itself is never used. Uniform weights would quietly mix in the values of keys the mask
says must not be seen (padding, or future tokens), leaking information. Zero weights give a
zero output: finite, independent of the forbidden keys, and with zero gradient to them; the
position is then ignored by the loss (its label is masked) so nothing else changes.
""")

nb.md(r"""
## 5. One function, three uses

A transformer layer projects its input into queries, keys and values with three matrices
$W_Q, W_K, W_V$ and attends. What changes between the three variants is only **where the
queries and the keys come from** and **which mask** is used:

| variant | queries from | keys/values from | mask |
|---|---|---|---|
| encoder self-attention (BERT) | the sequence $x$ | the same $x$ | padding of $x$ |
| decoder self-attention (GPT) | the sequence $y$ | the same $y$ | causal **and** padding of $y$ |
| cross-attention (encoder-decoder) | the decoder's $y$ | the encoder's $x$ | padding of $x$ |

The exercises below are single-head and 3-D: `x` is `(B, T, C)`, each weight matrix is `(C, D)`,
so scores are `(B, T_q, T_k)` and a padding mask for them has shape `(B, 1, T_k)`
(`key_is_token[:, None, :]`). Each returns `(output, weights)`. Use the reference
`ref.scaled_dot_product_attention` and `ref.causal_mask` here, so that these exercises are
graded on their own.
""")

nb.solution("encoder_self_attention", r"""
def encoder_self_attention(x, x_is_token, w_q, w_k, w_v):
    ### BEGIN SOLUTION
    mask = x_is_token[:, None, :]  # (B, 1, T): no query sees padding keys
    return ref.scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v, mask)
    ### END SOLUTION
""")

nb.tests("test_encoder_self_attention", 1, r"""
from gptref.grading.ladders.d02_attention import check_use


torch.manual_seed(2)
x, W = torch.randn(2, 4, 6), [torch.randn(6, 3) for _ in range(3)]
_inputs = [(x, torch.tensor([[True, True, True, True], [True, True, False, False]])),
           (torch.randn(3, 5, 6), torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True] + [False] * 4]))]
for x, is_token in _inputs:   # a known mistake is named only when it gives your answers on both
    _expected = ref.scaled_dot_product_attention(x @ W[0], x @ W[1], x @ W[2], is_token[:, None, :])
    check_use(encoder_self_attention, (x, is_token, *W), ("x", "x_is_token", "w_q", "w_k", "w_v"), x, x, is_token,
              False, _expected, all_args=[(x_, t_, *W) for x_, t_ in _inputs])
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("02_attention", "encoder_self_attention", encoder_self_attention)
### END HIDDEN TESTS
""")

nb.solution("decoder_self_attention", r"""
def decoder_self_attention(y, y_is_token, w_q, w_k, w_v):
    ### BEGIN SOLUTION
    T = y.shape[1]
    mask = ref.causal_mask(T) & y_is_token[:, None, :]  # (T, T) & (B, 1, T) -> (B, T, T)
    return ref.scaled_dot_product_attention(y @ w_q, y @ w_k, y @ w_v, mask)
    ### END SOLUTION
""")

nb.tests("test_decoder_self_attention", 1, r"""
from gptref.grading.ladders.d02_attention import check_use


torch.manual_seed(3)
y, W = torch.randn(2, 4, 6), [torch.randn(6, 3) for _ in range(3)]
_inputs = [(y, torch.tensor([[True, True, True, True], [True, True, True, False]])),
           (torch.randn(3, 5, 6), torch.tensor([[True] * 5, [True] * 2 + [False] * 3, [True] * 4 + [False]]))]
for y, is_token in _inputs:   # a known mistake is named only when it gives your answers on both
    _T = y.shape[1]
    _expected = ref.scaled_dot_product_attention(y @ W[0], y @ W[1], y @ W[2],
                                                 ref.causal_mask(_T) & is_token[:, None, :])
    check_use(decoder_self_attention, (y, is_token, *W), ("y", "y_is_token", "w_q", "w_k", "w_v"), y, y, is_token,
              True, _expected, all_args=[(y_, t_, *W) for y_, t_ in _inputs])
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("02_attention", "decoder_self_attention", decoder_self_attention)
### END HIDDEN TESTS
""")

nb.solution("cross_attention", r"""
def cross_attention(y, x, x_is_token, w_q, w_k, w_v):
    ### BEGIN SOLUTION
    mask = x_is_token[:, None, :]  # (B, 1, S): the encoder's padding
    return ref.scaled_dot_product_attention(y @ w_q, x @ w_k, x @ w_v, mask)
    ### END SOLUTION
""")

nb.tests("test_cross_attention", 1, r"""
from gptref.grading.ladders.d02_attention import check_use


torch.manual_seed(4)
W, is_token = [torch.randn(6, 4) for _ in range(3)], torch.tensor([[True] * 5, [True, True, False, False, False]])
_inputs = [(torch.randn(2, _T, 6), torch.randn(2, 5, 6)) for _T in (5, 3)]  # a decoder as long as the encoder (a
for y, x in _inputs:                                                   # mix-up of x and y still runs), then shorter
    _expected = ref.scaled_dot_product_attention(y @ W[0], x @ W[1], x @ W[2], is_token[:, None, :])
    check_use(cross_attention, (y, x, is_token, *W), ("y", "x", "x_is_token", "w_q", "w_k", "w_v"), y, x, is_token,
              False, _expected, all_args=[(y_, x_, is_token, *W) for y_, x_ in _inputs])
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("02_attention", "cross_attention", cross_attention)
### END HIDDEN TESTS
""")

nb.md(r"""
### Seeing the three masks

One batch element with padding: a 6-token encoder input of which 4 are real, and a 5-token
decoder input of which 4 are real. Dark cells are zero weight. Look for the blank padding
columns in all three, the triangle in the decoder, and the rectangular (5 by 6) cross-attention.
""")

nb.code(r"""
torch.manual_seed(5)
C, D = 8, 8
W = [torch.randn(C, D) / math.sqrt(C) for _ in range(3)]
x, y = torch.randn(1, 6, C), torch.randn(1, 5, C)
x_is_token = torch.tensor([[True, True, True, True, False, False]])
y_is_token = torch.tensor([[True, True, True, True, False]])

panels = [
    ("encoder self-attention", encoder_self_attention(x, x_is_token, *W)[1]),
    ("decoder self-attention", decoder_self_attention(y, y_is_token, *W)[1]),
    ("cross-attention", cross_attention(y, x, x_is_token, *W)[1]),
]
fig, axes = plt.subplots(1, 3, figsize=(12, 4))
for ax, (title, w) in zip(axes, panels):
    im = ax.imshow(w[0].detach(), vmin=0, vmax=1, cmap="viridis")
    ax.set_title(title)
    ax.set_xlabel("key position")
    ax.set_ylabel("query position")
fig.colorbar(im, ax=axes, shrink=0.8, label="attention weight")
fig.savefig("attention_heatmaps.png", dpi=100)
plt.show()
""")

nb.md(r"""
## 6. Heads

Multi-head attention runs $H$ attentions side by side, each on its own $D = C/H$ channels, so
that different heads can look for different things. In practice one big projection makes all
heads at once, `(B, T, C)`, and we **split** it: view the channels as `(H, D)` and move the head
axis before time, giving `(B, H, T, D)` — head $h$ gets channels $hD, \dots, hD + D - 1$.
Attention then works on the last two dimensions for every (batch, head) pair. **Merging** is the
inverse: `(B, H, T, D)` back to `(B, T, H\cdot D)`. A plain `reshape` without moving the head
axis mixes time steps and heads: the shapes come out right and the values are wrong.

**Exercise 5.** Write `split_heads(x, n_heads)` and `merge_heads(x)`.
""")

nb.solution("split_heads", r"""
def split_heads(x, n_heads):
    ### BEGIN SOLUTION
    B, T, C = x.shape
    return x.view(B, T, n_heads, C // n_heads).transpose(1, 2)  # (B, T, H, D) -> (B, H, T, D)
    ### END SOLUTION
""")

nb.tests("test_split_heads", 1, r"""
from gptref.grading.ladders.d02_attention import check_heads


_x = torch.arange(2 * 3 * 4.0).reshape(1, 2, 12)  # B=1, T=2, C=12: head 1 at time 0 holds channels 4..7 of token 0
_x1 = torch.randn(2, 3, 6)
_all = [(_x, 3), (_x1, 1)]   # a known mistake is named only when it gives your answers on both
check_heads(split_heads, _x, 3, expected=torch.stack([_x[0, :, 4 * h:4 * h + 4] for h in range(3)])[None],
            all_inputs=_all)
check_heads(split_heads, _x1, 1, expected=_x1[:, None], all_inputs=_all)  # one head
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("02_attention", "split_heads", split_heads)
### END HIDDEN TESTS
""")

nb.solution("merge_heads", r"""
def merge_heads(x):
    ### BEGIN SOLUTION
    B, H, T, D = x.shape
    return x.transpose(1, 2).reshape(B, T, H * D)  # (B, H, T, D) -> (B, T, H, D) -> (B, T, H*D)
    ### END SOLUTION
""")

nb.tests("test_merge_heads", 1, r"""
from gptref.grading.ladders.d02_attention import check_heads


_h = torch.arange(24.0).reshape(1, 3, 2, 4)  # B=1, H=3, T=2, D=4: channels 4..7 of token 0 come from head 1, time 0
_h1 = torch.randn(2, 1, 3, 5)
_all = [(_h,), (_h1,)]   # a known mistake is named only when it gives your answers on both
check_heads(merge_heads, _h, expected=torch.cat([_h[:, h] for h in range(3)], dim=-1), all_inputs=_all)
check_heads(merge_heads, _h1, expected=_h1[:, 0], all_inputs=_all)  # one head
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("02_attention", "merge_heads", merge_heads)
### END HIDDEN TESTS
""")

nb.md(r"""
## 7. Multi-head attention, the layer

Now the whole layer, the one every transformer block calls. From an input `x` of shape `(B, T, C)`
(`C = d_model`) and, for cross-attention, a `context` of shape `(B, S, C)`:

1. **project**: $Q = xW_Q + b_Q$ from `x`; $K = cW_K + b_K$ and $V = cW_V + b_V$ from the source
   $c$ of the keys, which is `x` itself for self-attention and `context` for cross-attention;
2. **split** each into heads, `(B, H, T, D)` with $D = C/H$;
3. **attend** in every head at once, with the mask (True = may attend, broadcasting to `(B, H, T, S)`);
4. **merge** the heads back to `(B, T, C)`;
5. **mix** them with an output projection $W_O$: without it each output channel would come from
   one head only.

**Grouped key/value heads.** Keys and values take memory in the cache at generation time, so
recent models (Llama 2 70B, Mistral) give them fewer heads: with `n_kv_heads` $= H_{kv}$ dividing
$H$, the key and value projections produce $H_{kv} \cdot D$ channels, and query head $h$ reads
key/value head $\lfloor h / (H/H_{kv}) \rfloor$ — consecutive query heads share one, which is
`repeat_interleave(H // H_kv, dim=1)` on the `(B, H_kv, S, D)` keys and values. $H_{kv} = H$ is ordinary
multi-head attention; $H_{kv} = 1$ is multi-query attention.

**Exercise 6.** Complete `MultiHeadAttention(d_model, n_heads, n_kv_heads=None, bias=True)`: four
`nn.Linear` layers named `q_proj` ($C \to C$), `k_proj` and `v_proj` ($C \to H_{kv} D$), `out_proj`
($C \to C$), and `forward(x, context=None, mask=None)` returning `(B, T, C)`. Use `ref.split_heads`,
`ref.merge_heads` and `ref.scaled_dot_product_attention` (so this exercise is graded on its own);
do not use `torch.nn.MultiheadAttention`. The same names and layout are those of
`gptref.attention.MultiHeadAttention`, the layer that day 9's GPT block is built from.
`mha_forward` below loads given weights into your layer and runs it: the tests call it.
""")

nb.solution("multi_head_attention", r'''
import torch.nn as nn


class MultiHeadAttention(nn.Module):
    """Self-attention (context=None) or cross-attention; n_kv_heads < n_heads shares key/value heads."""

    def __init__(self, d_model, n_heads, n_kv_heads=None, bias=True):
        super().__init__()
        ### BEGIN SOLUTION
        self.n_heads = n_heads
        self.n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        head_dim = d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, self.n_kv_heads * head_dim, bias=bias)
        self.v_proj = nn.Linear(d_model, self.n_kv_heads * head_dim, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        ### END SOLUTION

    def forward(self, x, context=None, mask=None):
        ### BEGIN SOLUTION
        source = x if context is None else context                # keys and values come from here
        q = ref.split_heads(self.q_proj(x), self.n_heads)         # (B, H, T, D)
        k = ref.split_heads(self.k_proj(source), self.n_kv_heads)  # (B, H_kv, S, D)
        v = ref.split_heads(self.v_proj(source), self.n_kv_heads)  # (B, H_kv, S, D)
        group = self.n_heads // self.n_kv_heads
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)  # (B, H, S, D)
        out, _ = ref.scaled_dot_product_attention(q, k, v, mask)  # (B, H, T, D)
        return self.out_proj(ref.merge_heads(out))                # (B, T, H*D) -> (B, T, C)
        ### END SOLUTION


def mha_forward(x, state, n_heads, n_kv_heads=None, context=None, mask=None):
    """Run your MultiHeadAttention with the weights in `state`: what the tests call."""
    layer = MultiHeadAttention(x.shape[-1], n_heads, n_kv_heads, bias="q_proj.bias" in state)
    layer.load_state_dict(state)
    with torch.no_grad():
        return layer.eval()(x, context=context, mask=mask)
''')

# The visible test names the common mistakes of gptref/grading/mistakes/d02_attention.py's MISTAKES["mha_forward"].
nb.tests("test_multi_head_attention", 2, r'''
import torch.nn as nn
from gptref.grading.compare import form_difference
from gptref.grading.explain import call, which_mistake
from gptref.grading.mistakes.d02_attention import MISTAKES
from gptref.grading.ladders import mistakes_agreeing
from gptref.grading.ladders.d02_attention import mha_dependence_problem
torch.manual_seed(6)
_B, _T, _C, _H = 2, 5, 16, 4
_tm = nn.MultiheadAttention(_C, _H, batch_first=True).eval()   # torch's layer, its q/k/v weights in one matrix
with torch.no_grad():
    _tm.in_proj_bias.normal_(); _tm.out_proj.bias.normal_()
_W, _b = _tm.in_proj_weight.detach(), _tm.in_proj_bias.detach()
_st = {"q_proj.weight": _W[:_C], "k_proj.weight": _W[_C:2 * _C], "v_proj.weight": _W[2 * _C:],
       "q_proj.bias": _b[:_C], "k_proj.bias": _b[_C:2 * _C], "v_proj.bias": _b[2 * _C:],
       "out_proj.weight": _tm.out_proj.weight.detach(), "out_proj.bias": _tm.out_proj.bias.detach()}
_names = set(MultiHeadAttention(_C, _H).state_dict())
assert _names == set(_st), f"name the four nn.Linear layers q_proj, k_proj, v_proj, out_proj; got {sorted(_names)}"


def _check(expected, what, x, state, n_heads, **kwargs):
    """mha_forward(x, state, n_heads, **kwargs) in order: the form of x, then the values; a wrong answer also names
    the common mistake it equals (tested on these inputs)."""
    got = call(mha_forward, x, state, n_heads, **kwargs)
    problem = form_difference(got, expected, "the output")
    if problem is None and not torch.allclose(got, expected, atol=1e-5):
        problem = mha_dependence_problem(mha_forward, x, state, n_heads, **kwargs) or (
            f"the layer's output differs from the reference by up to {(got - expected).abs().max().item():.3g}"
            f": check the projections, the heads, the mask and the output projection in turn")
    if problem:
        same = lambda a, b: None if a.shape == b.shape and torch.allclose(a, b, atol=1e-5) else "differs"  # noqa: E731
        known = mistakes_agreeing(mha_forward, MISTAKES["mha_forward"],   # named only if it fits every case
                                  [dict(x=c[2], state=c[3], n_heads=c[4], **c[5]) for c in _MHA_CASES], same)
        raise AssertionError(f"{what}: {problem}" + which_mistake(
            got, known, {"x": x, "state": state, "n_heads": n_heads, **kwargs}, expected, same))


# self-attention with a causal mask, against torch.nn.MultiheadAttention (its bool mask is True where NOT allowed)
_x = torch.randn(_B, _T, _C)
_causal = ref.causal_mask(_T)
with torch.no_grad():
    _expected = _tm(_x, _x, _x, attn_mask=~_causal, need_weights=False)[0]
_MHA_CASES = [(_expected, "causal self-attention vs torch.nn.MultiheadAttention", _x, _st, _H, dict(mask=_causal))]
# cross-attention: keys and values from a context with padding
for _S in (_T, 7):
    _ctx = torch.randn(_B, _S, _C)
    _real = torch.arange(_S)[None, :] < torch.tensor([[_S], [3]])          # (B, S): sequence 1 has 3 real tokens
    with torch.no_grad():
        _expected = _tm(_x, _ctx, _ctx, key_padding_mask=~_real, need_weights=False)[0]
    _MHA_CASES.append((_expected, f"cross-attention to a context of length {_S}", _x, _st, _H,
                       dict(context=_ctx, mask=ref.padding_mask(_real))))
# grouped key/value heads, then one key/value head and no bias, against gptref's layer
import gptref.attention as _A
for _H_kv, _bias in ((2, True), (1, False)):
    _g = _A.MultiHeadAttention(_C, _H, n_kv_heads=_H_kv, bias=_bias)
    _gst = {k: torch.randn_like(v) / 4 for k, v in _g.state_dict().items()}
    _g.load_state_dict(_gst)
    with torch.no_grad():
        _expected = _g.eval()(_x, mask=_causal)
    _MHA_CASES.append((_expected, f"{_H} query heads sharing {_H_kv} key/value heads, bias={_bias}", _x, _gst, _H,
                       dict(n_kv_heads=_H_kv, mask=_causal)))
for _expected, _what, _x_in, _state, _heads, _kwargs in _MHA_CASES:
    _check(_expected, _what, _x_in, _state, _heads, **_kwargs)
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("02_attention", "mha_forward", mha_forward)
### END HIDDEN TESTS
''')

nb.md(r"""
## Summary

* Attention is $\operatorname{softmax}(QK^\top/\sqrt d)\,V$: the softmax runs over the keys, and
  $\sqrt d$ keeps the scores at unit scale.
* A bool mask (True = may attend) removes keys by setting their scores to $-\infty$; a row with
  no key left gives zeros, never NaN.
* Encoder, decoder and encoder-decoder models use the same attention with different sources
  of keys and different masks: padding; causal and padding; the encoder's padding.
* Heads are a reshape and a transpose of the channel dimension, undone before the output
  projection that mixes them. Your `MultiHeadAttention` is the layer of every transformer block; day 9
  builds a GPT block from the same layer, `gptref.attention.MultiHeadAttention` (same names, same layout).
""")

nb.save()
