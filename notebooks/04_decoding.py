"""Builds solutions/04_decoding/04_decoding.ipynb: greedy decoding, beam search, temperature, top-k and top-p."""

from tools.nbbuild import Notebook

nb = Notebook("04_decoding")

nb.md(r"""
# Day 4 — Choosing the next word

A language model does not write text. It gives, for a prefix $x_{<t}$, a score (a *logit*) for every
token of the vocabulary; a softmax turns them into a distribution $p(x_t \mid x_{<t})$. Turning that
distribution into text is a separate decision, the **decoding** rule, and it changes the output as much
as the model does: the same network can loop ("the the the"), ramble, or read well depending on it.

**Learning goals.** After this notebook you can

1. write greedy decoding, with an end-of-sequence token, for any model that maps ids to logits;
2. explain with a concrete example why greedy decoding does not find the most probable sequence;
3. write beam search with a length penalty and say what it costs (about $K$ times greedy's model calls for
   beam width $K$);
4. write temperature, top-$k$ and top-$p$ (nucleus) filtering, and predict what each does to the
   distribution you sample from.

Throughout, a **model** is any callable that maps a `(B, T)` tensor of token ids to `(B, T, V)` logits;
the logits at position $t$ are the model's guess for token $t+1$. To generate, we only ever read the
last position, `model(seq)[:, -1, :]`.
""")

nb.code(r"""
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_num_threads(1)   # tiny tensors: one thread is fastest, and steady on a shared machine

# what the tests below use: the reference (gptref.decoding), the properties every correct answer has (the
# ladder), and common wrong answers, so that a failing test says what broke and, when it knows, which slip it is
import gptref.decoding as reference
from gptref.grading.explain import call
from gptref.grading.ladders import climb
from gptref.grading.ladders.d04_decoding import LADDERS
from gptref.grading.mistakes.d04_decoding import MISTAKES
""")

nb.md(r"""
## 1. A model you can read: a table of logits

Real models come on Day 9. Here we use a model whose every number we can see: a **bigram table**
$W \in \mathbb{R}^{V \times V}$, where row $W_{a}$ holds the logits of the next token after token $a$.
Optionally the table also depends on the position, $W \in \mathbb{R}^{L \times V \times V}$, so that
the same previous token can be followed differently at different steps. `TableModel` wraps such a
table into a model callable; the graded tests use the same kind of model.
""")

nb.code(r"""
class TableModel:
    # (B, T) ids -> (B, T, V) logits read from a table: (V, V) bigram, or (L, V, V) position-dependent
    def __init__(self, table):
        self.table = table if table.dim() == 3 else table[None]   # (L, V, V)

    def __call__(self, idx):
        T = idx.shape[1]
        pos = torch.arange(T).clamp(max=self.table.shape[0] - 1)  # (T,) positions past L reuse the last table
        return self.table[pos[None, :], idx]                      # (B, T, V)


# a 3-token toy: after token 0 the model prefers 1, after 1 it prefers 2, after 2 it prefers 0
toy = TableModel(torch.tensor([[0.0, 2.0, 1.0], [0.5, 0.0, 3.0], [2.0, 1.0, 0.0]]))
print(toy(torch.tensor([[0, 1, 2]])).shape)      # (B=1, T=3, V=3)
print(F.softmax(toy(torch.tensor([[0]]))[0, -1], dim=-1))
""")

nb.md(r"""
## 2. Sharpening and flattening the distribution

**Temperature.** Dividing the logits by $\tau > 0$ before the softmax,

$$p_\tau(i) = \frac{\exp(z_i / \tau)}{\sum_j \exp(z_j / \tau)},$$

leaves the ranking alone but changes the contrast: $\tau < 1$ sharpens (as $\tau \to 0$ all mass goes to
the argmax, which is greedy decoding), $\tau > 1$ flattens (as $\tau \to \infty$ it becomes uniform).

**Top-$k$.** Keep the $k$ largest logits of each row and set the others to $-\infty$, so their
probability after the softmax is exactly 0. Ties with the $k$-th value are kept. A fixed $k$ is crude:
after "The capital of France is" one token deserves nearly all the mass, after "I like" hundreds do.

**Top-$p$ (nucleus, Holtzman et al. 2019).** Sort the tokens by probability $p_{(1)} \ge p_{(2)} \ge \dots$
and keep the smallest prefix whose mass reaches $p$: token $(r)$ is kept when the mass ranked strictly above
it is still below $p$,

$$\text{keep } (r) \iff \sum_{s < r} p_{(s)} < p .$$

So the most probable token is always kept, and the token that *crosses* $p$ is kept too. The kept set is
small when the model is confident and large when it is not.

All three return logits of the same shape and dtype as their input (`-inf` where removed), working on the
last dimension of any tensor `(..., V)`; sampling then draws from `softmax(filtered logits)`.
""")

nb.md(r"""
**Exercise 1 — temperature.** Write `apply_temperature(logits, temperature)`: the logits `(..., V)` divided
by `temperature` (> 0), same shape and dtype.
""")

nb.solution("apply_temperature", r'''
def apply_temperature(logits, temperature):
    """Rescale logits (..., V) by a temperature > 0: < 1 sharpens, > 1 flattens."""
    ### BEGIN SOLUTION
    return logits / temperature
    ### END SOLUTION
''')

nb.tests("test_apply_temperature", 1, r'''
_cases = [
    dict(logits=torch.tensor([[1.0, 2.0, 4.0], [0.0, -1.0, 3.0]]), temperature=2.0),
    # a row whose maximum is negative and an all-equal row, in float64
    dict(logits=torch.tensor([[-12.0, -11.0, -15.0], [2.5, 2.5, 2.5]], dtype=torch.float64), temperature=0.5),
    dict(logits=torch.randn(2, 3, 7), temperature=1.0),      # any leading dimensions; temperature 1
    dict(logits=torch.randn(5), temperature=0.1),            # one row, a very low temperature
]
climb(apply_temperature, _cases, LADDERS["apply_temperature"], reference.apply_temperature,
      mistakes=MISTAKES["apply_temperature"])
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("04_decoding", "apply_temperature", apply_temperature)
### END HIDDEN TESTS
''')

nb.md(r"""
**Exercise 2 — top-$k$.** Write `top_k_filter(logits, k)`: keep the `k` largest logits of each row of
`(..., V)` (and every logit tied with the $k$-th largest), set the others to `-inf`; a `k` of at least `V`
keeps everything.
""")

nb.solution("top_k_filter", r'''
def top_k_filter(logits, k):
    """Keep the k largest logits of each row (ties with the k-th kept), set the rest to -inf."""
    ### BEGIN SOLUTION
    if k >= logits.shape[-1]:
        return logits.clone()
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]     # (..., 1) the k-th largest of each row
    return logits.masked_fill(logits < kth, float("-inf"))
    ### END SOLUTION
''')

nb.tests("test_top_k_filter", 1, r'''
_cases = [
    dict(logits=torch.tensor([[0.1, 3.0, -1.0, 2.0, 0.5], [5.0, 4.0, 3.0, 2.0, 1.0]]), k=2),
    # three logits tied at the 2nd largest (all kept); a row whose maximum is negative; float64
    dict(logits=torch.tensor([[1.5, 3.0, 1.5, -1.0, 1.5, 0.0], [-20.0, -18.5, -21.0, -18.7, -19.0, -25.0]],
                             dtype=torch.float64), k=2),
    dict(logits=torch.full((1, 4), 2.5), k=1),               # an all-equal row: every logit ties with the largest
    dict(logits=torch.randn(2, 3, 7), k=3),                  # any leading dimensions
    dict(logits=torch.randn(6), k=6),                        # k = V keeps everything
    dict(logits=torch.randn(2, 5), k=10),                    # so does k > V
]
climb(top_k_filter, _cases, LADDERS["top_k_filter"], reference.top_k_filter, mistakes=MISTAKES["top_k_filter"])
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("04_decoding", "top_k_filter", top_k_filter)
### END HIDDEN TESTS
''')

nb.md(r"""
**Exercise 3 — top-$p$.** Write `top_p_filter(logits, p)`: keep token $(r)$ of each row when the probability
mass ranked strictly above it is below `p` (the rule above), set the others to `-inf`. Work in sorted order
(`torch.sort`, `torch.cumsum`) and put the result back in the original token order.
""")

nb.solution("top_p_filter", r'''
def top_p_filter(logits, p):
    """Nucleus filter: keep the most probable tokens until their probability reaches p, -inf the rest."""
    ### BEGIN SOLUTION
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)   # (..., V), order[i] = token at rank i
    probs = F.softmax(sorted_logits, dim=-1)
    mass_above = torch.cumsum(probs, dim=-1) - probs                     # mass ranked strictly above each rank
    remove_sorted = mass_above >= p                                      # rank 0 is never removed: its mass_above is 0
    remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)   # back to vocabulary order
    return logits.masked_fill(remove, float("-inf"))
    ### END SOLUTION
''')

nb.tests("test_top_p_filter", 2, r'''
from gptref.grading.explain import Mistake

# the first mistake on the first input, said with its numbers
_own = MISTAKES["top_p_filter"][0]
_mistakes = (Mistake(_own.says + " (in the second row of the first input, the top token alone (0.9) reaches p=0.6, "
                     "so only it is kept)", _own.answer),) + MISTAKES["top_p_filter"][1:]
_cases = [
    dict(logits=torch.log(torch.tensor([[0.2, 0.5, 0.3], [0.05, 0.05, 0.9]])), p=0.6),
    # the sort order is a 3-cycle (0.6, 0.3, 0.1 sit at ids 1, 2, 0); the maximum is negative; float64
    dict(logits=torch.log(torch.tensor([[0.1, 0.6, 0.3]], dtype=torch.float64)) - 30.0, p=0.8),
    dict(logits=torch.randn(3, 8), p=0.01),                  # a tiny p keeps only the top token
    dict(logits=torch.randn(4, 20, dtype=torch.float64), p=1.0),   # p = 1 keeps every token
    dict(logits=torch.randn(2, 3, 9), p=0.7),                # any leading dimensions
    # probabilities 1/8, 1/2, 1/8, 1/4: the mass ranked above the third token is exactly p = 0.75, so it goes
    dict(logits=torch.log(torch.tensor([[0.125, 0.5, 0.125, 0.25]])), p=0.75),
]
climb(top_p_filter, _cases, LADDERS["top_p_filter"], reference.top_p_filter, mistakes=_mistakes)
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("04_decoding", "top_p_filter", top_p_filter)
### END HIDDEN TESTS
''')

nb.md(r"""
Here is what the three filters do to one next-token distribution: a character-level bigram model counted
from Shakespeare (which letter follows a space?). The model is just counts, but it is a real language
model, and we will decode from it below.
""")

nb.code(r"""
from gptref.data import corpus

text = corpus("shakespeare", split="train")[:300_000]
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
ids = torch.tensor([stoi[c] for c in text])
V = len(chars)
counts = torch.zeros(V, V)
counts.index_put_((ids[:-1], ids[1:]), torch.ones(len(ids) - 1), accumulate=True)   # (V, V) bigram counts
bigram_logits = torch.log(counts + 0.1)                                            # smoothed log-counts
char_model = TableModel(bigram_logits)
decode = lambda seq: "".join(chars[i] for i in seq)

z = bigram_logits[stoi[" "]]                                                       # (V,) after a space
variants = {
    "temperature 1": F.softmax(z, -1),
    "temperature 0.5": F.softmax(apply_temperature(z, 0.5), -1),
    "temperature 2": F.softmax(apply_temperature(z, 2.0), -1),
    "top-k, k=5": F.softmax(top_k_filter(z, 5), -1),
    "top-p, p=0.5": F.softmax(top_p_filter(z, 0.5), -1),
}
top = torch.argsort(variants["temperature 1"], descending=True)[:15]
fig, axes = plt.subplots(1, len(variants), figsize=(17, 3), sharey=True)
for ax, (name, probs) in zip(axes, variants.items()):
    ax.bar(range(15), probs[top].tolist())
    ax.set_xticks(range(15), [repr(chars[i])[1:-1] for i in top.tolist()], fontsize=8)
    ax.set_title(name)
axes[0].set_ylabel("p(next char | ' ')")
plt.tight_layout()
plt.savefig("sampling_filters.png", dpi=90)
plt.show()
""")

nb.md(r"""
## 3. Greedy decoding

Greedy decoding appends the argmax token, one step at a time:

$$x_t = \arg\max_{v}\; p(v \mid x_{<t}).$$

**Exercise 4 — greedy decoding.** Write `greedy(model, idx, max_new_tokens, eos_id=None)` for a batch of
prompts `idx` of shape `(B, T)`.
Return the prompts followed by the new tokens, `(B, T + n)`. Rules:

* the next token's logits are `model(seq)[:, -1, :]` (the last position); ties go to the lowest id, which
  is what `argmax` does;
* with an `eos_id`, a row that has produced it is **finished**: every later token of that row is `eos_id`
  again (padding), and generation stops early, with $n <$ `max_new_tokens`, as soon as every row is finished.
""")

nb.solution("greedy", r'''
def greedy(model, idx, max_new_tokens, eos_id=None):
    """Append the most probable token max_new_tokens times; idx (B, T) -> (B, T + n)."""
    ### BEGIN SOLUTION
    seq = idx
    done = torch.zeros(idx.shape[0], dtype=torch.bool)          # (B,) rows that produced eos_id
    for _ in range(max_new_tokens):
        logits = model(seq)[:, -1, :]                            # (B, V) the next token's logits
        token = logits.argmax(dim=-1)                            # (B,)
        if eos_id is not None:
            token = token.masked_fill(done, eos_id)              # finished rows are padded with eos_id
            done = done | (token == eos_id)
        seq = torch.cat([seq, token[:, None]], dim=1)            # (B, T + 1)
        if eos_id is not None and bool(done.all()):
            break
    return seq
    ### END SOLUTION
''')

nb.tests("test_greedy", 2, r'''
def _running_sum_model(idx):
    """(B, T) -> (B, T, 5) logits that favour (the sum of all tokens so far) mod 5: it reads the whole sequence."""
    return F.one_hot(idx.cumsum(-1) % 5, 5).float() * 3.0


_cases = [
    dict(model=toy, idx=torch.tensor([[0], [2]]), max_new_tokens=4, eos_id=None),
    dict(model=_running_sum_model, idx=torch.tensor([[1, 3], [2, 2]]), max_new_tokens=4, eos_id=None),
    # toy's token 2 plays eos: row 1 produces it at once, row 0 after 2 steps; after eos the model would say 0,
    # so row 1 must be padded, and generation stops when both have finished, before max_new_tokens=6
    dict(model=toy, idx=torch.tensor([[0], [1]]), max_new_tokens=6, eos_id=2),
    dict(model=toy, idx=torch.tensor([[2, 1]]), max_new_tokens=3, eos_id=0),   # one row, a 2-token prompt
    dict(model=toy, idx=torch.tensor([[1, 0]]), max_new_tokens=0, eos_id=None),  # nothing to generate
]
climb(greedy, _cases, LADDERS["greedy"], reference.greedy, mistakes=MISTAKES["greedy"])
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("04_decoding", "greedy", greedy)
### END HIDDEN TESTS
''')

nb.code(r"""
from gptref.decoding import sample

prompt = torch.tensor([[stoi["T"], stoi["h"], stoi["e"]]])
print("greedy:        ", repr(decode(greedy(char_model, prompt, 60)[0].tolist())))
g = torch.Generator().manual_seed(0)
for temp in (0.5, 1.0):
    out = sample(char_model, prompt, 60, temperature=temp, top_p=0.9, generator=g)
    print(f"sample T={temp}: ", repr(decode(out[0].tolist())))
""")

nb.md(r"""
Read the greedy line above: greedy decoding from the bigram model falls into a loop, because the argmax
after each character depends only on that character, so once a character comes back the same characters
follow. The sampled lines do not loop (it is still a bigram model, so they are letter soup, but letter soup
with English statistics).

## 4. Greedy is not the most probable sequence

The probability of a whole continuation is the product of its steps,
$\log p(x_{1:n}) = \sum_t \log p(x_t \mid x_{<t})$. Greedy maximizes each factor on its own, and a
locally best first step can lead to a flat, unsure second step. The table below is built to show it:
after the start token `S`, `A` is the best first token (0.5 against `B`'s 0.4), but after `A` the model is
unsure (four tokens at 0.25) while after `B` it is sure (`x` at 0.9). So $p(A\,\cdot) \le 0.125$ while
$p(B\,x) = 0.36$.
""")

nb.code(r"""
names = ["S", "A", "B", "x", "y", "z", "w"]
P = torch.full((7, 7), 1e-9)
P[0, 1], P[0, 2], P[0, 3] = 0.5, 0.4, 0.1       # after S
P[1, 3:7] = 0.25                                  # after A: unsure
P[2, 3], P[2, 4] = 0.9, 0.1                       # after B: sure
P[3:, 3:] = 0.25                                  # after the rest: anything
two_step = TableModel(torch.log(P / P.sum(-1, keepdim=True)))
start = torch.tensor([[0]])

seq_probs = {}
for a in range(1, 7):                             # brute force: every two-token continuation
    for b in range(1, 7):
        lp = F.log_softmax(two_step(torch.tensor([[0, a]]))[0], -1)   # (2, V)
        seq_probs[names[a] + names[b]] = (lp[0, a] + lp[1, b]).exp().item()
best = max(seq_probs, key=seq_probs.get)
greedy_seq = "".join(names[i] for i in greedy(two_step, start, 2)[0, 1:].tolist())
print(f"greedy picks {greedy_seq} (p = {seq_probs[greedy_seq]:.3f}); "
      f"the most probable is {best} (p = {seq_probs[best]:.3f})")

shown = sorted(seq_probs, key=seq_probs.get, reverse=True)[:12]
colors = ["tab:green" if s == best else "tab:red" if s == greedy_seq else "tab:gray" for s in shown]
plt.figure(figsize=(8, 3))
plt.bar(shown, [seq_probs[s] for s in shown], color=colors)
plt.ylabel("p(continuation)")
plt.title("two-token continuations: most probable (green) against greedy's (red)")
plt.tight_layout()
plt.savefig("greedy_vs_best.png", dpi=90)
plt.show()
""")

nb.md(r"""
## 5. Beam search

Beam search keeps the $K$ best partial hypotheses (the *beam*) instead of one. At every step it scores
every one-token extension of every live hypothesis by its summed log-probability
$s(x_{1:t}) = \sum_{i \le t} \log p(x_i \mid x_{<i})$, and keeps the best $K$. A hypothesis that
produces `eos_id` is **finished**: it leaves the beam and waits in a list of finished hypotheses.

Summed log-probabilities favour short outputs (every extra token adds a negative number), so finished
hypotheses are compared after a **length penalty** (Wu et al. 2016 use a variant of this):

$$\text{score}(y) = \frac{\sum_{t=1}^{|y|} \log p(y_t \mid y_{<t})}{|y|^{\alpha}},$$

where $|y|$ counts the generated tokens, the `eos_id` included. $\alpha = 0$ is the raw sum, $\alpha = 1$
the mean log-probability per token; larger $\alpha$ favours longer outputs.

**Exercise 5 — beam search.** Write
`beam_search(model, idx, max_new_tokens, beam_size=4, length_penalty=1.0, eos_id=None)` for one
prompt `idx` of shape `(1, T)`. Follow this procedure exactly (the tests compare with it):

1. the beam starts as the prompt alone, with summed log-prob 0;
2. each step (at most `max_new_tokens`), compute the log-softmax of the next-token logits of every live
   beam (run them as one batch) and rank all `n_live × V` extensions by summed log-prob, best first;
3. walk down that ranking: an extension ending in `eos_id` goes to the finished list (scored with the
   length penalty); any other becomes a live beam of the next step, until `beam_size` live beams are found;
4. after the last step, every live beam is finished too (by length);
5. return the best `beam_size` finished hypotheses as a list of `(tokens, score)`, best first, where
   `tokens` is a list of the **generated** ids (the prompt excluded) and `score` a float.

Compute the log-probabilities in float64 (`.double()`) so that sums of many small numbers do not lose
precision.
""")

nb.solution("beam_search", r'''
def beam_search(model, idx, max_new_tokens, beam_size=4, length_penalty=1.0, eos_id=None):
    """The beam_size best continuations of idx (1, T) as (generated tokens, score), best first."""
    ### BEGIN SOLUTION
    def normalized(total, n):
        return total / n ** length_penalty

    prompt_len = idx.shape[1]
    seqs = idx                                                   # (n_live, T + step) live beams
    sums = torch.zeros(1, dtype=torch.float64)                   # (n_live,) their summed log-probs
    finished = []
    for step in range(max_new_tokens):
        logp = F.log_softmax(model(seqs)[:, -1, :].double(), dim=-1)   # (n_live, V)
        V = logp.shape[1]
        cand = (sums[:, None] + logp).flatten()                  # (n_live * V,) every one-token extension
        rows, tokens, new_sums = [], [], []
        for flat in torch.argsort(cand, descending=True).tolist():
            row, token = divmod(flat, V)
            if token == eos_id:
                generated = seqs[row, prompt_len:].tolist() + [token]
                finished.append((generated, normalized(cand[flat].item(), len(generated))))
                continue
            rows.append(row)
            tokens.append(token)
            new_sums.append(cand[flat].item())
            if len(rows) == beam_size:
                break
        seqs = torch.cat([seqs[rows], torch.tensor(tokens)[:, None]], dim=1)   # (beam_size, T + step + 1)
        sums = torch.tensor(new_sums, dtype=torch.float64)
    for row in range(seqs.shape[0]):                             # still alive at the end: finished by length
        generated = seqs[row, prompt_len:].tolist()
        if generated:
            finished.append((generated, normalized(sums[row].item(), len(generated))))
    finished.sort(key=lambda hyp: hyp[1], reverse=True)
    return finished[:beam_size]
    ### END SOLUTION
''')

nb.tests("test_beam_search", 3, r'''
import itertools
from gptref.grading.ladders.d04_decoding import same_beams


_t = TableModel(torch.randn(6, 5, 5, generator=torch.Generator().manual_seed(3)) * 2)
_v = TableModel(torch.randn(4, 3, 3, generator=torch.Generator().manual_seed(4)) * 2)
_w = torch.zeros(2, 4, 4)           # the third-best first token (3) leads to a sure second one (0)
_w[0, 0] = torch.tensor([-10.0, 1.0, 0.9, 0.8])
_w[1, 3, 0] = 20.0
_e = torch.full((3, 3, 3), -5.0) - torch.arange(27.0).reshape(3, 3, 3) * 1e-3   # no two logits tied
_e[0, :, 1] = 0.0                                    # step 1: token 1, almost surely
_e[1, :, 2], _e[1, :, 0] = 0.0, -0.1                 # step 2: eos (token 2) or token 0
_f = torch.full((3, 5, 5), -5.0)    # eos (4) is the second-best first token; then token 2, surely
_f[0, 3] = torch.tensor([2.0, 1.0, -5.0, -5.0, 1.5])
_f[1:, :, 2] = 8.0
_g = torch.full((3, 4, 4), -3.0) - torch.arange(48.0).reshape(3, 4, 4) * 1e-3   # no two logits tied
_g[0, :, 1], _g[1, :, 3], _g[2, :, 2] = 0.0, 0.0, 0.0   # tokens 1 then 3, then eos (2): 3 tokens, the eos included
_plain = dict(length_penalty=1.0, eos_id=None)
_cases = [
    # the worked example: with beam_size=2 the best continuation is B x = [2, 3], scored (log 0.4 + log 0.9) / 2
    dict(_plain, model=two_step, idx=start, max_new_tokens=2, beam_size=2),
    dict(_plain, model=_t, idx=torch.tensor([[1]]), max_new_tokens=5, beam_size=1),     # beam_size=1 is greedy
    dict(_plain, model=TableModel(_w), idx=torch.tensor([[0]]), max_new_tokens=2, beam_size=2),  # K beams miss 3 0
    # a beam wide enough to hold every prefix is exact, for alpha = 0, 1 and 2
    *[dict(model=_v, idx=torch.tensor([[0]]), max_new_tokens=3, beam_size=9, length_penalty=_alpha, eos_id=None)
      for _alpha in (0.0, 1.0, 2.0)],
    # a finished hypothesis of 3 tokens, eos included, under alpha = 0.5: its score is its sum / 3 ** 0.5
    dict(model=TableModel(_g), idx=torch.tensor([[0]]), max_new_tokens=3, beam_size=2, length_penalty=0.5, eos_id=2),
    # eos: finished hypotheses end with eos_id, and their length counts it
    dict(model=TableModel(_e), idx=torch.tensor([[0]]), max_new_tokens=3, beam_size=2, length_penalty=1.0, eos_id=2),
    # eos finishes first, then ranks last (alpha 1) or first (alpha 0)
    *[dict(model=TableModel(_f), idx=torch.tensor([[3]]), max_new_tokens=3, beam_size=2, length_penalty=_alpha,
           eos_id=4) for _alpha in (1.0, 0.0)],
]
_answers = climb(beam_search, _cases, LADDERS["beam_search"], reference.beam_search,
                 mistakes=MISTAKES["beam_search"], compare=same_beams)

# the beam holds at most K hypotheses per step: count the rows the model is run on at each length
_rows = {}
def _counting(seq):
    _rows[seq.shape[1]] = _rows.get(seq.shape[1], 0) + seq.shape[0]
    return _t(seq)
call(beam_search, _counting, torch.tensor([[0]]), 5, beam_size=3)
assert max(_rows.values()) <= 3, "your beam keeps K^2 candidates: keep only the best K"

# the wide beams against brute force over all 27 continuations
for _alpha, _got in zip((0.0, 1.0, 2.0), _answers[3:6]):
    _brute = {}
    for _seq in itertools.product(range(3), repeat=3):
        _lp = F.log_softmax(_v(torch.tensor([[0, *_seq]]))[0, :-1].double(), -1)   # (3, V)
        _brute[_seq] = sum(_lp[i, s].item() for i, s in enumerate(_seq)) / 3 ** _alpha
    _exact = max(_brute, key=_brute.get)
    assert tuple(_got[0][0]) == _exact, f"length_penalty={_alpha}: brute force finds {list(_exact)}, you {_got[0]}"
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("04_decoding", "beam_search", beam_search)
### END HIDDEN TESTS
''')

nb.md(r"""
### What beam search costs

With beam width $K$, every step runs the model on the $K$ live beams, so $T$ steps run it on about $K T$
sequences where greedy runs it on $T$: beam search costs about $K$ times greedy's model calls. On top, each
step ranks the $K V$ extensions (the procedure above sorts them all; taking each beam's own top $K$ first
would leave $K^2$, since only those can survive). The cell below runs your `beam_search` on a bigger random
table ($V = 300$, $T = 20$) for growing $K$ and plots two things: the number of sequences the model was run
on (counted) next to the line $K T$, and the time relative to $K = 1$ next to the line $K$.
""")

nb.code(r"""
big = TableModel(torch.randn(21, 300, 300, generator=torch.Generator().manual_seed(0)))
Ks = [1, 2, 4, 8, 16, 32]
REPEATS = 5                                 # timings on a shared machine vary: report the median of 5 runs
model_rows, seconds = [], []
for K in Ks:
    runs = []
    def counting(seq):                      # the table model, counting the sequences it is run on
        runs.append(seq.shape[0])
        return big(seq)
    times = []
    for _ in range(REPEATS):
        runs.clear()
        t0 = time.perf_counter()
        beam_search(counting, torch.tensor([[0]]), 20, beam_size=K)
        times.append(time.perf_counter() - t0)
    seconds.append(sorted(times)[REPEATS // 2])
    model_rows.append(sum(runs))
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.5))
ax1.loglog(Ks, model_rows, "o-", label="sequences the model ran on (counted)")
ax1.loglog(Ks, [K * 20 for K in Ks], "k--", label="K T")
ax1.set_xlabel("beam width K"); ax1.set_title("model calls"); ax1.legend()
ax2.loglog(Ks, [t / seconds[0] for t in seconds], "o-", label="median time / median time at K = 1")
ax2.loglog(Ks, Ks, "k--", label="K")
ax2.set_xlabel("beam width K"); ax2.set_title(f"time (median of {REPEATS} runs)"); ax2.legend()
plt.tight_layout()
plt.savefig("beam_cost.png", dpi=90)
plt.show()
for K, n, t in zip(Ks, model_rows, seconds):
    print(f"K = {K:2d}: model ran on {n:4d} sequences (K T = {K * 20:4d}), median {t * 1000:6.1f} ms, "
          f"{t / seconds[0]:4.1f} x K = 1")
""")

nb.md(r"""
What the measurement shows. The count of model calls is exact: the printed counts sit just under $K T$
(the first step has a single live beam, so the count is $1 + K(T-1)$). For a real network, where each
forward pass dominates, that count is the cost, and beam search costs about $K$ times greedy decoding.
The time column is a different thing: here a model call is one table lookup, so the time measures the
bookkeeping (Python, sorting $K V$ numbers), not model work. Compare the printed median ratios with $K$;
they come from one machine at one moment, and on a busy machine they change from run to run (that is why
they are medians of 5 runs), so read them as this run's numbers, not as a rule for how beam search scales.

### What beam search returns from the bigram model

The cell below runs your `beam_search` ($K = 4$) on the Shakespeare bigram model from the prompt "The" and
prints its best continuation under greedy's. For each line it also prints the share of distinct character
3-grams (1.0: no three characters ever repeat; near 0: one short loop).
""")

nb.code(r"""
def distinct_3grams(text):
    grams = [text[i:i + 3] for i in range(len(text) - 2)]
    return len(set(grams)) / len(grams)

greedy_text = decode(greedy(char_model, prompt, 40)[0].tolist())
beam_tokens, beam_score = beam_search(char_model, prompt, 40, beam_size=4)[0]
beam_text = decode(prompt[0].tolist() + list(beam_tokens))
sample_text = decode(sample(char_model, prompt, 40, temperature=1.0, top_p=0.9,
                            generator=torch.Generator().manual_seed(0))[0].tolist())
for name, line in (("greedy", greedy_text), ("beam K=4", beam_text), ("sample", sample_text)):
    print(f"{name:9s} distinct 3-grams {distinct_3grams(line):.2f}  {line!r}")
same = "the same as" if beam_text == greedy_text else "not the same as"
print(f"beam search's best continuation is {same} greedy's")
""")

nb.md(r"""
The last line printed says whether beam search found anything but greedy's loop on this model, and the
3-gram shares say how repetitive each of the three lines is: compare beam search's with greedy's and the
sample's before you answer the question below.
""")

nb.written("q_beam_open_ended", 2, r"""
**Written question.** Beam search with $K = 5$ is a standard choice for machine translation, yet
story-writing and chat systems almost always *sample* (with temperature and top-$p$) instead. Using what
you saw in this notebook (the bigram model's greedy loop, the worked example, the length penalty), explain
in a few sentences why maximizing probability is a good goal for translation but a poor one for
open-ended text, and what top-$p$ sampling does better than plain sampling at temperature 1.
""", answer=r"""
In translation the output is tightly determined by the input: there are few good answers and they are
the high-probability ones, so searching for the most probable sequence (beam search, which gets closer to
it than greedy) is sensible, and a length penalty stops it from preferring too-short translations. In
open-ended text many continuations are good, and the single most probable sequence is bland and
repetitive: high-probability text tends to repeat itself (the bigram model's greedy loop, and real models'
"I don't know. I don't know."), because each repetition makes the next more likely. Human text is not the
argmax; it regularly contains tokens of moderate probability. Sampling reproduces that variety. Plain
sampling at temperature 1, though, draws from the long tail of very unlikely tokens (each rare, but
together a real share of the mass), and one bad token derails the rest. Top-p cuts that tail adaptively:
it keeps few tokens when the model is confident and many when it is not, unlike a fixed top-k.
""")

nb.md(r"""
## Summary

* A decoder turns next-token distributions into text; it is a choice separate from the model.
* **Greedy** takes the argmax each step. It is fast and deterministic but not the most probable sequence:
  a locally best token can lead to an unsure continuation ($0.5 \cdot 0.25 < 0.4 \cdot 0.9$).
* **Beam search** keeps the $K$ best partial hypotheses by summed log-probability, finishes those that
  produce EOS, and compares finished hypotheses by $\sum \log p / |y|^\alpha$. It runs the model on about
  $K T$ sequences, $K$ times greedy; what it returns from the bigram model, and how repetitive that is, is
  printed in section 5.
* **Temperature** divides the logits ($\tau<1$ sharpens, $\tau>1$ flattens); **top-$k$** keeps a fixed
  number of tokens; **top-$p$** keeps the smallest set reaching mass $p$, adapting to the model's confidence.
* The reference implementations are in `gptref.decoding` (`greedy`, `sample`, `beam_search`), which also use
  a model's KV cache when it has one; Day 9's GPT decodes through them.
""")

nb.save()
