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
from gptref.grading.compare import difference
from gptref.grading.explain import call
from gptref.grading.ladders import agreeing, climb_answer
from gptref.grading.ladders.d07_rope import LADDERS, drift_with_position
from gptref.grading.mistakes.d07_rope import MISTAKES
from gptref.positions import sinusoidal_positions as _ref_table
# one position and one pair, a small table, an odd number of pairs, a long table (slow pairs), 10,000 positions
# (angles computed in float32 lose digits there)
_cases = [dict(n_positions=1, d_model=2), dict(n_positions=20, d_model=8), dict(n_positions=7, d_model=6),
          dict(n_positions=300, d_model=10), dict(n_positions=10000, d_model=6)]
_tables = [call(sinusoidal_positions, **_case) for _case in _cases]
# a mistake is named only if it gives every table (to 1e-2: two float32 slips round their angles differently)
_known = agreeing(MISTAKES["sinusoidal_positions"], _cases, _tables, lambda a, b: difference(a, b, atol=1e-2, rtol=0))
for _case, _pe in zip(_cases, _tables):  # the ladder: form, row 0, sin^2 + cos^2 = 1, frequencies
    climb_answer(_pe, _case, LADDERS["sinusoidal_positions"], mistakes=_known,
          expected=None if _case["n_positions"] > 1 else _ref_table(**_case))
_dots = _tables[1] @ _tables[1].T
assert torch.allclose(_dots[3, 7], _dots[10, 14], atol=1e-5), "PE[m] . PE[n] should depend only on m - n"
def _same_table(got, want):
    """Computed in float64 and rounded once to float32, a correct table is within about one float32 step."""
    message = difference(got, want, "your table", rtol=0.0, atol=1e-6)
    drift = message and drift_with_position(got, want)
    if drift:   # the positions explain the wrong entries: no other guess where they lie
        message = difference(got, want, "your table", rtol=0.0, atol=1e-6, locate=False)
    return message and message + (drift or "")


for _case, _pe in zip(_cases, _tables):  # values last
    climb_answer(_pe, _case, (), _ref_table(**_case), _known, compare=_same_table)
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
from gptref.grading.explain import call
from gptref.grading.ladders import agreeing, call_unchanged, climb_answer
from gptref.grading.compare import difference
from gptref.grading.ladders.d07_rope import LADDERS, rope_short_of_digits
from gptref.grading.mistakes.d07_rope import MISTAKES
from gptref.positions import rope as _ref_rope
torch.manual_seed(7)
_x = torch.randn(2, 6, 8, dtype=torch.float64)
_cases = [dict(x=_x),                                                          # (B, T, D), positions 0..T-1
          dict(x=torch.randn(1, 2, dtype=torch.float64), positions=torch.tensor([5])),  # T = 1, one pair
          dict(x=torch.randn(2, 3, 5, 4)),                                     # float32, (B, H, T, D)
          dict(x=torch.randn(4, 6, dtype=torch.float64), positions=torch.tensor([3999, 0, 1234, 7])),
          dict(x=torch.randn(3, 8), positions=torch.tensor([300001, 0, 12])),         # float32, a far position
          dict(x=torch.randn(3, 8, dtype=torch.float64), base=100.0)]
_outputs = [call_unchanged(rope, _case) for _case in _cases]  # x must not be changed in place
_known = agreeing(MISTAKES["rope"], _cases, _outputs)  # a mistake is named only if it gives every output
for _case, _y in zip(_cases, _outputs):  # the ladder: shape and dtype, lengths kept, position 0 unchanged
    climb_answer(_y, _case, LADDERS["rope"], mistakes=_known)
# the relative property: the score of rope(q) at m and rope(k) at n depends only on m - n
_q, _k = torch.randn(1, 16, dtype=torch.float64), torch.randn(1, 16, dtype=torch.float64)
_s1 = (call(rope, _q, torch.tensor([9])) * call(rope, _k, torch.tensor([4]))).sum()
_s2 = (call(rope, _q, torch.tensor([105])) * call(rope, _k, torch.tensor([100]))).sum()
assert torch.allclose(_s1, _s2, rtol=1e-4), \
    f"rope(q) at 9 . rope(k) at 4 gives {_s1.item():.6f} but at 105 and 100 {_s2.item():.6f}: the score should " \
    "depend only on m - n, so each pair must turn by the position times a fixed angle theta_i"
def _same_rotation(got, want, positions=None):
    """The values, and when only the largest positions are slightly off, that the angles lack digits."""
    message = difference(got, want, "rope's output")
    digits = message and rope_short_of_digits(got, want, positions)
    if digits:   # the far positions explain the wrong entries: no other guess where they lie
        message = difference(got, want, "rope's output", locate=False)
    return message and message + (digits or "")


for _case, _y in zip(_cases, _outputs):  # values last
    climb_answer(_y, _case, (), _ref_rope(**_case), _known,
                 compare=lambda got, want, case=_case: _same_rotation(got, want, case.get("positions")))
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
from gptref.grading.explain import call
from gptref.grading.ladders import agreeing, call_unchanged, climb_answer
from gptref.grading.ladders.d07_rope import LADDERS
from gptref.grading.mistakes.d07_rope import MISTAKES
from gptref.positions import rope as _ref_rope
torch.manual_seed(8)
_q, _k = torch.randn(3, 8, dtype=torch.float64), torch.randn(3, 8, dtype=torch.float64)
def _rotated_score(q, k, m, n, base=10000.0):
    """<rope(q) at m, rope(k) at n> through gptref's rope: the value rope_score must give for m - n."""
    rotated_q = _ref_rope(q[..., None, :], torch.tensor([m]), base=base)  # (..., 1, D)
    rotated_k = _ref_rope(k[..., None, :], torch.tensor([n]), base=base)
    return (rotated_q * rotated_k).sum(-1).squeeze(-1)                   # (...)
# distance 0, positive, negative, large (float32 and float64; 300001 in float32); one pair (D = 2); float32 with two
# leading dims; another base
_cases = [(dict(q=_q, k=_k, distance=0), (11, 11)), (dict(q=_q, k=_k, distance=7), (12, 5)),
          (dict(q=_q, k=_k, distance=-4), (3, 7)), (dict(q=_q[:, :2], k=_k[:, :2], distance=9), (9, 0)),
          (dict(q=torch.randn(2, 3, 6), k=torch.randn(2, 3, 6), distance=1000), (1000, 0)),
          (dict(q=torch.randn(3, 16), k=torch.randn(3, 16), distance=300001), (300001, 0)),  # float32 angle loss
          (dict(q=torch.randn(3, 16, dtype=torch.float64), k=torch.randn(3, 16, dtype=torch.float64), distance=3999),
           (3999, 0)),
          (dict(q=_q, k=_k, distance=3, base=100.0), (3, 0))]
_scores = [call_unchanged(rope_score, _case) for _case, _ in _cases]
_known = agreeing(MISTAKES["rope_score"], [_case for _case, _ in _cases], _scores)  # named only if it gives every score
for (_case, _), _got in zip(_cases, _scores):  # the ladder: one score per vector, |score| <= |q||k|, q . k at 0
    climb_answer(_got, _case, LADDERS["rope_score"], mistakes=_known)
for (_case, (_m, _n)), _got in zip(_cases, _scores):  # values last, against vectors rotated to m and n
    _want = _rotated_score(_case["q"], _case["k"], _m, _n, _case.get("base", 10000.0))
    climb_answer(_got, _case, (), _want, _known,
          f"rope_score(q, k, distance={_case['distance']}{', base=' + str(_case['base']) if 'base' in _case else ''})")
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
ax.set(xlabel="distance m - n", ylabel="relative score", xscale="symlog",
       title=f"RoPE score against distance (D = {D})")
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
print(f"score spread over the shifts: absolute {absolute.max() - absolute.min():.3f}, "
      f"RoPE {rotary.max() - rotary.min():.2e}")
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
