"""Builds solutions/05_label_smoothing/05_label_smoothing.ipynb: smoothed targets, smoothed CE, its KL form."""

from tools.nbbuild import Notebook

nb = Notebook("05_label_smoothing")

nb.md(r"""
# Day 5 — Label smoothing

A classifier trained with cross-entropy against one-hot targets is rewarded for pushing the
probability of the correct class towards 1, which it can only do by growing its logits without
bound. *Label smoothing* (Szegedy et al., 2016) replaces the one-hot target by a slightly
blurred one; "Attention is all you need" trained its translation models with $\varepsilon = 0.1$.

**Learning goals.** After this notebook you can

1. build the smoothed target distribution for any number of classes;
2. write the label-smoothed cross-entropy so that it equals PyTorch's `label_smoothing=` option,
   including ignored positions;
3. write the same objective as a KL divergence, and say what the two forms differ by;
4. measure what smoothing does to a classifier's confidence and calibration.
""")

nb.md(r"""
## 1. The idea

With $C$ classes, a model gives probabilities $p = \mathrm{softmax}(z)$ for logits $z \in \mathbb{R}^C$.
For a target class $y$, ordinary cross-entropy is $-\log p_y$: the cross-entropy $-\sum_c q_c \log p_c$
against the one-hot distribution $q = e_y$. Label smoothing mixes the one-hot target with the
uniform distribution, with weight $\varepsilon$:

$$q_c = (1 - \varepsilon)\,[c = y] + \frac{\varepsilon}{C}
\quad\Longrightarrow\quad
q_y = 1 - \varepsilon + \frac{\varepsilon}{C}, \qquad q_{c \ne y} = \frac{\varepsilon}{C}.$$

(This is PyTorch's convention: the $\varepsilon$ mass is spread over **all** $C$ classes, the
correct one included. Some papers spread it over the $C-1$ wrong classes instead.)

The smoothed cross-entropy splits into two familiar terms:

$$\mathcal{L}_{\varepsilon}(z, y) = -\sum_c q_c \log p_c
= (1-\varepsilon)\,\underbrace{(-\log p_y)}_{\text{the usual loss}}
+ \varepsilon\,\underbrace{\frac{1}{C}\sum_c (-\log p_c)}_{\text{cross-entropy to uniform}} .$$

The second term punishes any class whose probability goes to zero, so the logits can no longer
grow without bound: the minimum is reached at $p = q$, where the gap between the correct logit
and the others is finite, $z_y - z_c = \log\frac{q_y}{q_c}$.

Always compute $\log p$ with `log_softmax` ($z_c - \log\sum_k e^{z_k}$, stable), never as
`softmax(z).log()`: for large logits the softmax underflows to exactly 0 and its log is $-\infty$,
and the smoothing term then multiplies it by $\varepsilon/C > 0$.
""")

nb.md(r"""
## 2. The KL form

The Kullback–Leibler divergence from $q$ to $p$ is

$$\mathrm{KL}(q \,\|\, p) = \sum_c q_c \log\frac{q_c}{p_c} = \underbrace{-\sum_c q_c \log p_c}_{\mathcal{L}_\varepsilon} - \underbrace{\Big(-\sum_c q_c\log q_c\Big)}_{H(q)} .$$

The entropy $H(q)$ does not depend on the model, so both forms have the same gradient and the
same minimizer. They differ only in their value: the smoothed cross-entropy can never go below
$H(q) > 0$, while the KL reaches 0 exactly when $p = q$. (The Annotated Transformer trains with
`nn.KLDivLoss` for this reason.) By convention $0 \log 0 = 0$, which matters when $\varepsilon = 0$:
use `torch.xlogy(q, q)` for $q \log q$.

A worked example, with $C = 4$, $\varepsilon = 0.1$, $y = 2$: $q = (0.025, 0.025, 0.925, 0.025)$.
""")

nb.code(r"""

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
logits = torch.tensor([[1.0, -0.5, 3.0, 0.2]])
target = torch.tensor([2])
eps, C = 0.1, 4
q = torch.full((1, C), eps / C)
q[0, 2] += 1 - eps
logp = logits.log_softmax(dim=-1)
print("q                      :", q.tolist())
print("smoothed CE by hand    :", -(q * logp).sum().item())
print("F.cross_entropy(..., label_smoothing=0.1):", F.cross_entropy(logits, target, label_smoothing=eps).item())
print("entropy H(q)           :", -(q * q.log()).sum().item())
""")

nb.md(r"""
## Exercise 1 — the smoothed targets (1 point)

Write `smoothed_targets(target, n_classes, smoothing=0.1)`: from a tensor of integer class ids of
any shape, return a **float32** tensor with one more dimension of size `n_classes` holding $q$.
Every row sums to 1.
""")

nb.solution("smoothed_targets", r'''
def smoothed_targets(target, n_classes, smoothing=0.1):
    """(...) class ids -> (..., n_classes) float32 distribution: (1 - eps) one-hot + eps / C."""
    ### BEGIN SOLUTION
    one_hot = F.one_hot(target, n_classes).to(torch.float32)  # (..., C)
    return (1.0 - smoothing) * one_hot + smoothing / n_classes
    ### END SOLUTION
''')

nb.tests("test_smoothed_targets", 1, r'''
_t = torch.tensor([2, 0, 3])
_q = smoothed_targets(_t, 4, 0.1)
assert isinstance(_q, torch.Tensor), f"return a tensor, got {type(_q).__name__}"
assert _q.shape == (3, 4), f"expected shape (3, 4) = target.shape + (n_classes,), got {tuple(_q.shape)}"
assert _q.dtype == torch.float32, f"return float32 (class ids are int64; convert), got {_q.dtype}"
assert abs(_q[0, 0].item() - 0.1 / 3) > 1e-7, \
    "you spread eps over the C - 1 wrong classes (eps / (C - 1) each); torch's convention spreads it over all C " \
    "classes, the target included: eps / C each"
assert torch.allclose(_q.sum(-1), torch.ones(3)), "each row must sum to 1"
assert abs(_q[0, 0].item() - 0.1 / 4) < 1e-7, \
    f"a wrong class gets eps / C = 0.025 (torch spreads eps over all C classes, the target included), got {_q[0, 0].item():.4f}"
assert abs(_q[0, 2].item() - 0.925) < 1e-7, f"the target class gets 1 - eps + eps / C = 0.925, got {_q[0, 2].item():.4f}"
assert torch.equal(smoothed_targets(_t, 4, 0.0), F.one_hot(_t, 4).float()), "smoothing=0 must give the one-hot targets"
_q2 = smoothed_targets(torch.tensor([[1, 0], [4, 4]]), 5, 0.2)
assert _q2.shape == (2, 2, 5), f"targets of shape (2, 2) should give (2, 2, 5), got {tuple(_q2.shape)}"
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("05_label_smoothing", "smoothed_targets", smoothed_targets)
### END HIDDEN TESTS
''')

nb.md(r"""
## Exercise 2 — the smoothed cross-entropy (2 points)

Write `smoothed_cross_entropy(logits, target, smoothing=0.1, ignore_index=-100)` for logits of
shape `(N, C)` and targets of shape `(N,)`. Rows whose target equals `ignore_index` (padding, or
prompt tokens in fine-tuning) contribute nothing, and the mean is over the **other** rows only.
The result must equal
`F.cross_entropy(logits, target, label_smoothing=smoothing, ignore_index=ignore_index)`.

Use the two-term form above and `log_softmax`; you may not call `F.cross_entropy` or
`nn.CrossEntropyLoss` here (nor gptref's reference). Write it self-contained, without calling
your `smoothed_targets`.
""")

nb.solution("smoothed_cross_entropy", r'''
def smoothed_cross_entropy(logits, target, smoothing=0.1, ignore_index=-100):
    """Label-smoothed cross-entropy of (N, C) logits against (N,) targets, averaged over kept rows."""
    ### BEGIN SOLUTION
    logp = logits.log_softmax(dim=-1)                           # (N, C)
    keep = target != ignore_index                               # (N,)
    safe_target = target.masked_fill(~keep, 0)                  # any valid id for ignored rows
    nll = -logp.gather(-1, safe_target[:, None]).squeeze(-1)    # (N,) -log p_y
    to_uniform = -logp.mean(dim=-1)                             # (N,) (1/C) sum_c -log p_c
    per_row = (1.0 - smoothing) * nll + smoothing * to_uniform  # (N,)
    per_row = torch.where(keep, per_row, torch.zeros_like(per_row))
    return per_row.sum() / keep.sum()
    ### END SOLUTION
''')

nb.tests("test_smoothed_cross_entropy", 2, r'''
torch.manual_seed(5)
_z = torch.randn(6, 5, dtype=torch.float64) * 2
_y = torch.tensor([0, 4, 2, 2, 1, 3])
_got = smoothed_cross_entropy(_z, _y, 0.1)
assert isinstance(_got, torch.Tensor) and _got.dim() == 0, "return a scalar tensor (the mean over rows), not a float or a vector"
_want = F.cross_entropy(_z, _y, label_smoothing=0.1)
_q = 0.9 * F.one_hot(_y, 5).double() + 0.1 / 5
_wrong_dim = -(_q * _z.log_softmax(dim=0)).sum(-1).mean()
assert not torch.allclose(_got, _wrong_dim), "your softmax is over the wrong dimension: the classes are dim=-1"
_lp = _z.log_softmax(-1)
_nll = -_lp.gather(-1, _y[:, None]).squeeze(-1)
_others = 0.9 * _nll + 0.1 * (-_lp.sum(-1) - _nll) / 4      # eps spread over the C - 1 other classes
assert not torch.allclose(_got, _others.mean()), \
    "you spread eps over the C - 1 other classes (eps / (C - 1)); torch's label_smoothing spreads it over all C " \
    "classes, the target included: (1 - eps) * (-log p_y) + eps * mean over ALL classes of -log p_c"
assert torch.allclose(_got, _want), f"got {_got.item():.6f}, F.cross_entropy(label_smoothing=0.1) gives {_want.item():.6f}"
assert torch.allclose(smoothed_cross_entropy(_z, _y, 0.0), F.cross_entropy(_z, _y)), "smoothing=0 must give the ordinary cross-entropy"
_y_ign = torch.tensor([0, -100, 2, -100, 1, 3])
_got = smoothed_cross_entropy(_z, _y_ign, 0.1)
_want = F.cross_entropy(_z, _y_ign, label_smoothing=0.1)
assert torch.isfinite(_got), "ignored rows (target == ignore_index) must not be used as class ids"
assert torch.allclose(_got, _want), \
    f"with ignored rows: got {_got.item():.6f}, expected {_want.item():.6f}; average over the rows that are NOT ignored"
_big = torch.randn(4, 6) * 200
_yb = torch.tensor([0, 1, 2, 3])
assert torch.isfinite(smoothed_cross_entropy(_big, _yb, 0.1)), \
    "large logits give inf or NaN: use log_softmax, not softmax(...).log() (the softmax underflows to 0)"
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("05_label_smoothing", "smoothed_cross_entropy", smoothed_cross_entropy)
### END HIDDEN TESTS
''')

nb.md(r"""
## Exercise 3 — the KL form (2 points)

Write `smoothed_kl(logits, target, smoothing=0.1)` returning $\mathrm{KL}(q\,\|\,p)$ averaged over
the `N` rows (PyTorch calls this reduction `"batchmean"`), for `(N, C)` logits and `(N,)` targets.
Mind the direction (the target distribution $q$ comes first) and $0\log 0 = 0$.
You may not call `F.kl_div`, `nn.KLDivLoss` or `F.cross_entropy`.
""")

nb.solution("smoothed_kl", r'''
def smoothed_kl(logits, target, smoothing=0.1):
    """KL(q || softmax(logits)) with q the smoothed targets, averaged over the N rows."""
    ### BEGIN SOLUTION
    n_classes = logits.shape[-1]
    logp = logits.log_softmax(dim=-1)                                   # (N, C)
    q = torch.full_like(logp, smoothing / n_classes)                    # (N, C)
    q.scatter_(-1, target[:, None], 1.0 - smoothing + smoothing / n_classes)
    return (torch.xlogy(q, q) - q * logp).sum(dim=-1).mean()
    ### END SOLUTION
''')

nb.tests("test_smoothed_kl", 2, r'''
torch.manual_seed(6)
_z = torch.randn(8, 5, dtype=torch.float64) * 2
_y = torch.randint(0, 5, (8,))
_q = 0.9 * F.one_hot(_y, 5).double() + 0.1 / 5
_got = smoothed_kl(_z, _y, 0.1)
assert isinstance(_got, torch.Tensor) and _got.dim() == 0, "return a scalar tensor (the mean over rows)"
_reverse = (_z.softmax(-1) * (_z.log_softmax(-1) - _q.log())).sum(-1).mean()
assert not torch.allclose(_got, _reverse), "you computed KL(p || q): the target distribution q comes first, KL(q || p) = sum q log(q / p)"
_want = F.kl_div(_z.log_softmax(-1), _q, reduction="batchmean")
assert not torch.allclose(_got, _want / 5), \
    "you averaged over the classes too: sum q log(q / p) over the classes, then average over the N rows (batchmean)"
assert torch.allclose(_got, _want), f"got {_got.item():.6f}, F.kl_div(..., reduction='batchmean') gives {_want.item():.6f}"
_entropy = -(_q * _q.log()).sum(-1).mean()
assert torch.allclose(_got, F.cross_entropy(_z, _y, label_smoothing=0.1) - _entropy), "KL must equal the smoothed cross-entropy minus H(q)"
assert abs(smoothed_kl(_q.log(), _y, 0.1).item()) < 1e-9, "KL(q || p) must be 0 when the model predicts p = q exactly"
_k0 = smoothed_kl(_z, _y, 0.0)
assert torch.isfinite(_k0), "smoothing=0 gives NaN: q has zeros and 0 * log 0 must count as 0 (use torch.xlogy(q, q))"
assert torch.allclose(_k0, F.cross_entropy(_z, _y)), "with smoothing=0 the KL equals the ordinary cross-entropy (H(one-hot) = 0)"
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("05_label_smoothing", "smoothed_kl", smoothed_kl)
### END HIDDEN TESTS
''')

nb.md(r"""
## 3. Experiment: confidence and calibration

A model is *calibrated* when, among the predictions it makes with confidence 0.8, about 80 % are
right. We train the same small network twice on a small, noisy 2-D problem with four overlapping
classes (so even the best classifier is often wrong): once with plain cross-entropy and once with
$\varepsilon = 0.1$. Then, on fresh test points, we group predictions by confidence
$\max_c p_c$ and compare each group's mean confidence with its accuracy (a *reliability diagram*).
The *expected calibration error* (ECE) is the gap averaged over the groups, weighted by their size.

The training uses gptref's reference loss, so this cell runs even before your exercises pass.
(About five seconds.)
""")

nb.code(r"""
from gptref.losses import label_smoothing_cross_entropy

torch.set_num_threads(1)  # the matrices here are tiny: extra threads only add overhead

def four_blobs(n, generator):
    # four overlapping Gaussian classes in the plane
    centres = torch.tensor([[0.0, 0.0], [1.5, 0.0], [0.0, 1.5], [1.5, 1.5]])
    y = torch.randint(0, 4, (n,), generator=generator)
    return centres[y] + 0.75 * torch.randn(n, 2, generator=generator), y

def train_classifier(x, y, smoothing, steps=600, seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = label_smoothing_cross_entropy(net(x), y, smoothing)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net

def reliability(probs, y, n_bins=10):
    # per confidence bin: (mean confidence, accuracy, fraction of points); and the ECE
    conf, pred = probs.max(dim=-1)
    correct = (pred == y).float()
    rows, ece = [], 0.0
    for i in range(n_bins):
        in_bin = (conf > i / n_bins) & (conf <= (i + 1) / n_bins)
        if in_bin.any():
            c, a, w = conf[in_bin].mean().item(), correct[in_bin].mean().item(), in_bin.float().mean().item()
            rows.append((c, a, w))
            ece += w * abs(c - a)
    return rows, ece

g = torch.Generator().manual_seed(0)
x_train, y_train = four_blobs(400, g)
x_test, y_test = four_blobs(4000, g)
results = {}
for eps in (0.0, 0.1):
    net = train_classifier(x_train, y_train, eps)
    with torch.no_grad():
        logits_test = net(x_test)
    probs = logits_test.softmax(-1)
    rows, ece = reliability(probs, y_test)
    results[eps] = dict(rows=rows, ece=ece, conf=probs.max(-1).values,
                        acc=(probs.argmax(-1) == y_test).float().mean().item(),
                        nll=F.cross_entropy(logits_test, y_test).item())
    print(f"eps={eps:.1f}: test accuracy {results[eps]['acc']:.3f}, mean confidence "
          f"{results[eps]['conf'].mean():.3f}, ECE {ece:.3f}, test NLL {results[eps]['nll']:.3f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
axes[0].plot([0, 1], [0, 1], "k:", label="perfectly calibrated")
for eps, r in results.items():
    c, a, _ = zip(*r["rows"])
    axes[0].plot(c, a, "o-", label=f"eps={eps} (ECE {r['ece']:.3f})")
    axes[1].hist(r["conf"].numpy(), bins=20, range=(0.25, 1.0), alpha=0.6, label=f"eps={eps}")
axes[0].set(xlabel="mean confidence in bin", ylabel="accuracy in bin", title="reliability diagram")
axes[1].set(xlabel="confidence max_c p_c", ylabel="test points", title="how sure the model is")
axes[0].legend()
axes[1].legend()
fig.tight_layout()
plt.savefig("label_smoothing_calibration.png", dpi=100)
plt.show()
""")

nb.md(r"""
What to see. Without smoothing the network fits its 400 training points too well and claims
confidences near 1 in regions where the classes overlap; its reliability curve lies **below**
the diagonal (over-confident) and its test log-likelihood is poor. With $\varepsilon = 0.1$ the
confidences are capped (no probability can exceed $1 - \varepsilon + \varepsilon/C$ at the loss
minimum), the curve moves towards the diagonal and the ECE drops, at about the same accuracy.
Müller, Kornblith & Hinton (2019) measured the same effect on image and translation models —
and also that smoothing erases information a teacher model could pass on in distillation.
""")

nb.written("q_minimum", 1, r"""
**Question.** With $\varepsilon = 0.1$ and GPT-2's vocabulary of $C = 50\,257$ tokens, what is
the smallest value the smoothed cross-entropy of one token can take, and what probability does
the best possible model give the correct token? What does this mean when you compare the
validation loss of a model trained with label smoothing against one trained without?
""", answer=r"""
The minimum is at p = q, where the loss equals H(q). q_y = 1 - 0.1 + 0.1/50257 ≈ 0.900002 and the
other 50256 tokens get 0.1/50257 ≈ 1.99e-6 each, so H(q) = -0.900002 ln 0.900002 - 0.1 ln(1.99e-6)
≈ 0.0948 + 1.312 ≈ 1.41 nats. The best model gives the correct token probability ≈ 0.9, never 1.
So a smoothed loss is not comparable with an unsmoothed one: it has a floor of about 1.4 nats; to
compare models, evaluate both with the plain cross-entropy (perplexity), which smoothing usually
makes slightly worse even when accuracy or BLEU improves (as Vaswani et al. report).
""")

nb.md(r"""
## Summary

* Label smoothing trains against $q = (1-\varepsilon)\,e_y + \varepsilon/C$ instead of the one-hot $e_y$.
* The smoothed cross-entropy is $(1-\varepsilon)(-\log p_y) + \varepsilon \cdot \frac1C\sum_c(-\log p_c)$,
  computed from `log_softmax`, averaged over the positions that are not `ignore_index`; it is
  exactly `F.cross_entropy(..., label_smoothing=ε)`.
* $\mathrm{KL}(q\|p)$ is the same objective shifted by the constant $H(q)$: the same gradients,
  but a minimum of 0 instead of $H(q)$.
* Smoothing caps the model's confidence, which on a noisy task makes it better calibrated; it
  also raises the floor of the loss, so compare models by their unsmoothed loss.
""")

nb.save()
