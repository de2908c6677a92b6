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

$$\mathrm{KL}(q \,\|\, p) = \sum_c q_c \log\frac{q_c}{p_c}
= \underbrace{-\sum_c q_c \log p_c}_{\mathcal{L}_\varepsilon}
- \underbrace{\Big(-\sum_c q_c\log q_c\Big)}_{H(q)} .$$

The entropy $H(q)$ does not depend on the model, so both forms have the same gradient and the
same minimizer. They differ only in their value: the smoothed cross-entropy can never go below
$H(q) > 0$, while the KL reaches 0 exactly when $p = q$. (The Annotated Transformer trains with
`nn.KLDivLoss` for this reason.) By convention $0 \log 0 = 0$, which matters when $\varepsilon = 0$:
use `torch.xlogy(q, q)` for $q \log q$.

A worked example, with $C = 4$, $\varepsilon = 0.1$, $y = 2$: the cell below prints $q$, the smoothed
cross-entropy computed by hand next to PyTorch's, and the entropy $H(q)$.
""")

nb.code(r"""

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

# what the tests below use: the properties every correct answer has (the ladder) and common wrong answers,
# so that a failing test says what broke and, when it knows, which slip it is
from gptref.grading.explain import call
from gptref.grading.ladders import climb
from gptref.grading.ladders.d05_label_smoothing import LADDERS, value
from gptref.grading.mistakes.d05_label_smoothing import MISTAKES

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
def _one_hot_mix(target, n_classes, smoothing=0.1):     # the definition, written with torch's one_hot
    return (1 - smoothing) * F.one_hot(target, n_classes).float() + smoothing / n_classes

_cases = [
    dict(target=torch.tensor([2, 0, 3]), n_classes=4, smoothing=0.1),
    dict(target=torch.tensor([[1, 0], [4, 4]]), n_classes=5, smoothing=0.2),   # (B, T) targets
    dict(target=torch.tensor([0, 1, 1]), n_classes=6, smoothing=0.3),          # classes 2..5 absent
    dict(target=torch.tensor([1, 0]), n_classes=2, smoothing=0.0),             # smoothing 0: one-hot; C = 2
    dict(target=torch.tensor([3]), n_classes=4, smoothing=1.0),                # smoothing 1: uniform
    dict(target=torch.tensor([], dtype=torch.long), n_classes=4, smoothing=0.1),   # an empty batch
]
_labels = ["3 targets, C = 4, eps 0.1", "(B, T) targets", "classes 2..5 absent from the batch",
           "eps 0 (one-hot), C = 2", "eps 1 (uniform)", "an empty batch"]
climb(smoothed_targets, _cases, LADDERS["smoothed_targets"], _one_hot_mix, mistakes=MISTAKES["smoothed_targets"],
      labels=_labels)
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
def _torch_ce(logits, target, smoothing=0.1, ignore_index=-100):
    return F.cross_entropy(logits, target, label_smoothing=smoothing, ignore_index=ignore_index)

_g = torch.Generator().manual_seed(5)
_z = torch.randn(6, 5, generator=_g, dtype=torch.float64) * 2
_cases = [
    dict(logits=_z, target=torch.tensor([0, 4, 2, 2, 1, 3]), smoothing=0.1, ignore_index=-100),
    dict(logits=_z, target=torch.tensor([0, -100, 2, -100, 1, 3]), smoothing=0.1, ignore_index=-100),  # ignored rows
    dict(logits=_z[:4], target=torch.tensor([1, 3, 3, 0]), smoothing=0.2, ignore_index=3),  # ignore a class id
    # a row of equal logits and a row whose largest logit is negative
    dict(logits=torch.stack([torch.zeros(5, dtype=torch.float64), _z[0] - 60]), target=torch.tensor([1, 4]),
         smoothing=0.3, ignore_index=-100),
    dict(logits=_z[:1, :2], target=torch.tensor([1]), smoothing=0.0, ignore_index=-100),   # N = 1, C = 2, eps 0
    dict(logits=_z.float(), target=torch.tensor([0, 4, 2, 2, 1, 3]), smoothing=1.0, ignore_index=-100),  # float32
    # large float32 logits: softmax underflows to 0 for all but the top class
    dict(logits=torch.randn(4, 6, generator=_g) * 200, target=torch.tensor([0, 1, 2, 3]), smoothing=0.1,
         ignore_index=-100),
]
_labels = ["6 rows, none ignored, eps 0.1", "rows with target -100 ignored", "ignore_index=3 (a class id) ignored",
           "a row of equal logits and a row whose largest logit is negative, eps 0.3", "N = 1, C = 2, eps 0 (plain CE)",
           "float32, eps 1 (the uniform term alone)", "large float32 logits (softmax underflows to 0)"]
climb(smoothed_cross_entropy, _cases, LADDERS["smoothed_cross_entropy"], _torch_ce,
      mistakes=MISTAKES["smoothed_cross_entropy"], compare=value("loss", "F.cross_entropy(label_smoothing=...)"),
      labels=_labels)
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
def _torch_kl(logits, target, smoothing=0.1):       # torch's KL of the smoothed targets, batchmean
    q = (1 - smoothing) * F.one_hot(target, logits.shape[-1]).to(logits.dtype) + smoothing / logits.shape[-1]
    return F.kl_div(logits.log_softmax(-1), q, reduction="batchmean")

_g = torch.Generator().manual_seed(6)
_z = torch.randn(8, 5, generator=_g, dtype=torch.float64) * 2
_y = torch.randint(0, 5, (8,), generator=_g)
_q = 0.9 * F.one_hot(_y, 5).double() + 0.1 / 5
_cases = [
    dict(logits=_z, target=_y, smoothing=0.1),
    dict(logits=_q.log(), target=_y, smoothing=0.1),              # the model predicts p = q exactly: KL = 0
    dict(logits=torch.stack([torch.zeros(5, dtype=torch.float64), _z[0] - 60]), target=_y[:2], smoothing=0.3),
    dict(logits=_z[:1, :2].float(), target=torch.tensor([1]), smoothing=1.0),   # N = 1, C = 2, float32, eps 1
    dict(logits=torch.randn(4, 6, generator=_g) * 200, target=torch.tensor([0, 1, 2, 3]), smoothing=0.1),
    dict(logits=_z, target=_y, smoothing=0.0),                    # q has zeros: 0 log 0 counts as 0
]
_labels = ["8 rows, eps 0.1", "p = q exactly (KL 0)", "a row of equal logits and a row of negative logits, eps 0.3",
           "N = 1, C = 2, float32, eps 1", "large float32 logits (softmax underflows to 0)", "eps 0 (q has zeros)"]
_got = climb(smoothed_kl, _cases, LADDERS["smoothed_kl"], _torch_kl, mistakes=MISTAKES["smoothed_kl"],
             compare=value("KL", "F.kl_div(..., reduction='batchmean')"), labels=_labels)
_entropy = -(_q * _q.log()).sum(-1).mean()
_ce = F.cross_entropy(_z, _y, label_smoothing=0.1)
assert torch.allclose(_got[0], _ce - _entropy), \
    (f"KL must equal the smoothed cross-entropy minus H(q): {_ce.item():.6f} - {_entropy.item():.6f}, "
     f"got {_got[0].item():.6f}")
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
""")

nb.code(r"""
from gptref.losses import label_smoothing_cross_entropy

torch.set_num_threads(1)  # the matrices here are tiny: extra threads only add overhead

def four_blobs(n, generator):
    # four overlapping Gaussian classes in the plane
    centres = torch.tensor([[0.0, 0.0], [1.5, 0.0], [0.0, 1.5], [1.5, 1.5]])
    y = torch.randint(0, 4, (n,), generator=generator)
    return centres[y] + 0.75 * torch.randn(n, 2, generator=generator), y

def train_classifier(x, y, smoothing, steps=300, seed=0):   # full-batch Adam on the 400 training points
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

for eps, r in results.items():
    over = sum(w for c, a, w in r["rows"] if a < c)   # share of test points in bins with accuracy < confidence
    print(f"eps={eps:.1f}: largest confidence {r['conf'].max():.3f}; {over:.2f} of the test points lie in "
          f"bins where accuracy < confidence (over-confident)")
print(f"1 - eps + eps / C for eps = 0.1, C = 4: {1 - 0.1 + 0.1 / 4:.3f}")

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
What to see: read the lines printed above. The first two compare the two networks' test accuracy,
mean confidence, ECE and test NLL; the next two give each network's largest confidence and the share of
test points in bins where the accuracy is below the confidence (the reliability curve below the diagonal:
over-confident). $1 - \varepsilon + \varepsilon/C$, the last line, is where the smoothed loss of a single
point is smallest; compare it with the largest confidence printed for $\varepsilon = 0.1$: the bound is
about the loss of one point, and the trained network, which fits all points at once, need not stay under
it. The plot shows the same numbers per confidence bin. This is one small problem, one seed and one pair of
networks; Müller, Kornblith & Hinton (2019) measured calibration with and without smoothing on image and
translation models, and also found that smoothing erases information a teacher model could pass on in
distillation.
""")

nb.written("q_minimum", 1, r"""
**Question.** With $\varepsilon = 0.1$ and GPT-2's vocabulary of $C = 50\,257$ tokens, what is
the smallest value the smoothed cross-entropy of one token can take, and what probability does
the best possible model give the correct token? What does this mean when you compare the
validation loss of a model trained with label smoothing against one trained without?
""", answer=r"""
The minimum is at p = q, where the loss equals H(q). q_y = 1 - 0.1 + 0.1/50257 ≈ 0.900002 and the
other 50256 tokens get 0.1/50257 ≈ 1.99e-6 each, so H(q) = -0.900002 ln 0.900002 - 0.1 ln(1.99e-6)
≈ 0.0948 + 1.313 ≈ 1.41 nats. The best model gives the correct token probability ≈ 0.9, never 1.
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
* Smoothing moves the optimum of each point's loss from confidence 1 to $1 - \varepsilon + \varepsilon/C$;
  what that did to calibration on this notebook's noisy problem is in the lines section 3 prints. It
  also raises the floor of the loss, so compare models by their unsmoothed loss.
""")

nb.save()
