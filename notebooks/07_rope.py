"""Builds solutions/07_rope/07_rope.ipynb: sinusoidal position embeddings and rotary embeddings (RoPE)."""

from tools.nbbuild import Notebook

nb = Notebook("07_rope")

nb.md(r"""
# Day 7 — Position embeddings: sinusoids and rotations

Attention by itself is blind to order: permute the tokens of a sequence (and the causal mask
with them) and every token receives the same weighted sum as before. A language model must know
*where* each token is, and there are two main ways to tell it. The original transformer **adds**
a fixed pattern of sines and cosines to each token's embedding (absolute positions). RoPE
(Su et al., 2021, "RoFormer"), used by Llama and most recent models, instead **rotates** the
queries and keys so that their dot product sees only the *distance* between two tokens.

**Learning goals.** After this notebook you can

1. build the sinusoidal position table and explain its frequencies;
2. implement rotary position embeddings with the interleaved channel pairs $(2i, 2i+1)$;
3. prove, and check numerically, that with RoPE $q_m \cdot k_n$ depends only on $m - n$;
4. show what happens to attention scores under absolute embeddings when a text is shifted.
""")

nb.md(r"""
## 1. Sinusoidal absolute embeddings

For position $p$ and model width $d$ (even), "Attention is all you need" uses

$$\mathrm{PE}[p, 2i] = \sin(p\,\omega_i), \qquad \mathrm{PE}[p, 2i+1] = \cos(p\,\omega_i), \qquad
\omega_i = 10000^{-2i/d}, \quad i = 0, \dots, \tfrac d2 - 1,$$

and feeds $x_p = e_{\text{token}} + \mathrm{PE}[p]$ to the first layer. Each channel pair is a
clock hand turning at its own speed: the first pair turns once every $2\pi \approx 6.3$ positions,
the last once every (nearly) $2\pi \cdot 10000$ positions, a geometric range of wavelengths. Two useful
facts follow from $\sin$ and $\cos$ of a sum:

* $\mathrm{PE}[p + k]$ is a fixed linear map (a rotation of each pair by $k\omega_i$) of $\mathrm{PE}[p]$,
  so a layer can in principle learn to attend "$k$ tokens back";
* $\mathrm{PE}[m]\cdot\mathrm{PE}[n] = \sum_i \cos\big((m-n)\,\omega_i\big)$ depends only on $m - n$.

But the model never sees $\mathrm{PE}[m]\cdot\mathrm{PE}[n]$ alone: attention compares
$W_q(e + \mathrm{PE}[m])$ with $W_k(e' + \mathrm{PE}[n])$, and the mixed terms depend on the
absolute positions. We measure this at the end.

## Exercise 1 — the sinusoidal table (1 point)

Write `sinusoidal_positions(n_positions, d_model)` returning the `(n_positions, d_model)` float32
table above (`d_model` even). Compute it in float64 and convert at the end.
""")

nb.code(r"""
import math

import matplotlib.pyplot as plt
import torch

torch.manual_seed(0)
""")

nb.solution("sinusoidal_positions", r'''
def sinusoidal_positions(n_positions, d_model):
    """(n_positions, d_model) table: sin(p w_i) in channel 2i, cos(p w_i) in channel 2i+1."""
    ### BEGIN SOLUTION
    p = torch.arange(n_positions, dtype=torch.float64)[:, None]                     # (n, 1)
    omega = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (d/2,)
    angles = p * omega                                                              # (n, d/2)
    pe = torch.zeros(n_positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles)
    return pe.to(torch.float32)
    ### END SOLUTION
''')

nb.tests("test_sinusoidal_positions", 1, r'''
_pe = sinusoidal_positions(20, 8)
assert isinstance(_pe, torch.Tensor) and _pe.shape == (20, 8), \
    f"expected a (n_positions, d_model) = (20, 8) tensor, got {getattr(_pe, 'shape', type(_pe).__name__)}"
assert _pe.dtype == torch.float32, f"return float32, got {_pe.dtype}"
assert torch.allclose(_pe[0], torch.tensor([0.0, 1.0] * 4)), \
    f"position 0 must be (sin 0, cos 0, ...) = (0, 1, 0, 1, ...), got {_pe[0].tolist()}: sin on even channels, cos on odd"
assert torch.allclose(_pe[:, 0], torch.sin(torch.arange(20.0))), "channel 0 is sin(p): the first frequency is 10000^0 = 1"
_w1 = 10000 ** (-2 / 8)
assert torch.allclose(_pe[:, 2], torch.sin(torch.arange(20.0) * _w1), atol=1e-6), \
    "channel 2i uses omega_i = 10000^(-2i/d): for d=8, channel 2 turns at 10000^(-1/4)"
assert torch.allclose(_pe[:, 3], torch.cos(torch.arange(20.0) * _w1), atol=1e-6), "channel 2i+1 is the cos of the same angle as channel 2i"
_dots = _pe @ _pe.T
assert torch.allclose(_dots[3, 7], _dots[10, 14], atol=1e-5), "PE[m] . PE[n] should depend only on m - n"
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("07_rope", "sinusoidal_positions", sinusoidal_positions)
### END HIDDEN TESTS
''')

nb.code(r"""
from gptref.positions import sinusoidal_positions as ref_sinusoidal_positions

table = ref_sinusoidal_positions(128, 64)
fig, ax = plt.subplots(figsize=(9, 3.2))
im = ax.imshow(table.T, aspect="auto", cmap="RdBu", interpolation="nearest")
ax.set(xlabel="position p", ylabel="channel", title="sinusoidal position table (d = 64)")
fig.colorbar(im, ax=ax)
fig.tight_layout()
plt.savefig("sinusoidal_table.png", dpi=100)
plt.show()
""")

nb.md(r"""
## 2. Rotary position embeddings

RoPE leaves the token embeddings alone and acts inside attention, on each query and key after
their projections. Split a vector $x \in \mathbb{R}^D$ ($D$ even) into pairs $(x_{2i}, x_{2i+1})$
and rotate pair $i$ of the vector at position $p$ by the angle $p\,\theta_i$, with
$\theta_i = b^{-2i/D}$ and base $b = 10000$:

$$\begin{pmatrix} y_{2i} \\ y_{2i+1} \end{pmatrix} =
\begin{pmatrix} \cos p\theta_i & -\sin p\theta_i \\ \sin p\theta_i & \cos p\theta_i \end{pmatrix}
\begin{pmatrix} x_{2i} \\ x_{2i+1} \end{pmatrix} .$$

It is shortest in complex numbers: pair $i$ is $z_i = x_{2i} + \mathrm{i}\,x_{2i+1}$ and RoPE
multiplies it by $e^{\mathrm{i} p\theta_i}$. Now take a query at position $m$ and a key at position $n$:

$$\langle R_m q, R_n k\rangle
= \mathrm{Re}\sum_i q_i e^{\mathrm{i} m\theta_i}\,\overline{k_i e^{\mathrm{i} n\theta_i}}
= \mathrm{Re}\sum_i q_i \overline{k_i}\, e^{\mathrm{i}(m-n)\theta_i} .$$

The absolute positions cancel: the score depends on the content ($q$, $k$) and on $m - n$ only.
Rotations also preserve lengths, so RoPE never changes the size of a query or key.

Which channels form a pair is a convention. RoFormer pairs neighbours $(2i, 2i+1)$
("interleaved", our choice); GPT-NeoX and Hugging Face's Llama pair $(i, i + D/2)$. Both have the
relative property, but they are different functions: a model must be run with the convention it
was trained with.

## Exercise 2 — RoPE (3 points)

Write `rope(x, positions=None, base=10000.0)` for `x` of shape `(..., T, D)` (any number of leading
dimensions, `D` even): rotate the pair $(2i, 2i+1)$ of the vector at sequence index `t` by
`positions[t] * base**(-2i/D)`. `positions` is a `(T,)` tensor of integer positions, or `None`
for `0, 1, ..., T-1`. Return a tensor of `x`'s shape and dtype. Compute the angles in float64
(positions run into the thousands) and convert `cos` and `sin` to `x.dtype`.
You may not call `gptref.positions.rope`.
""")

nb.solution("rope", r'''
def rope(x, positions=None, base=10000.0):
    """Rotate the channel pairs (2i, 2i+1) of x (..., T, D) by positions[t] * base^(-2i/D)."""
    ### BEGIN SOLUTION
    T, D = x.shape[-2], x.shape[-1]
    if positions is None:
        positions = torch.arange(T)
    theta = base ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)          # (D/2,)
    angles = torch.as_tensor(positions, dtype=torch.float64)[:, None] * theta  # (T, D/2)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x_even, x_odd = x[..., 0::2], x[..., 1::2]                                 # (..., T, D/2) each
    y_even = x_even * cos - x_odd * sin
    y_odd = x_even * sin + x_odd * cos
    return torch.stack([y_even, y_odd], dim=-1).reshape(x.shape)               # (..., T, D/2, 2) -> (..., T, D)
    ### END SOLUTION
''')

nb.tests("test_rope", 3, r'''
torch.manual_seed(7)
_x = torch.randn(2, 6, 8, dtype=torch.float64)
_y = rope(_x)
assert isinstance(_y, torch.Tensor) and _y.shape == _x.shape, f"output shape must equal the input shape {tuple(_x.shape)}"
assert _y.dtype == _x.dtype, f"keep the input dtype {_x.dtype}, got {_y.dtype}"
_reordered = torch.stack([_x[..., :4], _x[..., 4:]], dim=-1).reshape(_x.shape)   # halves read, pairs written
assert not torch.allclose(_y[:, 0], _reordered[:, 0]), \
    "position 0 comes out with its channels reordered: you read the pairs as (i, i + D/2) but wrote them back as " \
    "(2i, 2i+1); read and write the same pairs, (2i, 2i+1)"
assert torch.allclose(_y[:, 0], _x[:, 0]), "position 0 must not move (angle 0)"
assert torch.allclose(_y.norm(dim=-1), _x.norm(dim=-1)), "a rotation keeps every vector's length: check the signs of the sin terms"
# the rotation, written out for one vector at position 3 with D = 4
_v = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
_a0, _a1 = 3 * 1.0, 3 * 10000 ** (-2 / 4)
_pairs_adjacent = torch.tensor([1 * math.cos(_a0) - 2 * math.sin(_a0), 1 * math.sin(_a0) + 2 * math.cos(_a0),
                                3 * math.cos(_a1) - 4 * math.sin(_a1), 3 * math.sin(_a1) + 4 * math.cos(_a1)], dtype=torch.float64)
_pairs_halves = torch.tensor([1 * math.cos(_a0) - 3 * math.sin(_a0), 2 * math.cos(_a1) - 4 * math.sin(_a1),
                              1 * math.sin(_a0) + 3 * math.cos(_a0), 2 * math.sin(_a1) + 4 * math.cos(_a1)], dtype=torch.float64)
_got = rope(_v.expand(4, 4).clone())[3]
assert not torch.allclose(_got, _pairs_halves), "you paired channel i with i + D/2: pairs must be (2i, 2i+1)"
assert torch.allclose(_got, _pairs_adjacent), \
    f"position 3 of (1, 2, 3, 4) should rotate to {[round(v, 4) for v in _pairs_adjacent.tolist()]}, got {[round(v, 4) for v in _got.tolist()]}"
_q, _k = torch.randn(1, 16, dtype=torch.float64), torch.randn(1, 16, dtype=torch.float64)
_s1 = (rope(_q, torch.tensor([9])) * rope(_k, torch.tensor([4]))).sum()
_s2 = (rope(_q, torch.tensor([105])) * rope(_k, torch.tensor([100]))).sum()
assert torch.allclose(_s1, _s2), "the score of rope(q) at m and rope(k) at n should depend only on m - n: use the positions you are given"
_padded = torch.cat([torch.zeros(2, 2, 8, dtype=torch.float64), _x], dim=1)  # the same vectors two places later
assert torch.allclose(rope(_x, torch.arange(6) + 2), rope(_padded)[:, 2:]), \
    "use the positions argument: rope(x, positions=arange(T) + 2) must rotate as if x started at position 2"
_x4 = torch.randn(2, 3, 5, 4)
assert rope(_x4).shape == (2, 3, 5, 4) and rope(_x4).dtype == torch.float32, "accept any leading dimensions (..., T, D) and float32"
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("07_rope", "rope", rope)
### END HIDDEN TESTS
''')

nb.md(r"""
## Exercise 3 — the score from the distance alone (2 points)

The derivation above says that the score needs only $\delta = m - n$:

$$\langle R_m q, R_n k\rangle = \sum_i \Big[ (q_{2i}k_{2i} + q_{2i+1}k_{2i+1}) \cos\delta\theta_i
- (q_{2i+1}k_{2i} - q_{2i}k_{2i+1}) \sin\delta\theta_i \Big]$$

(the real part of $q_i\overline{k_i}\,e^{\mathrm{i}\delta\theta_i}$, written out). Write
`rope_score(q, k, distance, base=10000.0)` computing it for `q`, `k` of shape `(..., D)` and an
integer `distance` $= m - n$ (which may be negative), returning the `(...)` scores in `q`'s dtype.
Write it from this formula — do not rotate with your `rope` (nor gptref's): the point is that
no absolute position is needed. The tests compare your result with the dot product of
vectors rotated to actual positions $m$ and $n$.
""")

nb.solution("rope_score", r'''
def rope_score(q, k, distance, base=10000.0):
    """<rope(q) at m, rope(k) at n> for m - n = distance, from the relative form; (...) scores."""
    ### BEGIN SOLUTION
    D = q.shape[-1]
    theta = base ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)  # (D/2,)
    cos = torch.cos(distance * theta).to(q.dtype)
    sin = torch.sin(distance * theta).to(q.dtype)
    q_even, q_odd = q[..., 0::2], q[..., 1::2]                         # (..., D/2) each
    k_even, k_odd = k[..., 0::2], k[..., 1::2]
    real = q_even * k_even + q_odd * k_odd                             # Re(q_i conj(k_i))
    imag = q_odd * k_even - q_even * k_odd                             # Im(q_i conj(k_i))
    return (real * cos - imag * sin).sum(dim=-1)
    ### END SOLUTION
''')

nb.tests("test_rope_score", 2, r'''
torch.manual_seed(8)
from gptref.positions import rope as _ref_rope
_q, _k = torch.randn(3, 8, dtype=torch.float64), torch.randn(3, 8, dtype=torch.float64)
_got = rope_score(_q, _k, 0)
assert isinstance(_got, torch.Tensor) and _got.shape == (3,), f"expected one score per vector, shape (3,), got {getattr(_got, 'shape', None)}"
assert torch.allclose(_got, (_q * _k).sum(-1)), "at distance 0 the score is the plain dot product q . k"
def _rotated_score(m, n):
    return (_ref_rope(_q[:, None], torch.tensor([m])) * _ref_rope(_k[:, None], torch.tensor([n]))).sum(-1).squeeze(-1)
_want = _rotated_score(12, 5)
_got = rope_score(_q, _k, 7)
assert not torch.allclose(_got, _rotated_score(5, 12)), "the sign of the distance is reversed: distance = m - n, the query's position minus the key's"
_theta = 10000.0 ** (-torch.arange(0, 8, 2, dtype=torch.float64) / 8)
_cos_only = ((_q[:, 0::2] * _k[:, 0::2] + _q[:, 1::2] * _k[:, 1::2]) * torch.cos(7 * _theta)).sum(-1)
assert not torch.allclose(_got, _cos_only), \
    "you kept only the cosine terms: each pair also contributes -Im(q_i conj(k_i)) sin(distance * theta_i), " \
    "with Im(q_i conj(k_i)) = q_odd k_even - q_even k_odd"
assert torch.allclose(_got, _want), f"distance 7: got {_got.tolist()}, expected {_want.tolist()}"
assert torch.allclose(rope_score(_q, _k, -4), _rotated_score(3, 7)), "negative distances (the key after the query) must work too"
assert torch.allclose(rope_score(_q, _k, 3, base=100.0),
                      (_ref_rope(_q[:, None], torch.tensor([3]), base=100.0) * _ref_rope(_k[:, None], torch.tensor([0]), base=100.0)).sum(-1).squeeze(-1)), \
    "use the base argument"
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("07_rope", "rope_score", rope_score)
### END HIDDEN TESTS
''')

nb.md(r"""
## 3. Dot product against distance

How does a RoPE score change with distance? Take $q = k$ (a query looking for a key with the same
content). At $\delta = 0$ the score is $\lVert q\rVert^2$; as $\delta$ grows, the fast pairs
spin out of phase first and the slow ones later, so the sum of cosines shrinks, with
oscillations. RoFormer calls this *long-term decay*: distant tokens with matching content score
lower than close ones. Below, the score for $q = k = (1, \dots, 1)$ (RoFormer's illustration)
and for one random $q = k$: the trend is the same, the wiggles differ. The cells use gptref's reference `rope`.
""")

nb.code(r"""
from gptref.positions import rope as ref_rope

D, max_distance = 64, 1000
distances = torch.arange(max_distance)

def rope_scores_by_distance(q):
    # (N, D) queries; the key equals the query; the key sits at 0 and the query at delta
    keys = ref_rope(q[:, None, :], torch.tensor([0]))                  # (N, 1, D)
    queries = ref_rope(q[:, None, :].expand(-1, max_distance, -1), distances)  # (N, max_distance, D)
    return (queries * keys).sum(-1)                                    # (N, max_distance)

ones = rope_scores_by_distance(torch.ones(1, D, dtype=torch.float64))[0] / D
g = torch.Generator().manual_seed(0)
random = rope_scores_by_distance(torch.randn(1, D, generator=g, dtype=torch.float64))[0]
random = random / random[0]

fig, ax = plt.subplots(figsize=(9, 3.5))
ax.plot(distances, ones, label="q = k = ones, score / D")
ax.plot(distances, random, label="one random q = k, score / ||q||^2")
ax.set(xlabel="distance m - n", ylabel="relative score", xscale="symlog", title=f"RoPE score against distance (D = {D})")
ax.axhline(0, color="k", lw=0.5)
ax.legend()
fig.tight_layout()
plt.savefig("rope_score_vs_distance.png", dpi=100)
plt.show()
""")

nb.md(r"""
## 4. Shifting a text: absolute against rotary positions

Take two tokens with fixed content vectors $u$ and $v$, three positions apart, and slide them
together along the sequence: positions $(s + 3, s)$ for $s = 0, 1, \dots$. A language model
should score them the same wherever they occur. With absolute embeddings the attention score is
$\big(W_q(u + \mathrm{PE}[s+3])\big)\cdot\big(W_k(v + \mathrm{PE}[s])\big)$, with random projections
$W_q, W_k$ standing in for a trained layer; with RoPE it is
$(R_{s+3}W_q u)\cdot(R_s W_k v)$.
""")

nb.code(r"""
d_model, shift_range = 64, 300
g = torch.Generator().manual_seed(1)
u, v = torch.randn(d_model, generator=g), torch.randn(d_model, generator=g)
W_q = torch.randn(d_model, d_model, generator=g) / math.sqrt(d_model)
W_k = torch.randn(d_model, d_model, generator=g) / math.sqrt(d_model)
shifts = torch.arange(shift_range)
pe = ref_sinusoidal_positions(shift_range + 3, d_model)       # (positions, d_model)

absolute = ((u + pe[shifts + 3]) @ W_q.T * ((v + pe[shifts]) @ W_k.T)).sum(-1)   # (shift_range,)
q_rot = ref_rope((W_q @ u).expand(shift_range, -1), shifts + 3)                  # (shift_range, d_model)
k_rot = ref_rope((W_k @ v).expand(shift_range, -1), shifts)
rotary = (q_rot * k_rot).sum(-1)

fig, ax = plt.subplots(figsize=(9, 3.5))
ax.plot(shifts, absolute, label="sinusoidal, added to the input")
ax.plot(shifts, rotary, label="RoPE")
ax.set(xlabel="shift s (the pair sits at positions s + 3 and s)", ylabel="attention score",
       title="the same two tokens, 3 apart, slid along the sequence")
ax.legend()
fig.tight_layout()
plt.savefig("position_shift.png", dpi=100)
plt.show()
print(f"score spread over the shifts: absolute {absolute.max() - absolute.min():.3f}, RoPE {rotary.max() - rotary.min():.2e}")
""")

nb.md(r"""
With RoPE the score is the same at every shift (up to rounding): position enters only as the
distance 3. With absolute embeddings the same pair of tokens scores differently depending on where
it sits, so the model must *learn* to be shift-invariant from data, and gets no help at positions
it never saw in training. This is one reason RoPE (and methods that scale its $\theta_i$ to
stretch the context) took over.
""")

nb.written("q_convention", 1, r"""
**Question.** Hugging Face's Llama implementation pairs channel $i$ with channel $i + D/2$
instead of $(2i, 2i+1)$. Meta's original Llama checkpoints were trained with interleaved pairs,
yet they are converted and run correctly under the other convention. How can that be? What must
the conversion do to the weights, and why does it not change any attention score?
""", answer=r"""
The attention score is a dot product q . k, which does not change when the same permutation of
channels is applied to both q and k. Both conventions rotate pairs by the same angles theta_i; they
differ only in where pair i lives. So reorder the rows of W_q and W_k (per head) so that the channel
that was 2i becomes channel i and 2i+1 becomes i + D/2: the half-split RoPE of the permuted q, k is
exactly the permutation of the interleaved RoPE of the original q, k, and every score (hence every
output) is unchanged. W_v and W_o are untouched because RoPE does not act on values. This is the
permute step of the conversion script.
""")

nb.md(r"""
## Summary

* Sinusoidal embeddings add $\sin(p\omega_i)$, $\cos(p\omega_i)$ with geometric frequencies
  $\omega_i = 10000^{-2i/d}$ to the input; the attention scores then still depend on absolute positions.
* RoPE rotates each pair $(2i, 2i+1)$ of queries and keys by $p\,\theta_i$; in complex form
  $z_i \mapsto z_i e^{\mathrm{i}p\theta_i}$.
* Hence $\langle R_m q, R_n k\rangle = \mathrm{Re}\sum_i q_i\overline{k_i}e^{\mathrm{i}(m-n)\theta_i}$:
  only the distance matters, which you computed directly and checked against rotated vectors.
* The pairing convention (interleaved or halves) must match the weights; converting between them
  is a permutation of $W_q$ and $W_k$.
""")

nb.save()
