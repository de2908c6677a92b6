"""Builds solutions/06_bert_vs_gpt/06_bert_vs_gpt.ipynb: encoder (BERT) against decoder (GPT) models."""

from tools.nbbuild import Notebook

nb = Notebook("06_bert_vs_gpt")

nb.md(r"""
# Day 6 — Encoder and decoder models: BERT against GPT

In 2018 two papers took the same transformer and pretrained it on unlabelled text in two different ways.
**GPT** (Radford et al.) kept the decoder: each position sees only the positions before it and predicts the
next token. **BERT** (Devlin et al.) kept the encoder: each position sees the whole sentence, and the model
fills in tokens that were hidden. The networks are nearly identical; what differs is one attention mask and
one training objective, and that difference decides what each model is good at.

**Learning goals.** After this notebook you can

1. build the bidirectional (BERT) and the causal (GPT) attention masks, with padding;
2. write BERT's masked-language-model corruption, the 80/10/10 rule, and say why it is not simply "replace
   15% of the tokens by `[MASK]`";
3. write GPT-1's fine-tuning objective $L_3 = L_2 + \lambda L_1$;
4. train a tiny BERT and a tiny GPT with the same parameters, text and steps over several seeds, and
   compare fill-in-the-blank with next-token prediction by mean and spread;
5. load GPT-2's weights correctly: explain its `Conv1D` layers and why they need a transpose.
""")

nb.code(r"""
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_num_threads(1)   # tiny tensors: one thread is fastest, and steady on a shared machine

# what the tests below use: the properties every correct answer has (the ladder) and common wrong answers,
# so that a failing test says what broke and, when it knows, which slip it is
from gptref.grading.explain import call
from gptref.grading.ladders import climb, first_broken
from gptref.grading.ladders.d06_bert_vs_gpt import LADDERS, objective_value
from gptref.grading.mistakes.d06_bert_vs_gpt import MISTAKES
""")

nb.md(r"""
## 1. Two objectives, two masks

Given tokens $x_1, \dots, x_T$:

* **Causal language modelling (GPT).** Maximize $\sum_t \log p_\theta(x_t \mid x_{<t})$. Position $t$'s
  representation may depend only on $x_{\le t}$, otherwise the model could read the answer. The attention
  mask is lower-triangular: query $i$ may attend to key $j$ iff $j \le i$.
* **Masked language modelling (BERT).** Corrupt the input, $\tilde x = \mathrm{corrupt}(x)$, and maximize
  $\sum_{t \in M} \log p_\theta(x_t \mid \tilde x)$ over the set $M$ of selected positions. The answer is
  hidden in the *input*, so the attention can be **bidirectional**: every query sees every key.

Both models batch sentences of different lengths by padding, and no query may attend to a padding key.
With `key_is_token` of shape `(B, T)` (True for real tokens), the mask is `(B, 1, T, T)` (the 1 broadcasts
over heads), True where query $i$ may attend to key $j$:

$$\text{allowed}_{b,i,j} = \text{key\_is\_token}_{b,j} \;\wedge\; (\text{not causal} \;\vee\; j \le i).$$

(Padded *queries* still get a row; their outputs are ignored by the loss.)

**Exercise.** Write `attention_mask(key_is_token, causal)`: from the `(B, T)` bool `key_is_token` return the
`(B, 1, T, T)` bool mask of the formula above, bidirectional when `causal` is False (BERT) and also
lower-triangular when it is True (GPT).
""")

nb.solution("attention_mask", r'''
def attention_mask(key_is_token, causal):
    """(B, T) bool -> (B, 1, T, T) bool, True where query i may attend key j."""
    ### BEGIN SOLUTION
    B, T = key_is_token.shape
    allowed = key_is_token[:, None, None, :].expand(B, 1, T, T)             # (B, 1, T, T) real keys only
    if causal:
        allowed = allowed & torch.ones(T, T, dtype=torch.bool).tril()        # key j <= query i
    return allowed
    ### END SOLUTION
''')

nb.tests("test_attention_mask", 2, r'''
def _mask_by_formula(key_is_token, causal):   # allowed[b, 0, i, j] = key_is_token[b, j] and (j <= i or not causal)
    B, T = key_is_token.shape
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    return (key_is_token[:, None, None, :] & ((j <= i) | (not causal))).expand(B, 1, T, T)

_right = torch.tensor([[True, True, True, False], [True, True, True, True]])     # right padding
_left = torch.tensor([[False, False, True, True, True]])                          # left padding, B = 1
_cases = [dict(key_is_token=_right, causal=False), dict(key_is_token=_right, causal=True),
          dict(key_is_token=_left, causal=True), dict(key_is_token=_left, causal=False),
          dict(key_is_token=torch.tensor([[True]]), causal=True),                 # T = 1
          dict(key_is_token=torch.tensor([[True, True, False], [False, False, False]]), causal=True)]  # all padding
_labels = ["right padding, bidirectional", "right padding, causal", "left padding, causal",
           "left padding, bidirectional", "T = 1", "a row that is all padding, causal"]
climb(attention_mask, _cases, LADDERS["attention_mask"], _mask_by_formula, mistakes=MISTAKES["attention_mask"],
      labels=_labels)
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("06_bert_vs_gpt", "attention_mask", attention_mask)
### END HIDDEN TESTS
''')

nb.md(r"""
## 2. BERT's corruption: the 80/10/10 rule

BERT selects each non-special token independently with probability $p = 0.15$. A selected token is then

* replaced by `[MASK]` with probability 0.8,
* replaced by a uniformly random token with probability 0.1,
* left unchanged with probability 0.1,

and the loss is computed on the selected positions only (label $-100$, PyTorch's `ignore_index`,
everywhere else). Why not always `[MASK]`? Because `[MASK]` never occurs when the model is fine-tuned or
used, so a model that only ever predicted at `[MASK]` positions could learn features useful only there.
With the random and unchanged cases, *any* input token might be one the model must reconstruct, so it has
to keep a good representation of every position. Special tokens (`[CLS]`, `[SEP]`, padding) are never selected.

**Exercise.** Write `mask_tokens(ids, mask_id, vocab_size, p=0.15, special_ids=(), generator=None)`
returning `(inputs, labels)`, both of `ids`' shape and dtype. Draw all randomness with the given
`torch.Generator` (e.g. `torch.rand(ids.shape, generator=generator)`), so that runs are reproducible.

*How is a random function graded?* The tests check what must hold for every draw (labels, special tokens,
untouched positions, ids in range) exactly, and the proportions (selected $\approx p$, then
80/10/10) on tens of thousands of tokens, with bounds at six standard deviations: a correct function fails
with probability below one in a hundred million.
""")

nb.solution("mask_tokens", r'''
def mask_tokens(ids, mask_id, vocab_size, p=0.15, special_ids=(), generator=None):
    """BERT's masked-LM corruption: (inputs, labels), labels = original id where selected, else -100."""
    ### BEGIN SOLUTION
    special = torch.zeros(ids.shape, dtype=torch.bool)
    for s in special_ids:
        special |= ids == s
    selected = (torch.rand(ids.shape, generator=generator) < p) & ~special
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    r = torch.rand(ids.shape, generator=generator)                         # which of the three cases
    random_ids = torch.randint(0, vocab_size, ids.shape, generator=generator, dtype=ids.dtype)
    inputs = torch.where(selected & (r < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(selected & (r >= 0.8) & (r < 0.9), random_ids, inputs)
    return inputs, labels
    ### END SOLUTION
''')

nb.code(r"""
def mask_problems(result, ids, mask_id, vocab_size, p, special_ids):
    # what is wrong with one result of mask_tokens (None if nothing): the invariants and the proportions, in order
    case = dict(ids=ids, mask_id=mask_id, vocab_size=vocab_size, p=p, special_ids=special_ids)
    return first_broken(LADDERS["mask_tokens"], result, case)


demo = torch.tensor([[0, 17, 23, 5, 9, 1, 2, 2]])        # [CLS] ... [SEP] [PAD] [PAD]
inputs, labels = mask_tokens(demo, mask_id=99, vocab_size=100, p=0.5, special_ids=(0, 1, 2),
                             generator=torch.Generator().manual_seed(1))
print("ids:   ", demo.tolist()[0])
print("inputs:", inputs.tolist()[0])
print("labels:", labels.tolist()[0])
""")

nb.tests("test_mask_tokens", 3, r'''
_g = torch.Generator().manual_seed(6)
_ids = torch.randint(3, 499, (64, 256), generator=_g)
_ids[:, 0], _ids[:, -1] = 0, 1                               # [CLS] ... [SEP]
_ids[::2, 200:] = 2                                           # padding on half of the rows
_before = _ids.clone()
# p, the vocabulary size and the [MASK] id vary (BERT's [MASK] is 103, not the last id of its vocabulary)
for _p, _vocab, _mask_id in ((0.15, 500, 499), (0.5, 500, 499), (0.3, 30522, 103)):
    _res = call(mask_tokens, _ids, mask_id=_mask_id, vocab_size=_vocab, p=_p, special_ids=(0, 1, 2), generator=_g)
    assert torch.equal(_ids, _before), ("mask_tokens changed its argument ids in place: build inputs as a new "
                                        "tensor (torch.where, or ids.clone() before writing into it)")
    _problem = mask_problems(_res, _ids, _mask_id, _vocab, _p, (0, 1, 2))
    assert _problem is None, f"with p={_p}, vocab_size={_vocab}, mask_id={_mask_id}: {_problem}"
_ids32 = _ids.to(torch.int32)                                 # ids of another integer dtype
_res = call(mask_tokens, _ids32, mask_id=499, vocab_size=500, p=0.15, special_ids=(0, 1, 2), generator=_g)
_problem = mask_problems(_res, _ids32, 499, 500, 0.15, (0, 1, 2))
assert _problem is None, f"with int32 ids, p=0.15, vocab_size=500, mask_id=499: {_problem}"
_a = call(mask_tokens, _ids, 499, 500, generator=torch.Generator().manual_seed(3))
_b = call(mask_tokens, _ids, 499, 500, generator=torch.Generator().manual_seed(3))
assert torch.equal(_a[0], _b[0]) and torch.equal(_a[1], _b[1]), \
    "draw every random number from the generator you are given"
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("06_bert_vs_gpt", "mask_tokens", mask_tokens)
### END HIDDEN TESTS
''')

nb.md(r"""
## 3. A tiny BERT and a tiny GPT on the same text, with the same budget

Now the experiment. Which objective teaches a model more about the characters of Shakespeare: predicting the
next one (GPT) or filling in hidden ones (BERT)? A comparison only means something if neither model is given
an advantage we did not intend, so both get

* the **same number of parameters**: `gptref.gpt.GPT` (pre-norm decoder) and `gptref.bert.Bert` (the original
  post-norm encoder, with its extra MLM head layer) are built at the same width and depth, and BERT's
  feed-forward layer is narrowed until the two counts match; the cell prints both (pre- against post-norm
  stays, as in the two papers);
* the **same text**: for each seed, both models read exactly the same windows of 32 characters, in the same order;
* the **same number of steps**, batch size and learning rate.

What differs is what we want to measure: GPT uses the causal mask and a loss on **every** next character;
BERT uses the bidirectional mask, inputs corrupted by `mask_tokens` (we call `gptref.bert.mask_tokens`, the
reference your function was graded against, so the experiment does not depend on your answer) and a loss on
the **15%** of positions that were selected. So per step BERT gets about a seventh of GPT's training signal;
that is part of what we measure, because it is part of the objective.

One training run proves little: a different random initialization can change the result by more than the
effect we look for. So each model is trained with three seeds, and we report the mean and the spread
(standard deviation). The models are tiny (one layer, width 32) and trained for 70 steps of 32 windows,
so that the six runs are quick (the training cell prints how long they took).
""")

nb.code(r"""
from gptref.bert import Bert, BertConfig
from gptref.bert import mask_tokens as reference_mask_tokens   # keeps your mask_tokens under its own name
from gptref.data import corpus
from gptref.gpt import GPT, GPTConfig

train_text = corpus("shakespeare", split="train")[:200_000]
val_text = corpus("shakespeare", split="val")[:20_000]
chars = sorted(set(train_text) | set(val_text))
stoi = {c: i for i, c in enumerate(chars)}
MASK = len(chars)                          # one extra id for [MASK]
V, T = len(chars) + 1, 32
encode = lambda s: torch.tensor([stoi[c] for c in s])
train_ids, val_ids = encode(train_text), encode(val_text)

D, LAYERS, HEADS = 32, 1, 2                # the shape both models share
STEPS, BATCH, LR = 70, 32, 1e-2            # the budget both models share
SEEDS = (0, 1, 2)


def make_gpt():
    return GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=LAYERS, n_head=HEADS, n_embd=D))


def make_bert(n_inner):
    return Bert(BertConfig(vocab_size=V, block_size=T, n_layer=LAYERS, n_head=HEADS, n_embd=D,
                           n_inner=n_inner, type_vocab_size=1))


def count(model):
    return sum(p.numel() for p in model.parameters())    # a tied weight (GPT's wte = lm_head) counts once


# BERT's MLM head has a dense layer and a LayerNorm that GPT lacks: narrow BERT's feed-forward to compensate
gpt_params = count(make_gpt())
bert_inner = min(range(2 * D, 4 * D + 1), key=lambda n: abs(count(make_bert(n)) - gpt_params))
bert_params = count(make_bert(bert_inner))
print(f"GPT : {gpt_params:,} parameters (feed-forward width {4 * D})")
print(f"BERT: {bert_params:,} parameters (feed-forward width {bert_inner}), "
      f"{100 * (bert_params - gpt_params) / gpt_params:+.2f}% of GPT's")
""")

nb.code(r"""
def batch(ids, n, g):
    start = torch.randint(0, len(ids) - T - 1, (n,), generator=g)
    return torch.stack([ids[s:s + T + 1] for s in start.tolist()])   # (n, T + 1)


def train(model, kind, seed):
    # STEPS steps of AdamW; the windows depend on the seed only, so GPT and BERT of a seed read the same text
    data_g = torch.Generator().manual_seed(seed)
    mask_g = torch.Generator().manual_seed(1000 + seed)              # BERT's corruption draws from its own stream
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    losses = []
    for step in range(STEPS):
        xy = batch(train_ids, BATCH, data_g)                         # (BATCH, T + 1)
        if kind == "GPT":
            _, loss = model(xy[:, :-1], xy[:, 1:])                   # every position predicts the next char
        else:
            inputs, labels = reference_mask_tokens(xy[:, :-1], MASK, V, generator=mask_g)
            _, loss = model(inputs, labels=labels)                   # loss on the ~15% selected positions
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model.eval(), losses


t0 = time.perf_counter()
runs = {"GPT": [], "BERT": []}                                       # per model: (trained model, losses) per seed
for seed in SEEDS:
    torch.manual_seed(seed)
    runs["GPT"].append(train(make_gpt(), "GPT", seed))
    torch.manual_seed(seed)
    runs["BERT"].append(train(make_bert(bert_inner), "BERT", seed))
print(f"trained 2 models x {len(SEEDS)} seeds, {STEPS} steps each, in {time.perf_counter() - t0:.1f} s")
""")

nb.md(r"""
Both models are now asked about the same 2000 positions $t$ of held-out text. BERT sees the window with
position $t$ replaced by `[MASK]` and fills the blank from the characters on **both** sides; GPT predicts the
same character from the characters **left** of it (its output at $t-1$). As a floor we also score the
guess that ignores all context: always the most frequent training character (a space).
""")

nb.code(r"""
@torch.no_grad()
def accuracies(n=2000, g=torch.Generator().manual_seed(1)):
    # accuracy of every trained model at the same positions t of held-out windows
    xy = batch(val_ids, n, g)[:, :-1]                        # (n, T)
    t = torch.randint(8, T - 8, (n,), generator=g)           # a position with context on both sides
    rows = torch.arange(n)
    target = xy[rows, t]
    blanked = xy.clone()
    blanked[rows, t] = MASK
    commonest = train_ids.bincount().argmax()                # the most frequent training character
    predictions = {"BERT": [model(blanked)[0][rows, t].argmax(-1) for model, _ in runs["BERT"]],
                   "GPT": [model(xy)[0][rows, t - 1].argmax(-1) for model, _ in runs["GPT"]]}  # t-1 predicts t
    acc = {k: [(p == target).float().mean().item() for p in ps] for k, ps in predictions.items()}
    share = {k: torch.stack(ps).eq(commonest).float().mean().item() for k, ps in predictions.items()}
    floor = (target == commonest).float().mean().item()
    return acc, share, floor


acc, share, floor = accuracies()
mean = {k: torch.tensor(v).mean().item() for k, v in acc.items()}
std = {k: torch.tensor(v).std().item() for k, v in acc.items()}     # over the seeds (n - 1 in the denominator)
print(f"{'':6}{'parameters':>11}" + "".join(f"{'seed ' + str(s):>9}" for s in SEEDS) + f"{'mean ± std':>16}")
for k, params in (("GPT", gpt_params), ("BERT", bert_params)):
    print(f"{k:6}{params:>11,}" + "".join(f"{a:>9.3f}" for a in acc[k]) + f"{mean[k]:>10.3f} ± {std[k]:.3f}")
print(f"always guessing the most frequent character ({chars[train_ids.bincount().argmax()]!r}): {floor:.3f}; "
      f"share of answers that are that guess: GPT {share['GPT']:.2f}, BERT {share['BERT']:.2f}")
gap, spread = mean["GPT"] - mean["BERT"], max(std.values())
print(f"GPT - BERT = {gap:+.3f}, the larger std is {spread:.3f}: "
      + ("within two standard deviations: these runs cannot tell the two models apart" if abs(gap) <= 2 * spread
         else f"the difference is {abs(gap) / spread:.1f} times the larger std"))

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.5))
for k, color in (("GPT", "tab:blue"), ("BERT", "tab:orange")):
    ax1.plot(torch.tensor([losses for _, losses in runs[k]]).mean(0), color=color, label=f"{k} (mean of seeds)")
ax1.set_xlabel("step"); ax1.set_ylabel("training loss (nats)"); ax1.legend(); ax1.set_title("training")
labels = ["GPT: next char\n(left side only)", "BERT: fill the blank\n(both sides)"]
ax2.bar(labels, [mean["GPT"], mean["BERT"]], yerr=[std["GPT"], std["BERT"]], capsize=6,
        color=["tab:blue", "tab:orange"], alpha=0.6)
for i, k in enumerate(("GPT", "BERT")):
    ax2.plot([i] * len(SEEDS), acc[k], "k.", label="one seed" if i == 0 else None)
ax2.axhline(floor, color="gray", ls="--", label="always the most frequent char")
ax2.set_ylabel("accuracy on held-out text"); ax2.legend(fontsize=8)
ax2.set_title(f"same parameters, text and {STEPS} steps; mean ± std of {len(SEEDS)} seeds")
plt.tight_layout()
plt.savefig("bert_vs_gpt.png", dpi=90)
plt.show()
""")

nb.md(r"""
**What was measured.** Read the table printed above from the top. Each model's row gives its accuracy at
the same held-out positions for each seed, then the mean ± std over the seeds. The line under the table
gives the floor, the accuracy of always guessing the most frequent character, and the share of each model's
answers that are that very guess: a share of 1.00 means the model answered that character at every blank,
so all it has learned is which character is commonest, and its accuracy is then exactly the floor. The last
line says whether the difference of the means is more than twice the larger spread, that is, whether these
three seeds can tell the two models apart at all.

If BERT's share printed above is 1.00 while GPT's is lower, this experiment does **not** show that
predicting the next character is the better way to *understand* text. It shows the cost of BERT's
objective: per step GPT learned from all `BATCH * T` positions of its batch, BERT only from the
15% of them that `mask_tokens` selected, and with a budget this small that decides the race. (The two
training losses in the left plot are not comparable: they are averages over different questions.)

**What a bigger run could change, and why.** At a blank BERT has strictly more to go on: it sees everything
GPT sees (the left side) *and* the right side. After `th` the next character is uncertain (`e`, `a`, `i`,
...); in `th_t` there is little doubt. An encoder that has learned enough should use that and fill blanks
better than a decoder can predict them; the open question is how much training that takes, and this
notebook does not measure it. You can look for it by raising `STEPS`, `LAYERS` and `D` above (it takes
minutes, not seconds) and watching BERT's share of the commonest character and the last printed line. Any
claim "BERT fills blanks better" should come with the budget at which it was measured.

That is the strength of encoders: every position's representation uses the whole input, which is what
classification, tagging and retrieval need. But BERT cannot simply *write*: it was never trained to continue
a text, and its predictions at a `[MASK]` assume the right context exists. GPT's one-sided view is exactly
what generation needs, and every token is a training target, which is one reason decoder-only models won
for large-scale pretraining.

## 4. GPT-1's fine-tuning objective

GPT-1 fine-tunes the pretrained decoder on a labelled task (classification, entailment, ...). The input
sequence goes through the transformer; a new linear layer on the last token's state gives class logits,
and the loss is the task's cross-entropy $L_2$. Radford et al. found it helps to keep the language-modelling
loss on the same input sequence as an auxiliary objective:

$$L_3 = L_2 + \lambda\, L_1, \qquad L_2 = -\frac{1}{B}\sum_b \log p(y_b \mid x_b), \qquad
L_1 = -\frac{1}{B(T-1)} \sum_{b}\sum_{t=1}^{T-1} \log p(x_{b,t+1} \mid x_{b,\le t}),$$

with $\lambda = 0.5$ in the paper. It improves generalization and speeds up convergence, and keeps the
model from forgetting how language works while it specializes.

**Exercise.** Write `gpt1_objective(lm_logits, clf_logits, tokens, labels, lam=0.5)`: `lm_logits`
`(B, T, V)` are the LM head's logits on `tokens` `(B, T)`, `clf_logits` `(B, C)` the classifier's, `labels`
`(B,)`. Both cross-entropies are means. Return the scalar $L_3$. Remember which logit predicts which token.
""")

nb.solution("gpt1_objective", r'''
def gpt1_objective(lm_logits, clf_logits, tokens, labels, lam=0.5):
    """GPT-1 fine-tuning loss: classification cross-entropy + lam * next-token cross-entropy."""
    ### BEGIN SOLUTION
    V = lm_logits.shape[-1]
    l2 = F.cross_entropy(clf_logits, labels)
    l1 = F.cross_entropy(lm_logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))  # (B*(T-1), V) vs (B*(T-1),)
    return l2 + lam * l1
    ### END SOLUTION
''')

nb.tests("test_gpt1_objective", 2, r'''
def _l3(lm_logits, clf_logits, tokens, labels, lam=0.5):   # the formula above, written with F.cross_entropy
    V = lm_logits.shape[-1]
    l1 = F.cross_entropy(lm_logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))   # logit t predicts token t+1
    return F.cross_entropy(clf_logits, labels) + lam * l1

_g = torch.Generator().manual_seed(6)
_lm = torch.randn(3, 5, 7, generator=_g, dtype=torch.float64)
_clf = torch.randn(3, 2, generator=_g, dtype=torch.float64)
_tok, _lab = torch.randint(0, 7, (3, 5), generator=_g), torch.tensor([0, 1, 1])
_cases = [
    dict(lm_logits=_lm, clf_logits=_clf, tokens=_tok, labels=_lab, lam=0.5),
    dict(lm_logits=_lm.float() * 3, clf_logits=_clf.float(), tokens=_tok, labels=_lab, lam=2.0),   # float32
    dict(lm_logits=_lm[:1, :2], clf_logits=_clf[:1], tokens=_tok[:1, :2], labels=_lab[:1], lam=0.5),  # B = 1, T = 2
    dict(lm_logits=_lm, clf_logits=_clf, tokens=_tok, labels=_lab, lam=0.0),    # lam = 0: the classification loss
]
_labels = ["B = 3, T = 5, lam 0.5", "float32, lam 2", "B = 1, T = 2 (one next-token prediction)",
           "lam = 0 (the classification loss L2 alone)"]
climb(gpt1_objective, _cases, LADDERS["gpt1_objective"], _l3, mistakes=MISTAKES["gpt1_objective"],
      compare=objective_value, labels=_labels)
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("06_bert_vs_gpt", "gpt1_objective", gpt1_objective)
### END HIDDEN TESTS
''')

nb.md(r"""
## 5. Loading GPT-2: `Conv1D` and the transpose

OpenAI's GPT-2 code (TensorFlow) stored each projection as a matrix $W$ of shape `(in, out)` and computed
$y = xW + b$. Hugging Face kept that layout in a layer named `Conv1D` (a 1-D convolution of kernel size 1
*is* a linear layer). PyTorch's `nn.Linear`, which nanoGPT and `gptref.gpt` use, stores `(out, in)` and
computes $y = x W^\top + b$. Same function, transposed storage: to load GPT-2 into a `nn.Linear` model,
the four projection weights per block (`c_attn`, `attn.c_proj`, `c_fc`, `mlp.c_proj`) must be transposed.

We can show it without downloading anything: build a tiny *random* GPT-2 with `transformers`, load it into
`gptref.gpt.GPT` with `GPT.from_hf_gpt2` (which transposes), and compare logits. Then load it naively.
""")

nb.code(r"""
from transformers import GPT2Config, GPT2LMHeadModel
from gptref.gpt import GPT

torch.manual_seed(0)
hf = GPT2LMHeadModel(GPT2Config(vocab_size=97, n_positions=32, n_embd=48, n_layer=2, n_head=4,
                                bos_token_id=0, eos_token_id=0)).eval()
c_attn = hf.transformer.h[0].attn.c_attn
print(type(c_attn).__name__, "weight", tuple(c_attn.weight.shape), "  nn.Linear(48, 144).weight",
      tuple(nn.Linear(48, 144).weight.shape))

ours = GPT.from_hf_gpt2(hf).eval()
x = torch.randint(0, 97, (2, 12))
with torch.no_grad():
    diff = (ours(x)[0] - hf(x).logits).abs().max().item()
print(f"with the transpose:     max |logits difference| = {diff:.2e}")

# naive loading: copy every weight whose shape fits, transposing only where the shapes force us to
naive = GPT(ours.config).eval()
state = {k.removeprefix("transformer."): v for k, v in hf.state_dict().items()}
with torch.no_grad():
    for key, target in naive.state_dict().items():
        name = key.removeprefix("transformer.")
        if name in state:
            w = state[name]
            target.copy_(w if w.shape == target.shape else w.t())
    diff_naive = (naive(x)[0] - hf(x).logits).abs().max().item()
print(f"square weights untransposed: max |logits difference| = {diff_naive:.2e}")
""")

nb.md(r"""
`c_attn` (48 → 144) and `c_fc` (48 → 192) cannot be loaded without a transpose: the shapes do not fit, and
an error tells you. But `attn.c_proj` is 48 → 48, **square**: it loads silently the wrong way round and the
model computes garbage with no error. This is why loaders list the Conv1D weights by name and transpose them
all, and why a port is only trusted once its logits match the original's.
""")

nb.written("q_bert_generate", 2, r"""
**Written question.** (a) Why can BERT not generate text left to right the way GPT does, even though it
predicts tokens? (b) In the experiment above, BERT trained on 15% of the positions of each batch while GPT
trained on all of them. What does this mean for the cost of pretraining each model to a given quality, and
which later encoder objective (you may name one you know, or propose one) tries to fix it?
""", answer=r"""
(a) BERT's predictions at a [MASK] are conditioned on the full sentence, left and right. When generating,
the right context does not exist yet; a BERT asked to predict position t with nothing after it sees an input
distribution it never trained on, and there is no factorization of p(x) into BERT's conditionals that gives
a proper left-to-right sampler (its conditionals are of one token given all the others). GPT's causal mask
makes p(x_t | x_<t) exactly the factor needed to sample token by token.
(b) With 15% of positions as targets, BERT gets about 1/7 of the training signal per token processed, so it
needs more compute for the same amount of learning (BERT's authors noted the slower convergence). ELECTRA
(replaced-token detection) fixes this: a small generator replaces some tokens and the encoder classifies
every position as original or replaced, so every token gives a loss. (Raising the masking rate, e.g. 40%, is
another answer.)
""")

nb.md(r"""
## Summary

* BERT and GPT share the transformer; they differ in the attention **mask** (bidirectional against causal,
  both with padding) and the **objective** (masked tokens against next tokens).
* BERT's corruption selects 15% of non-special tokens: 80% `[MASK]`, 10% random, 10% unchanged; labels are
  $-100$ elsewhere. A random function is graded by its invariants and by proportions within wide bounds.
* GPT-1 fine-tunes with $L_3 = L_2 + \lambda L_1$: the task loss plus the language-model loss on the input.
* With the same parameters, text and steps over 3 seeds, section 3 prints each model's held-out accuracy,
  the floor of always guessing the commonest character and how often each model gave that guess: BERT
  learns from 15% of the positions, GPT from all of them. An encoder sees both sides of a blank, so with
  enough training it should fill blanks better; but it cannot generate, while a decoder can and learns
  from every token.
* GPT-2's `Conv1D` stores `(in, out)`; `nn.Linear` stores `(out, in)`. Transpose all four projections by
  name: the square one loads silently wrong otherwise. Check a port by comparing logits.
""")

nb.save()
