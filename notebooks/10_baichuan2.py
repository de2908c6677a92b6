"""Builds solutions/10_baichuan2/10_baichuan2.ipynb: Baichuan 2's changes to a GPT-2, built one by one."""

from tools.nbbuild import Notebook

nb = Notebook("10_baichuan2")

nb.md(r"""
# Day 10 — Reading Baichuan 2 by building it

*Baichuan 2: Open Large-scale Language Models* (Yang et al., 2023, arXiv 2309.10305) trains 7B and
13B models on 2.6 trillion tokens. Section 2 of the report lists what it changes in the Transformer
you built on days 2–9. Each change is a few lines; today you write them, test them against the
formulas, and train a GPT-2-style and a Baichuan-style baby model side by side.

| Change (report, sec. 2) | What it is | Here |
|---|---|---|
| Tokenizer (2.3) | SentencePiece BPE, 125,696 tokens, with the options of section 5 | Exercise 5 |
| Positions (2.4) | RoPE in 7B, **ALiBi** in 13B | Exercise 2 |
| Activations, norms (2.5) | **SwiGLU**, hidden $\approx \frac83 d$; pre-norm RMSNorm; xFormers attention | Exercise 1 |
| Optimisation (2.6) | AdamW ($\beta = (0.9, 0.95)$, wd 0.1), clip 0.5, bf16; **NormHead**; **max-z loss** | Ex. 3, 4 |

**Learning goals.** After this notebook you can

1. write a SwiGLU feed-forward and say why its hidden size is $\frac83 d$ (11008 for $d = 4096$);
2. build ALiBi's attention bias, with the paper's head slopes, for a KV cache too, and say why it
   extrapolates to longer contexts;
3. write NormHead and the max-z loss and give the report's reasons for each;
4. train a SentencePiece tokenizer with Baichuan 2's options and compare it with day 1's byte-level BPE;
5. compare the two architectures at equal parameters and tokens, and read the result honestly.
""")

nb.code(r"""
import io
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)  # small tensors: one thread is fastest and fair to others on the machine
torch.manual_seed(0)
""")

nb.md(r"""
## 1. SwiGLU: a gated feed-forward

GPT-2's feed-forward is $W_2\,\mathrm{GELU}(W_1 x)$ with $W_1 \in \mathbb{R}^{4d\times d}$. Shazeer (2020)
replaced it by a *gated* unit: one projection is passed through Swish ($\mathrm{silu}(a) = a\,\sigma(a)$)
and multiplies, element by element, a second projection:

$$\mathrm{SwiGLU}(x) = W_{\text{down}}\big(\mathrm{silu}(W_{\text{gate}}\,x) \odot W_{\text{up}}\,x\big).$$

There are now **three** matrices. To keep GPT-2's parameter count ($2 \cdot 4d^2 = 8d^2$) the hidden width
becomes $h = \frac83 d$ ($3 \cdot \frac83 d^2 = 8d^2$), rounded **up** to a multiple of 128 for fast
matrix kernels: $\frac83 \cdot 4096 = 10922.7 \to 11008$, the width of Llama 7B and Baichuan 2 7B.
Llama, PaLM and Baichuan 2 use no biases here.

## Exercise 1 — `swiglu` (1 point)

Write `swiglu(x, w_gate, w_up, w_down)`: `x` is `(..., d)`, `w_gate` and `w_up` are `(h, d)` and `w_down`
is `(d, h)`, stored like `nn.Linear` weights (out × in). Return `(..., d)`.
(gptref's version, `gptref.mlp.SwiGLU`, is tested against the `LlamaMLP` of `transformers` with copied weights.)
""")

nb.solution("swiglu", r'''
def swiglu(x, w_gate, w_up, w_down):
    """down(silu(gate(x)) * up(x)); weights are (out, in) like nn.Linear's."""
    ### BEGIN SOLUTION
    gate = x @ w_gate.T                 # (..., h)
    up = x @ w_up.T                     # (..., h)
    return (F.silu(gate) * up) @ w_down.T   # (..., d)
    ### END SOLUTION
''')

nb.tests("test_swiglu", 1, r'''
from gptref.grading.explain import call
from gptref.grading.ladders import agreeing, climb_answer
from gptref.grading.ladders.d10_baichuan2 import LADDERS
from gptref.grading.mistakes.d10_baichuan2 import MISTAKES
torch.manual_seed(1)
def _swiglu_case(shape, d, h, dtype=torch.float64):
    x = torch.randn(*shape, d, dtype=dtype)
    x.view(-1, d)[0] = 0.0   # a zero row: with no biases it must give a zero row
    return dict(x=x, w_gate=torch.randn(h, d, dtype=dtype), w_up=torch.randn(h, d, dtype=dtype),
                w_down=torch.randn(d, h, dtype=dtype))
# (B, T, d) float64; T = 1 with a hidden width that is not a multiple of d; float32 with two leading dims
_cases = [_swiglu_case((2, 5), 8, 16), _swiglu_case((1, 1), 6, 11), _swiglu_case((2, 3), 4, 12, torch.float32)]
_outputs = [call(swiglu, **_case) for _case in _cases]
_known = agreeing(MISTAKES["swiglu"], _cases, _outputs)  # named only if it gives every output
for _case, _got in zip(_cases, _outputs):   # the ladder: x's shape and dtype, zero rows stay zero
    climb_answer(_got, _case, LADDERS["swiglu"], mistakes=_known)
for _case, _got in zip(_cases, _outputs):   # values last: down((g * sigmoid(g)) * up), g = x @ w_gate.T
    _g = _case["x"] @ _case["w_gate"].T
    _want = (_g * torch.sigmoid(_g) * (_case["x"] @ _case["w_up"].T)) @ _case["w_down"].T
    climb_answer(_got, _case, (), _want, _known, "swiglu's output")
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("10_baichuan2", "swiglu", swiglu)
### END HIDDEN TESTS
''')

nb.md(r"""
## 2. ALiBi: position as a penalty on distance

Baichuan 2 13B has no position embedding at all. ALiBi (Press, Smith & Lewis, 2022) adds to each
attention score a penalty proportional to how far back the key is:

$$\text{score}_{h}(i, j) = \frac{q_i \cdot k_j}{\sqrt{d_h}} - m_h\,(i - j), \qquad j \le i,$$

with one fixed slope $m_h$ per head. For $H$ a power of two the slopes are the geometric sequence
$m_h = 2^{-8h/H}$, $h = 1..H$ (for $H = 8$: $\frac12, \frac14, \dots, \frac1{256}$): some heads look
only at the last few tokens, others far back. For other $H$ the paper takes the $H' = 2^{\lfloor\log_2 H\rfloor}$
slopes of $H'$ and then every other slope of $2H'$ — the ones that fall *between* them — until it
has $H$ (Baichuan 2 13B has $H = 40$: the 32 slopes of 32, then 8 of the 64-slope sequence).

With a KV cache the $t_q$ new queries are the **last** $t_q$ of $t_k$ positions: query row $r$ sits at
position $i = t_k - t_q + r$. BLOOM's and Baichuan's code add $+m_h\, j$ instead of $-m_h(i-j)$: the two
differ by $m_h i$, the same for every key of a row, and softmax does not see a constant added to a row.

## Exercise 2 — `alibi_bias` (2 points)

Write `alibi_bias(n_heads, t_q, t_k=None)` returning a float32 `(n_heads, t_q, t_k)` tensor
(`t_k` defaults to `t_q`) holding $-m_h (i - j)$ where $j \le i$ and **0** above the diagonal
(a causal mask is applied separately). Compute the slopes yourself.
""")

nb.solution("alibi_bias", r'''
def alibi_bias(n_heads, t_q, t_k=None):
    """(H, t_q, t_k) float32: -slope_h * (i - j) for keys j <= i, 0 for j > i; queries are the last t_q positions."""
    ### BEGIN SOLUTION
    t_k = t_q if t_k is None else t_k

    def geometric(n):
        return [2 ** (-8 * (h + 1) / n) for h in range(n)]

    p = 2 ** math.floor(math.log2(n_heads))
    slopes = geometric(p) + geometric(2 * p)[0::2][: n_heads - p]
    slopes = torch.tensor(slopes, dtype=torch.float32)                 # (H,)
    i = torch.arange(t_k - t_q, t_k)[:, None]                          # (t_q, 1) query positions
    j = torch.arange(t_k)[None, :]                                     # (1, t_k) key positions
    distance = (i - j).clamp(min=0).to(torch.float32)                  # (t_q, t_k)
    return -slopes[:, None, None] * distance                           # (H, t_q, t_k)
    ### END SOLUTION
''')

nb.tests("test_alibi_bias", 2, r'''
from gptref.grading.explain import call
from gptref.grading.ladders import agreeing, climb_answer
from gptref.grading.ladders.d10_baichuan2 import LADDERS
from gptref.grading.mistakes.d10_baichuan2 import MISTAKES
# 8 heads (a power of two); one head; 6 and 3 heads (not); a KV cache (t_k > t_q); t_q = 1
_cases = [dict(n_heads=8, t_q=4), dict(n_heads=1, t_q=3), dict(n_heads=6, t_q=2), dict(n_heads=3, t_q=4),
          dict(n_heads=4, t_q=2, t_k=5), dict(n_heads=12, t_q=1, t_k=4)]
_biases = [call(alibi_bias, **_case) for _case in _cases]
_known = agreeing(MISTAKES["alibi_bias"], _cases, _biases)  # named only if it gives every bias
for _case, _b in zip(_cases, _biases):   # the ladder: form, 0 from the diagonal on, linear penalty, 2^(-8h/H)
    climb_answer(_b, _case, LADDERS["alibi_bias"], mistakes=_known)
def _want(n_heads, t_q, t_k=None):
    """The paper's bias, written out: slopes of H' = 2^floor(log2 H) heads, then every other slope of 2H'."""
    t_k = t_q if t_k is None else t_k
    p = 2 ** math.floor(math.log2(n_heads))
    slopes = [2 ** (-8 * h / p) for h in range(1, p + 1)] + [2 ** (-8 * h / (2 * p)) for h in range(1, 2 * p + 1, 2)]
    distance = (torch.arange(t_k - t_q, t_k)[:, None] - torch.arange(t_k)[None, :]).clamp(min=0)  # (t_q, t_k)
    return -torch.tensor(slopes[:n_heads])[:, None, None] * distance                              # (H, t_q, t_k)
for _case, _b in zip(_cases, _biases):   # values last
    climb_answer(_b, _case, (), _want(**_case), _known,
                 f"alibi_bias({', '.join(map(str, _case.values()))})")
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("10_baichuan2", "alibi_bias", alibi_bias)
### END HIDDEN TESTS
''')

nb.md(r"""
The penalty grows without limit with distance, so a query never gives much weight to keys far
beyond the distances it saw in training — and nothing in the model depends on the *absolute*
position, which has no learned embedding that could be missing for position 5000. Here is what
each head of a 40-head model (Baichuan 2 13B's count) does to a 64-token context:
""")

nb.code(r"""
from gptref.positions import alibi_bias as ref_alibi_bias, alibi_slopes

bias40 = ref_alibi_bias(40, 64)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].plot(alibi_slopes(40).numpy(), "o")
axes[0].set(yscale="log", xlabel="head", ylabel="slope m_h", title="40 heads: 32 geometric + 8 interleaved")
for h in (0, 10, 31, 39):
    axes[1].plot(bias40[h, -1].numpy(), label=f"head {h + 1}")
axes[1].set(xlabel="key position j (query at 63)", ylabel="bias", title="the last query's bias")
axes[1].legend()
fig.tight_layout()
plt.show()
""")

nb.md(r"""
## 3. NormHead: logits from angles

The output layer computes each token's logit as $w_v \cdot x$: the hidden state against the token's
row of the output matrix (the "head"), so a row's **norm** scales all of that token's logits. The report
gives two reasons for normalising the rows. First, in its early experiments the norms of the head's rows
were not stable: the rows of **rare tokens shrank during training**, and this disturbed the training
dynamics; with normalised rows they cannot. Second, it found that what the embeddings mean is carried
mainly by the **cosine similarity** between vectors, not by their L2 distance, while a dot product mixes
length and angle; normalising the rows removes the length from the logit. NormHead
normalises every row to length 1 before the product,

$$\text{logit}_v = \frac{w_v}{\lVert w_v \rVert_2} \cdot x ,$$

so a logit depends only on the angle between $x$ and $w_v$ (times $\lVert x\rVert$, which the final
RMSNorm controls). The released code does this with `F.normalize(weight)` then `F.linear`.

## Exercise 3 — `norm_head_logits` (1 point)

Write `norm_head_logits(x, weight)`: `x` is `(..., d)`, `weight` is `(V, d)`; return `(..., V)` logits
against the L2-normalised **rows** of `weight`. Do not change `weight` in place (it is a parameter:
the gradient must flow through the normalisation).
""")

nb.solution("norm_head_logits", r'''
def norm_head_logits(x, weight):
    """x (..., d) against the unit-norm rows of weight (V, d): (..., V)."""
    ### BEGIN SOLUTION
    unit = weight / weight.norm(dim=1, keepdim=True)   # (V, d), every row of length 1
    return x @ unit.T                                  # (..., V)
    ### END SOLUTION
''')

nb.tests("test_norm_head_logits", 1, r'''
from gptref.grading.explain import call, which_mistake
from gptref.grading.ladders import agreeing, climb_answer
from gptref.grading.ladders.d10_baichuan2 import LADDERS
from gptref.grading.mistakes.d10_baichuan2 import MISTAKES
torch.manual_seed(3)
_x, _w = torch.randn(2, 3, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
_w[1] *= 100    # a frequent token's long row
_w[3] /= 100    # a rare token's short row
_x[0, 0] = 0.0  # a zero hidden state
_w0 = _w.clone()
_cases = [dict(x=_x, weight=_w), dict(x=torch.randn(4, 6), weight=torch.randn(1, 6) * 7)]  # V = 1, float32
_outputs = [call(norm_head_logits, **_case) for _case in _cases]
_known = agreeing(MISTAKES["norm_head_logits"], _cases, _outputs)  # named only if it gives every output
assert torch.equal(_w, _w0), "do not normalise weight in place: compute a new tensor"
for _case, _got in zip(_cases, _outputs):   # the ladder: (..., V) in x's dtype, |logit| <= ||x||
    climb_answer(_got, _case, LADDERS["norm_head_logits"], mistakes=_known)
_longer = _w.clone()
_longer[2] *= 3.0
assert torch.allclose(call(norm_head_logits, _x, _longer), _outputs[0]), \
    "making one row of weight 3 times longer must not change any logit: each row is divided by its own length" + \
    which_mistake(_outputs[0], _known, _cases[0], F.linear(_x, F.normalize(_w, dim=1)))
for _case, _got in zip(_cases, _outputs):   # values last
    climb_answer(_got, _case, (), F.linear(_case["x"], F.normalize(_case["weight"], dim=1)),
                 _known,
          "the logits")
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("10_baichuan2", "norm_head_logits", norm_head_logits)
### END HIDDEN TESTS
''')

nb.md(r"""
## 4. The max-z loss

Nothing in cross-entropy stops all logits from drifting up together: softmax is unchanged by adding
a constant, and the report saw the logits grow very large during training. Its reason to care is
**inference**: the usual repetition penalty (as in Hugging Face's `model.generate`) rescales the logits of
tokens already generated by a fixed factor such as 1.1 or 1.2. A factor changes a large logit by much more
than a small one, so with very large logits the same setting moves the probabilities far more, and the
model becomes sensitive to the choice of the repetition penalty. Following NormSoftmax
and PaLM's auxiliary z-loss, Baichuan 2 adds a term that keeps the logits normalised,

$$\mathcal{L}_{\max\text{-}z} = 2\cdot 10^{-4}\, z^2, \qquad z = \max_v \text{logit}_v,$$

averaged over positions. Here $z$ is the **largest logit**, not the log-partition $\log\sum_v e^{\text{logit}_v}$
that PaLM's "z-loss" squares: the report's text says *the maximum logit value*, and the released
`modeling_baichuan.py` computes `shift_logits.max(-1).values ** 2`, times `config.z_loss_weight`,
then `.mean()` over all positions.

## Exercise 4 — `max_z_loss` (1 point)

Write `max_z_loss(logits, weight=2e-4)` for logits `(..., V)`: `weight` times the mean, over all
positions, of the square of each position's largest logit. Return a 0-dim tensor.
""")

nb.solution("max_z_loss", r'''
def max_z_loss(logits, weight=2e-4):
    """weight * mean over positions of (largest logit)^2."""
    ### BEGIN SOLUTION
    z = logits.max(dim=-1).values      # (...,) the largest logit of each position
    return weight * z.pow(2).mean()
    ### END SOLUTION
''')

nb.tests("test_max_z_loss", 1, r'''
from gptref.grading.explain import call
from gptref.grading.ladders import agreeing, climb_answer
from gptref.grading.ladders.d10_baichuan2 import LADDERS
from gptref.grading.mistakes.d10_baichuan2 import MISTAKES
_l = torch.tensor([[1.0, 3.5, -2.0], [-5.0, -1.0, -4.0]], dtype=torch.float64)   # row 2: all negative; mean z != 1
torch.manual_seed(4)
# two positions; another weight; one position (V,); a row of equal logits; float32 (B, T, V)
_cases = [dict(logits=_l), dict(logits=_l, weight=1.0), dict(logits=torch.tensor([0.5, -2.0, 4.0])),
          dict(logits=torch.tensor([[-2.0, -2.0, -2.0], [0.0, 6.0, 1.0]]), weight=0.1),
          dict(logits=torch.randn(2, 3, 7) * 5)]
_losses = [call(max_z_loss, **_case) for _case in _cases]
_known = agreeing(MISTAKES["max_z_loss"], _cases, _losses)  # named only if it gives every loss
for _case, _got in zip(_cases, _losses):   # the ladder: a 0-dim tensor in the logits' dtype, >= 0
    climb_answer(_got, _case, LADDERS["max_z_loss"], mistakes=_known)
for _case, _got in zip(_cases, _losses):   # values last: weight * mean over positions of (max logit)^2
    _z = _case["logits"].max(dim=-1).values
    climb_answer(_got, _case, (), _case.get("weight", 2e-4) * (_z * _z).mean(), _known,
          f"max_z_loss on {tuple(_case['logits'].shape)} logits with weight {_case.get('weight', 2e-4)}")
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("10_baichuan2", "max_z_loss", max_z_loss)
### END HIDDEN TESTS
''')

nb.md(r"""
## 5. The tokenizer

Baichuan 1 had 64,000 tokens; Baichuan 2 has 125,696, trained with SentencePiece's BPE on a sample
of its (mostly Chinese and English) data. The options the report describes, by SentencePiece name:

| Report | `SentencePieceTrainer.train(...)` option |
|---|---|
| BPE | `model_type="bpe"` |
| no unknown tokens: unseen characters fall back to their UTF-8 bytes | `byte_fallback=True` |
| numbers split into single digits (so arithmetic sees digits) | `split_digits=True` |
| no normalisation of the input | `normalization_rule_name="identity"`, `remove_extra_whitespaces=False` |
| no dummy prefix (no space added before the text) | `add_dummy_prefix=False` |
| whitespace-only tokens (indentation in code) | `allow_whitespace_only_pieces=True` |
| long pieces allowed | `max_sentencepiece_length=32` |
| every character but the rarest 0.01% in the vocabulary (those fall back to bytes) | `character_coverage=0.9999` |

## Exercise 5 — `train_baichuan_tokenizer` (2 points)

Write `train_baichuan_tokenizer(text, vocab_size)`: train on the lines of `text` (split on `"\n"`,
skip empty lines) with **all** the options above, and return the model as **bytes** — pass
`model_writer=io.BytesIO()` (and `sentence_iterator=`) to the trainer, or load the model and call
`serialized_model_proto()`. Add `minloglevel=2` to keep the trainer quiet (it logs to stderr).
The vocabulary must hold 3 special tokens and 256 byte tokens before any merge.
""")

nb.solution("train_baichuan_tokenizer", r'''
import sentencepiece as spm

def train_baichuan_tokenizer(text, vocab_size):
    """SentencePiece BPE with Baichuan 2's options, trained on text's lines; returns the model proto bytes."""
    ### BEGIN SOLUTION
    lines = [line for line in text.split("\n") if line]
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=out, vocab_size=vocab_size, model_type="bpe",
        byte_fallback=True, split_digits=True, normalization_rule_name="identity",
        remove_extra_whitespaces=False, add_dummy_prefix=False, allow_whitespace_only_pieces=True,
        max_sentencepiece_length=32, character_coverage=0.9999, minloglevel=2)
    return out.getvalue()
    ### END SOLUTION
''')

nb.tests("test_train_baichuan_tokenizer", 2, r'''
from gptref import data
from gptref.grading.ladders import climb
from gptref.grading.ladders.d10_baichuan2 import LADDERS, same_tokenization
from gptref.grading.mistakes.d10_baichuan2 import MISTAKES
from gptref.tokenizers import train_sentencepiece as _reference_trainer
from gptref.tokenizers.spm_options import options as _options_of
_code = "    if total > 1000:\n        total = total - 2024\n\n\tx = 'naïve ☃'\n"
# a text rich enough for every option to train (12,000 characters of Shakespeare, code, an empty line, a tab,
# a rare character); a small repetitive text with the vocabulary just above the 259 reserved pieces
_cases = [dict(text=data.corpus("shakespeare")[:12000] + "\n" + _code, vocab_size=400),
          dict(text=("Shall I compare thee to a summer's day?\n" + _code) * 30, vocab_size=300)]
_probes = ("In 1599 the Globe sold 12345 tickets.", "        return x", "Thou art more lovely and more temperate")


def _same_model(got, want):
    """Same options read back from the model, and the same pieces on the probe texts."""
    if _options_of(got) != _options_of(want):
        return f"trained with {_options_of(got)}, the table's options are {_options_of(want)}"
    return same_tokenization(got, want, _probes)


# the ladder (bytes; vocabulary; the table's options; round trips), then the pieces against the reference trainer;
# a known mistake is named only if it gives every model that trained (a mistake may fail to train on the small text)
climb(train_baichuan_tokenizer, _cases, LADDERS["train_baichuan_tokenizer"], _reference_trainer,
      mistakes=MISTAKES["train_baichuan_tokenizer"], compare=lambda got, want, case: _same_model(got, want))
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("10_baichuan2", "train_baichuan_tokenizer", train_baichuan_tokenizer)
### END HIDDEN TESTS
''')

nb.md(r"""
### SentencePiece with Baichuan's options vs day 1's byte-level BPE

Both tokenizers below are trained on the same 200,000 characters of Shakespeare with the same
vocabulary size, 512 (gptref's own trainers, so this runs before your exercises pass). The
byte-level BPE of GPT-2 (day 1) first splits text with a regex into words, numbers and
punctuation, and merges only inside them; SentencePiece sees whole lines, marks spaces as `▁`,
and spends part of its 512 entries on special and byte tokens (the cell prints how many).
""")

nb.code(r"""
from gptref import data
from gptref.tokenizers.bpe import Tokenizer as ByteBPE
from gptref.tokenizers import SentencePieceTokenizer

shakespeare = data.corpus("shakespeare")
train_text, held_out = shakespeare[:200_000], shakespeare[-50_000:]
t0 = time.perf_counter()
spm_tok = SentencePieceTokenizer.train(train_text, 512)
bpe_tok = ByteBPE.train(train_text, 512)
print(f"trained both in {time.perf_counter() - t0:.1f} s")
n_reserved = sum(spm_tok.sp.IsControl(i) or spm_tok.sp.IsUnknown(i) or spm_tok.sp.IsByte(i)
                 for i in range(len(spm_tok)))
print(f"SentencePiece entries for special and byte tokens: {n_reserved} of {len(spm_tok)}")

def pieces_of(tok, s):
    if isinstance(tok, SentencePieceTokenizer):
        return tok.pieces(s)
    return [tok.decode([i]) for i in tok.encode(s)]

n_bytes = len(held_out.encode("utf-8"))
for name, tok in (("SentencePiece (Baichuan 2 options)", spm_tok), ("byte-level BPE (day 1, GPT-2 style)", bpe_tok)):
    n = len(tok.encode(held_out))
    print(f"{name:38s}: {n_bytes / n:.2f} bytes per token on held-out Shakespeare")
for s in ("In 1599, 12,345 players", "the incarnadine multitudinous seas", "        return x"):
    print(f"\n{s!r}")
    print("  SentencePiece :", pieces_of(spm_tok, s))
    print("  byte-level BPE:", pieces_of(bpe_tok, s))
""")

nb.md(r"""
What to see. Numbers: SentencePiece splits every number into single digits, by rule (`split_digits`;
a digit it has never seen becomes a byte token). The byte-level BPE splits numbers only because
Shakespeare has so few of them that it learned no digit merges; on text with many numbers it would
learn groups such as `19` or `000`, as GPT-2's vocabulary did, and then the same digits get cut in
different ways in different numbers. Rare words fall apart into short pieces in both. At this tiny
vocabulary the bytes-per-token lines above compare the two; SentencePiece gives the number of entries printed
above to specials and bytes, a large share of 512 and a negligible one of Baichuan's 125,696.
""")

nb.md(r"""
## 6. Two baby models, side by side

Below, a GPT-2-style block (learned positions, LayerNorm, GELU MLP, tied output) and a Baichuan-style
block (ALiBi, RMSNorm, SwiGLU, NormHead, max-z loss), built from gptref's reference pieces. The SwiGLU's
hidden width is rounded to a multiple of 16 instead of 128 so that the two models have about the
same number of parameters: NormHead is not tied, and its extra $V \times d$ weights cost about what the
missing position table saved. Both train on the same character-level batches of Shakespeare with the
report's AdamW settings, for 100 steps — seconds, not hours: read the curves as a sanity check, not as
a verdict on the architectures.
""")

nb.code(r"""
from gptref.heads import NormHead
from gptref.losses import max_z_loss as ref_max_z_loss
from gptref.mlp import MLP, SwiGLU
from gptref.norms import RMSNorm


class Attention(nn.Module):
    def __init__(self, d, n_head, alibi):
        super().__init__()
        self.n_head, self.alibi = n_head, alibi
        self.qkv, self.proj = nn.Linear(d, 3 * d, bias=not alibi), nn.Linear(d, d, bias=not alibi)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, hd)
                   for t in self.qkv(x).split(C, dim=-1))
        if self.alibi:
            causal = torch.ones(T, T, dtype=torch.bool).tril()
            mask = ref_alibi_bias(self.n_head, T).masked_fill(~causal, float("-inf"))  # (H, T, T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))  # (B, T, C)


class Block(nn.Module):
    def __init__(self, d, n_head, baichuan):
        super().__init__()
        norm = RMSNorm if baichuan else nn.LayerNorm
        self.ln1, self.ln2 = norm(d), norm(d)
        self.attn = Attention(d, n_head, alibi=baichuan)
        self.mlp = SwiGLU(d, multiple_of=16) if baichuan else MLP(d)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class BabyLM(nn.Module):
    # style "gpt2" or "baichuan2"; norm_head overrides the head of either
    def __init__(self, vocab, style, d=48, n_head=4, n_layer=2, block=64, norm_head=None):
        super().__init__()
        baichuan = style == "baichuan2"
        norm_head = baichuan if norm_head is None else norm_head
        self.wte = nn.Embedding(vocab, d)
        self.wpe = None if baichuan else nn.Embedding(block, d)
        self.blocks = nn.ModuleList(Block(d, n_head, baichuan) for _ in range(n_layer))
        self.ln_f = RMSNorm(d) if baichuan else nn.LayerNorm(d)
        self.apply(self._init)
        self.head = NormHead(d, vocab) if norm_head else nn.Linear(d, vocab, bias=False)
        if not norm_head:
            self.head.weight = self.wte.weight  # GPT-2 ties the output to the embedding

    @staticmethod
    def _init(m):  # GPT-2's initialisation
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx):
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


chars = sorted(set(shakespeare))
stoi = {c: i for i, c in enumerate(chars)}
ids = torch.tensor([stoi[c] for c in shakespeare[:300_000]])
train_ids, val_ids = ids[:270_000], ids[270_000:]


def batch(src, g, B=8, T=32):
    i = torch.randint(0, len(src) - T - 1, (B,), generator=g)
    return torch.stack([src[j:j + T] for j in i]), torch.stack([src[j + 1:j + T + 1] for j in i])


def train_baby(style, steps=100, lr=3e-3, z_weight=0.0, norm_head=None, clip=1.0):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)  # the same batches for every run
    model = BabyLM(len(chars), style, norm_head=norm_head)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    ce_hist, zmax_hist = [], []
    for _ in range(steps):
        x, y = batch(train_ids, g)
        logits = model(x)
        ce = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        loss = ce + (ref_max_z_loss(logits, z_weight) if z_weight else 0.0)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        ce_hist.append(ce.item())
        zmax_hist.append(logits.detach().max().item())
    with torch.no_grad():
        xv, yv = batch(val_ids, torch.Generator().manual_seed(2), B=32)
        val = F.cross_entropy(model(xv).flatten(0, 1), yv.flatten()).item()
    return dict(ce=ce_hist, zmax=zmax_hist, val=val, params=sum(p.numel() for p in model.parameters()))


t0 = time.perf_counter()
runs = {"GPT-2 style": train_baby("gpt2"),
        "Baichuan 2 style": train_baby("baichuan2", z_weight=2e-4, clip=0.5)}
for name, r in runs.items():
    print(f"{name:17s}: {r['params']:,} parameters, final train CE {r['ce'][-1]:.3f}, val CE {r['val']:.3f}")
print(f"({time.perf_counter() - t0:.1f} s)")
plt.figure(figsize=(6, 3.5))
for name, r in runs.items():
    plt.plot(r["ce"], label=name)
plt.axhline(math.log(len(chars)), color="gray", ls=":", label="chance")
plt.gca().set(xlabel="step (same batches, same tokens)", ylabel="train cross-entropy", ylim=(1.8, 4.6))
plt.legend()
plt.show()
""")

nb.md(r"""
### NormHead and max-z at a high learning rate

The report introduced NormHead and max-z for stability. Can a baby model show it? Below, the same
GPT-2-style model at a learning rate ten times larger, once plain and once with NormHead and the
max-z loss, on the same batches; the right plot is the largest logit $z$. Look at what actually
happens rather than at what you expect: the cell prints each run's validation loss, its largest logit at
the first and the last step, and the size of the max-z term at the end.
""")

nb.code(r"""
t0 = time.perf_counter()
hot = {"plain, lr 3e-2": train_baby("gpt2", lr=3e-2),
       "NormHead + max-z, lr 3e-2": train_baby("gpt2", lr=3e-2, norm_head=True, z_weight=2e-4)}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
for name, r in hot.items():
    axes[0].plot(r["ce"], label=f"{name} (val {r['val']:.2f})")
    axes[1].plot(r["zmax"], label=name)
axes[0].set(xlabel="step", ylabel="train cross-entropy", ylim=(1.8, 6))
axes[1].set(xlabel="step", ylabel="largest logit z")
axes[0].legend()
fig.tight_layout()
plt.show()
for name, r in hot.items():
    # at most this: z of each position <= the batch's max
    z_term = 2e-4 * r["zmax"][-1] ** 2 if "max-z" in name else 0.0
    print(f"{name:26s}: val CE {r['val']:.3f}; largest logit at step 1 {r['zmax'][0]:.2f}, at step 100 "
          f"{r['zmax'][-1]:.2f}; max-z term at the end <= {z_term:.4f}, train CE {r['ce'][-1]:.3f}")

# Where does NormHead's larger z come from? At initialisation, before any step:
torch.manual_seed(0)
fresh = BabyLM(len(chars), "gpt2", norm_head=False)
x0, _ = batch(train_ids, torch.Generator().manual_seed(1))
with torch.no_grad():
    h = fresh.wte(x0) + fresh.wpe(torch.arange(x0.shape[1]))
    for block in fresh.blocks:
        h = block(h)
    h = fresh.ln_f(h)                                                   # (B, T, d): what the head reads
print(f"at initialisation: ||ln_f(x)|| = {h.norm(dim=-1).mean():.2f} on average "
      f"(sqrt(d) = {math.sqrt(h.shape[-1]):.2f}); "
      f"tied head rows ||w_v|| = {fresh.head.weight.norm(dim=1).mean():.3f} on average, NormHead rows = 1")
print(f"({time.perf_counter() - t0:.1f} s)")
""")

nb.md(r"""
The largest logit starts higher with NormHead (compare the step-1 values printed above), and it is not a
bug: a logit is $w_v\cdot x$ with $|w_v \cdot x| \le \lVert w_v\rVert\,\lVert x\rVert$. The final layer norm
makes $\lVert x\rVert$ about $\sqrt d$ (the last line printed above); GPT-2's tied rows start at the small
length printed there, so its logits start small and grow only as training lengthens the rows, while NormHead's
rows have length 1 from the first step, so its logits can reach $\lVert x\rVert$ at once. NormHead fixes the
rows' lengths, not the logits' scale. The max-z term is weighted $2\cdot10^{-4}$: the lines above bound it at
the end, next to the train CE, so expect it to pull only a little on the logits at this size and length (this
notebook does not run max-z alone to measure how much). Whether either run is more stable cannot be read from
one 100-step run of a model this small.
""")

nb.written("q_alibi_extrapolates", 1, r"""
**Question.** A model trained on 4,096-token contexts is run on 8,192 tokens. Why does a model with
learned absolute positions (GPT-2) fail, why does ALiBi degrade gracefully, and what does the
KV-cache case of your `alibi_bias` have to do with it?
""", answer=r"""
GPT-2 has no embedding for positions >= 4096 (the table ends; extending it gives untrained vectors),
so it cannot even run, and RoPE sees rotation angles it never saw. ALiBi has no per-position parameters:
the bias depends only on the distance i - j through fixed slopes, and every distance up to 4095 was seen
in training; far keys get a large negative bias, so each head keeps attending mostly to a window it knows
(the steep heads to the last few tokens, the gentle ones further back). Longer inputs only add keys
with even larger penalties. The KV-cache case is the same formula with the queries at the end: what
matters is the distance, not where the window starts.
""")

nb.written("q_vocab_size", 1, r"""
**Question.** Baichuan 1 had 64,000 tokens, Baichuan 2 has 125,696. What does a larger vocabulary buy,
what does it cost, and why does the report say the choice balances the two?
""", answer=r"""
More tokens compress text better (more bytes per token, especially for Chinese and other languages
that a 64k vocabulary splits into many pieces), so the same context window holds more text and training
and inference need fewer steps per byte. The costs: the embedding and output matrices grow (125,696 x
4096 x 2 = about 1 B parameters at 7B), the softmax over the vocabulary costs more, and each extra rare
token is seen less often, so its embedding is trained less (which NormHead partly addresses). The report
picks the size that gives a good compression rate while every token still gets enough training.
(125,696 is also a multiple of 128 = 982 x 128, good for matrix kernels.)
""")

nb.written("q_max_z", 1, r"""
**Question.** Cross-entropy is unchanged when the same constant is added to all logits, yet the Baichuan 2
report adds a max-z loss because the logits grew very large. What problem do very large logits cause
according to the report (it is about generation, not the training loss), and how does the max-z term
address it?
""", answer=r"""
The problem shows up at inference. The common repetition penalty (Hugging Face's `generate`) rescales the
logits of already generated tokens by a fixed scalar such as 1.1 or 1.2. A scalar applied to a very large
logit changes it by a large absolute amount (50 / 1.2 is 8.3 lower, 5 / 1.2 only 0.8), so after the softmax
the probabilities change a lot, and the model's output becomes very sensitive to the choice of the
repetition-penalty setting. The max-z term 2e-4 z^2, with z the largest logit of each position (inspired by
NormSoftmax and PaLM's z-loss, which squares the log-partition instead), penalises large logits during
training, so the logits stay normalised near a moderate scale; since softmax ignores a shared shift,
pulling the largest logit towards 0 costs the cross-entropy nothing, and the ranking of tokens is unchanged.
""")

nb.md(r"""
## Summary

* **SwiGLU**: $W_{\text{down}}(\mathrm{silu}(W_{\text{gate}}x) \odot W_{\text{up}}x)$, hidden $\frac83 d$
  rounded up to 128 (11008 at $d = 4096$): three matrices at the cost of GPT-2's two.
* **ALiBi**: no position embedding; a bias $-m_h(i-j)$ with geometric slopes (interleaved for head
  counts that are not powers of two); it depends on distance only, so it extends to longer contexts
  and to the KV cache, where the queries are the last positions.
* **NormHead**: logits against unit-length token rows. The report's reasons: the head's row norms were
  unstable (rare tokens' rows shrank during training), and meaning lives in the cosine similarity.
* **Max-z loss**: $2\cdot10^{-4} z^2$ with $z$ the largest logit (as in the released code). The report's
  reason: very large logits make generation sensitive to the repetition penalty, a scalar applied to them.
* **Tokenizer**: SentencePiece BPE with byte fallback, split digits, no normalisation, no dummy prefix,
  whitespace pieces; 125,696 tokens.
* At baby scale, in one 100-step run per model, the Baichuan-style model ends with the validation CE printed
  in section 6 next to the GPT-2-style one's; one short run of a tiny model cannot rank the architectures,
  and the report's reasons for these choices are about large models and long runs.
  `python benchmarks/arch_compare.py` (and, with the options wired into GPTConfig,
  `./run homework --arch baichuan2`) trains both at the homework's budget.
""")

nb.save()
