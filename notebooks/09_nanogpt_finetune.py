"""Builds solutions/09_nanogpt_finetune/09_nanogpt_finetune.ipynb: a GPT block, the training loop's
schedule and clipping, the SFT loss, one data-parallel step on two processes, a tiny pretrain-then-fine-tune
run, and the homework (its shape and expected results read from the files the homework itself uses)."""

from tools.nbbuild import Notebook

nb = Notebook("09_nanogpt_finetune")

nb.md(r"""
# Day 9 — nanoGPT: pretrain, then fine-tune

Eight days gave us the parts: a tokenizer (Day 1), attention (Day 2), layer norm (Day 3), decoding (Day 4),
the loss (Day 5), the decoder-only design (Day 6), positions (Day 7) and fast attention (Day 8). Today we
put them together into a GPT in the style of Karpathy's nanoGPT, look at the three details of the training
loop that make it stable (a learning-rate schedule, gradient clipping, and for fine-tuning a loss mask),
and run a miniature version of the homework: pretrain a tiny character model on Shakespeare, then
fine-tune it on Milton.

**Learning goals.** After this notebook you can

1. assemble a pre-norm transformer block from attention, an MLP and layer norms;
2. write the cosine learning-rate schedule with linear warmup and say why each part is there;
3. clip gradients by their global norm;
4. write the supervised fine-tuning (SFT) loss that only counts the response tokens;
5. average gradients across processes with `all_reduce` (distributed data parallel) and show that it is one
   step on the whole batch;
6. read loss curves of pretraining and fine-tuning, run the full homework with `./run homework`, and hand it in.
""")

nb.code(r"""
import math
import os
import time

import matplotlib.pyplot as plt
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from gptref.attention import MultiHeadAttention   # day 2's layer (same names, same layout) plus options: causal=
from gptref.gpt import GPT, GPTConfig

torch.manual_seed(0)
torch.set_num_threads(1)   # tiny tensors: one thread is fastest, and steady on a shared machine
""")

nb.md(r"""
## 1. The block

A GPT is an embedding, a stack of $L$ identical blocks, a final layer norm and a linear head. Each block
has two sub-layers, causal self-attention (tokens exchange information) and an MLP (each token is
transformed on its own), each wrapped as a **pre-norm residual**:

$$x \leftarrow x + \mathrm{Attn}(\mathrm{LN}_1(x)), \qquad x \leftarrow x + \mathrm{MLP}(\mathrm{LN}_2(x)),$$

with $\mathrm{MLP}(h) = W_2\,\mathrm{GELU}(W_1 h + b_1) + b_2$, $W_1$ of shape $4C \times C$. The residual
stream $x$ is never normalized itself: each sub-layer reads a normalized copy and *adds* its result. This
keeps a clean path for gradients from the loss to the first layer (Day 3's experiment showed why GPT-2
moved the norm before the sub-layer).

**Exercise.** Complete `MLP` and `Block`. For the attention use `MultiHeadAttention(config.n_embd,
config.n_head)` from `gptref.attention`: it has the names and layout of the layer you wrote on day 2 (`q_proj`,
`k_proj`, `v_proj`, `out_proj`), and keyword options your day-2 version does not have. One of them is `causal`:
call it as `self.attn(h, causal=True)`, which builds day 2's causal mask inside (the same as passing
`mask=causal_mask(T)` to your day-2 layer), so that no token sees a later one. Use `nn.LayerNorm(config.n_embd)` for
the norms. Name the parts exactly `ln_1`, `attn`, `ln_2`, `mlp`, and inside the MLP `c_fc`, `c_proj` (GPT-2's
names). `block_forward` below runs your block with given weights; the tests call it.
""")

nb.solution("block", r'''
class MLP(nn.Module):
    """Position-wise feed-forward: C -> 4C -> GELU -> C."""

    def __init__(self, config):
        super().__init__()
        ### BEGIN SOLUTION
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return self.c_proj(self.gelu(self.c_fc(x)))
        ### END SOLUTION


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config):
        super().__init__()
        ### BEGIN SOLUTION
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = MultiHeadAttention(config.n_embd, config.n_head)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        x = x + self.attn(self.ln_1(x), causal=True)
        x = x + self.mlp(self.ln_2(x))
        return x
        ### END SOLUTION


def block_forward(x, state, n_head):
    """Run your Block with the weights in `state` on x (B, T, C): what the tests call."""
    config = GPTConfig(vocab_size=1, block_size=x.shape[1], n_layer=1, n_head=n_head, n_embd=x.shape[-1])
    block = Block(config)
    block.load_state_dict(state)
    with torch.no_grad():
        return block.eval()(x)
''')

# The visible tests run the ladder of gptref.grading.ladders.d09_nanogpt_finetune and name the mistakes of
# gptref.grading.mistakes.d09_nanogpt_finetune (tests/mutants/d09_nanogpt_finetune.py plants each).
nb.tests("test_block", 3, r'''
from gptref.grading.explain import call
from gptref.grading.ladders import agreeing, climb_answer
from gptref.grading.ladders.d09_nanogpt_finetune import LADDERS
from gptref.grading.mistakes.d09_nanogpt_finetune import MISTAKES
from gptref.attention import MultiHeadAttention as _MHA
torch.manual_seed(9)
_cfg = GPTConfig(vocab_size=1, block_size=6, n_layer=1, n_head=2, n_embd=16)
class _RefBlock(nn.Module):
    """The pre-norm block of the formula above, built from gptref's attention: what your Block must compute."""
    def __init__(self, c):
        super().__init__()
        self.ln_1, self.attn, self.ln_2 = nn.LayerNorm(c.n_embd), _MHA(c.n_embd, c.n_head), nn.LayerNorm(c.n_embd)
        self.mlp = nn.Module()
        self.mlp.c_fc, self.mlp.c_proj = nn.Linear(c.n_embd, 4 * c.n_embd), nn.Linear(4 * c.n_embd, c.n_embd)
    def forward(self, x):
        x = x + self.attn(self.ln_1(x), causal=True)
        return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x))))
_ref = _RefBlock(_cfg).eval()
with torch.no_grad():   # norms near (1, 0) but not exactly, so where they sit matters
    for _p in _ref.parameters():
        _p.copy_(torch.randn_like(_p) * 0.3 + (1.0 if _p.dim() == 1 and _p.shape[0] == 16 else 0.0))
_mine = Block(_cfg)
_names, _ref_names = set(_mine.state_dict()), set(_ref.state_dict())
assert _names == _ref_names, \
    (f"name the parts ln_1, attn (a MultiHeadAttention), ln_2, mlp (with c_fc, c_proj): "
     f"missing {sorted(_ref_names - _names)}, unexpected {sorted(_names - _ref_names)}")
_state = _ref.state_dict()
_cases = [dict(x=torch.randn(2, 6, 16) * 2 + 1, state=_state, n_head=2),   # mean and scale far from LayerNorm's
          dict(x=torch.randn(1, 1, 16) * 2 + 1, state=_state, n_head=2)]   # T = 1
_outputs = [call(block_forward, **_case) for _case in _cases]
_known = agreeing(MISTAKES["block_forward"], _cases, _outputs)  # named only if it gives every output
for _case, _out in zip(_cases, _outputs):   # the ladder: x's shape and dtype, finite
    climb_answer(_out, _case, LADDERS["block_forward"], mistakes=_known)
_later = _cases[0]["x"].clone()
_later[:, -1] += 5.0                         # change only the last token
_changed = (call(block_forward, _later, _state, 2)[:, :-1] - _outputs[0][:, :-1]).abs().max().item()
assert _changed < 1e-5, \
    f"changing only the last token changed the outputs of earlier tokens (by up to {_changed:.3g}): the attention " \
    "must be causal: call self.attn(ln_1(x), causal=True)"
with torch.no_grad():
    for _case, _out in zip(_cases, _outputs):   # values last
        climb_answer(_out, _case, (), _ref(_case["x"]), _known,
                     "your block's output (compare with x + attn(ln_1(x), causal=True), then "
                     "+ c_proj(gelu(c_fc(ln_2(x)))))")
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("09_nanogpt_finetune", "block_forward", block_forward)
### END HIDDEN TESTS
''')

nb.md(r"""
`gptref.gpt.GPT` is built the same way: `wte` (token embedding) + `wpe` (position embedding), `n_layer` blocks,
`ln_f`, and `lm_head` sharing its weight with `wte`. Its forward returns `(logits, loss)`.

## 2. The learning-rate schedule

Adam's first updates are noisy: its second-moment estimates start from zero, and a randomly initialized
network's gradients are large and badly scaled. A **linear warmup** grows the learning rate from almost 0
to its peak over the first $w$ steps. Afterwards a **cosine decay** lowers it smoothly to a floor
$\eta_{\min}$ (often $\eta_{\max}/10$) at step $N$, so the final steps average out the noise instead of
bouncing around a minimum:

$$\eta(s) = \begin{cases}
\eta_{\max}\,\dfrac{s+1}{w} & s < w \\[2mm]
\eta_{\min} + \tfrac12\big(1 + \cos(\pi r)\big)(\eta_{\max} - \eta_{\min}),
  \quad r = \dfrac{s - w}{N - w} & w \le s \le N \\[2mm]
\eta_{\min} & s > N
\end{cases}$$

(The $s+1$ makes the very first step use a small non-zero rate; at $s = w - 1$ the warmup reaches $\eta_{\max}$.
The cosine starts at $s = w$ with $r = 0$, so it too gives $\eta_{\max}$: the peak rate is used for two steps,
$w - 1$ and $w$, and the schedule has no jump where the warmup ends.)

**Exercise.** Write `cosine_lr(step, max_lr, min_lr, warmup_steps, max_steps)` returning a float.
""")

nb.solution("cosine_lr", r'''
def cosine_lr(step, max_lr, min_lr, warmup_steps, max_steps):
    """Linear warmup to max_lr, then cosine decay to min_lr at max_steps, then min_lr."""
    ### BEGIN SOLUTION
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step > max_steps:
        return min_lr
    ratio = (step - warmup_steps) / (max_steps - warmup_steps)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (max_lr - min_lr)
    ### END SOLUTION
''')

nb.tests("test_cosine_lr", 2, r'''
from gptref.grading.explain import NAMED, call
from gptref.grading.ladders import climb_answer, first_broken
from gptref.grading.ladders.d09_nanogpt_finetune import LADDERS
from gptref.grading.mistakes.d09_nanogpt_finetune import MISTAKES
def _formula(step, max_lr, min_lr, warmup_steps, max_steps):
    """The schedule of the formula above, written out."""
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step > max_steps:
        return min_lr
    ratio = (step - warmup_steps) / (max_steps - warmup_steps)
    return min_lr + 0.5 * (1 + math.cos(math.pi * ratio)) * (max_lr - min_lr)
_settings = [dict(max_lr=1e-3, min_lr=1e-4, warmup_steps=10, max_steps=110),
             dict(max_lr=3e-3, min_lr=3e-4, warmup_steps=1, max_steps=20)]   # a one-step warmup
_cases = [dict(step=_s, **_kw) for _kw in _settings for _s in range(_kw["max_steps"] + 30)]
_lrs = [call(cosine_lr, **_case) for _case in _cases]
def _named(message):
    """The message, plus the known mistake that gives every one of your wrong rates (and none you got right)."""
    _right = [abs(_lr - _formula(**_c)) <= 1e-12 for _lr, _c in zip(_lrs, _cases)]
    for _m in MISTAKES["cosine_lr"]:
        _same = [abs(_m.answer(**_c) - _lr) <= 1e-12 for _lr, _c in zip(_lrs, _cases)]
        if not all(_right) and all(_s or _r for _s, _r in zip(_same, _right)):
            return message + NAMED + _m.says
    return message
for _case, _lr in zip(_cases, _lrs):   # the ladder: a number; max_lr at w - 1 and w, min_lr at N; within range
    _broken = first_broken(LADDERS["cosine_lr"], _lr, _case)
    assert not _broken, _named(_broken)
_first = _lrs[:140]   # the first setting: warmup_steps = 10, max_steps = 110
assert abs(_first[9] - _first[10]) <= 1e-12, _named(
    f"the schedule must not jump where the warmup ends: lr(9) = {_first[9]:.6g} (the last warmup step) and "
    f"lr(10) = {_first[10]:.6g} (the first cosine step) should both be max_lr")
assert all(_a >= _b - 1e-15 for _a, _b in zip(_first[10:], _first[11:])), _named(
    "after the warmup the rate must only decrease (and stay at min_lr after max_steps)")
for _case, _lr in zip(_cases, _lrs):   # values last
    _want = _formula(**_case)
    assert abs(_lr - _want) <= 1e-12 + 1e-9 * _want, _named(
        f"cosine_lr(step={_case['step']}, warmup_steps={_case['warmup_steps']}, max_steps={_case['max_steps']}) "
        f"should be {_want:.9g}, got {_lr:.9g}")
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("09_nanogpt_finetune", "cosine_lr", cosine_lr)
### END HIDDEN TESTS
''')

nb.md(r"""
## 3. Gradient clipping

Once in a while a batch produces a huge gradient (a rare token, an attention logit that spiked), and one
step of that size can undo hours of training. **Clipping by the global norm** caps the step without changing
its direction. With all gradients $g_1, \dots, g_P$ of the model seen as one long vector,

$$\|g\| = \sqrt{\textstyle\sum_p \|g_p\|^2}, \qquad
g_p \leftarrow g_p \cdot \min\!\Big(1, \frac{c}{\|g\| + 10^{-6}}\Big),$$

where $c$ is `max_norm` (1.0 in GPT-2 style training). Every gradient is scaled by the **same** factor:
clipping each tensor separately would change the direction of the update. The norm before clipping is worth
logging: spikes in it are the first sign of instability.

**Exercise.** Write `clip_gradients(grads, max_norm)`: `grads` is a list of tensors; return
`(clipped, total_norm)`, a list of new tensors and the norm before clipping (a float or 0-d tensor).
You may not call `torch.nn.utils.clip_grad_norm_`.
""")

nb.solution("clip_gradients", r'''
def clip_gradients(grads, max_norm):
    """Scale all gradients by one factor so that their global norm is at most max_norm."""
    ### BEGIN SOLUTION
    total_norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    factor = min(1.0, max_norm / (total_norm.item() + 1e-6))
    return [g * factor for g in grads], total_norm
    ### END SOLUTION
''')

nb.tests("test_clip_gradients", 2, r'''
from gptref.grading.explain import call
from gptref.grading.ladders import agreeing, climb_answer
from gptref.grading.ladders.d09_nanogpt_finetune import LADDERS
from gptref.grading.mistakes.d09_nanogpt_finetune import MISTAKES
from gptref.grading.compare import difference
torch.manual_seed(5)
def _plain(result):
    """(clipped, total_norm) with the norm as a float and the tensors in float64, to compare."""
    return [_c.double() for _c in result[0]], float(result[1])
def _torch_clip(grads, max_norm):
    """torch's clip_grad_norm_ on copies: what clip_gradients must return."""
    _params = [torch.zeros_like(_g, requires_grad=True) for _g in grads]
    for _p, _g in zip(_params, grads):
        _p.grad = _g.clone()
    _total = torch.nn.utils.clip_grad_norm_(_params, max_norm)
    return [_p.grad for _p in _params], _total
_g = [torch.tensor([3.0, 0.0]), torch.tensor([[0.0], [4.0]])]          # global norm 5
_cases = [dict(grads=_g, max_norm=1.0),                                 # clipped by 1/5
          dict(grads=[torch.tensor([0.1, 0.2])], max_norm=1.0),         # below max_norm: unchanged
          dict(grads=[torch.randn(4, 3, dtype=torch.float64) * 5, torch.randn(3, dtype=torch.float64)], max_norm=2.0),
          dict(grads=[torch.randn(6) * 0.3, torch.randn(2, 2) * 0.3, torch.randn(3) * 0.3], max_norm=0.5)]
_results = [call(clip_gradients, **_case) for _case in _cases]
_same = lambda a, b: difference(_plain(a), _plain(b), "(clipped_grads, total_norm)", rtol=1e-5, atol=1e-7)
_known = agreeing(MISTAKES["clip_gradients"], _cases, _results, _same)  # named only if it gives every result
assert torch.equal(_g[0], torch.tensor([3.0, 0.0])), "do not modify the input gradients in place: return new tensors"
for _case, _res in zip(_cases, _results):   # the ladder: a pair, shapes, norm <= max_norm, one factor for all
    climb_answer(_res, _case, LADDERS["clip_gradients"], mistakes=_known)
for _case, _res in zip(_cases, _results):   # values last
    climb_answer(_res, _case, (), _torch_clip(**_case), _known, compare=_same)
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("09_nanogpt_finetune", "clip_gradients", clip_gradients)
### END HIDDEN TESTS
''')

nb.md(r"""
## 4. The loss of supervised fine-tuning

To turn a pretrained model into an assistant, it is fine-tuned on (prompt, response) pairs written as one
sequence, `prompt + response`. The model should learn to *produce* responses, not to predict the user's
prompts, so the next-token loss is averaged over the **response positions only**:

$$L_{\text{SFT}} = \frac{1}{\sum_{b,t} m_{b,t}} \sum_{b,t} m_{b,t}\,\big(-\log p(y_{b,t} \mid x_{b,\le t})\big),$$

where $y$ are the targets (the inputs shifted by one), and $m_{b,t} = 1$ where target $y_{b,t}$ belongs
to the response (0 for prompt and padding). Note the denominator: the number of response tokens, not the
number of positions. (The same effect is often obtained by setting the prompt's targets to $-100$,
`F.cross_entropy`'s `ignore_index`.)

**Exercise.** Write `sft_loss(logits, targets, loss_mask)`: logits `(B, T, V)`, targets `(B, T)`, loss_mask
`(B, T)` bool. Return the scalar mean over the masked positions.
""")

nb.solution("sft_loss", r'''
def sft_loss(logits, targets, loss_mask):
    """Mean next-token cross-entropy over the positions where loss_mask is True."""
    ### BEGIN SOLUTION
    V = logits.shape[-1]
    per_token = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none")  # (B*T,)
    mask = loss_mask.reshape(-1).to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum()
    ### END SOLUTION
''')

nb.tests("test_sft_loss", 2, r'''
from gptref.grading.explain import call, which_mistake
from gptref.grading.ladders import agreeing, climb_answer
from gptref.grading.ladders.d09_nanogpt_finetune import LADDERS, sft_counted_positions
from gptref.grading.mistakes.d09_nanogpt_finetune import MISTAKES
torch.manual_seed(4)
_logits, _targets = torch.randn(2, 6, 9, dtype=torch.float64), torch.randint(0, 9, (2, 6))
_mask = torch.tensor([[False, False, True, True, True, False], [False, True, True, True, True, True]])  # 3 and 5 tokens
_cases = [dict(logits=_logits, targets=_targets, loss_mask=_mask),
          dict(logits=torch.randn(3, 4, 5) * 2, targets=torch.randint(0, 5, (3, 4)),   # float32; one token in row 1
               loss_mask=torch.tensor([[False, False, False, True], [False, True, True, False], [True] * 4]))]
_given = [{_k: _v.clone() for _k, _v in _case.items()} for _case in _cases]
_losses = [call(sft_loss, **_copy) for _copy in _given]
_known = agreeing(MISTAKES["sft_loss"], _cases, _losses)  # named only if it gives every loss
for _case, _copy in zip(_cases, _given):   # the inputs are the caller's: they must come back as they were
    for _k in _case:
        _changed = (_case[_k] != _copy[_k]).sum().item()
        assert _changed == 0, (f"sft_loss changed its argument {_k!r} in place ({_changed} entries): the caller still "
                               "needs it (the notebook uses the same targets afterwards); leave the inputs as they are "
                               "and select the response positions with the mask")
for _case, _out in zip(_cases, _losses):   # the ladder: a scalar in the logits' dtype, within the tokens' losses
    climb_answer(_out, _case, LADDERS["sft_loss"], mistakes=_known)
_counted = call(sft_counted_positions, sft_loss, _cases[0])   # which positions' logits move your loss
assert not _counted, _counted + which_mistake(
    _losses[0], _known, _cases[0],
    F.cross_entropy(_cases[0]["logits"][_cases[0]["loss_mask"]], _cases[0]["targets"][_cases[0]["loss_mask"]]))
for _case, _out in zip(_cases, _losses):   # values last: the mean over the response tokens
    _m = _case["loss_mask"]
    climb_answer(_out.reshape(()), _case, (), F.cross_entropy(_case["logits"][_m], _case["targets"][_m]),
          _known, "the SFT loss")
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("09_nanogpt_finetune", "sft_loss", sft_loss)
### END HIDDEN TESTS
''')

nb.md(r"""
## 5. Training on several processes: distributed data parallel

One process can only go as fast as its device. **Data parallelism** runs $W$ copies of the model (the *ranks*,
one per GPU or per CPU process), gives each a different slice of the batch, and keeps the copies identical:

1. every rank starts from the same parameters (rank 0's are broadcast at the start);
2. every rank computes the loss and the gradients on its own micro-batch of $B/W$ examples;
3. the ranks **average their gradients**: `all_reduce` adds a tensor over all ranks in place, so every rank ends
   up holding $\sum_r g_r$; dividing by $W$ gives the mean;
4. every rank takes the same optimizer step with the same averaged gradient, so the copies stay identical.

Why is that the same as one step on the whole batch? The loss of the batch is the mean over its examples. With
$W$ equal micro-batches $\mathcal B_r$ of size $B/W$,

$$\nabla \frac{1}{B}\sum_{i \in \mathcal B} \ell_i
= \frac{1}{W}\sum_{r=1}^{W} \nabla \frac{1}{B/W}\sum_{i\in \mathcal B_r}\ell_i
= \frac{1}{W}\sum_r g_r ,$$

so the averaged gradient *is* the whole batch's gradient (up to rounding), and the step is the same. (With micro-batches
of unequal sizes a plain average would weight them wrongly; samplers pad the data so that every rank gets the same
number.)

**Clipping comes after the reduction.** Gradient clipping (section 3) looks at the norm of the gradient. Each rank's
own $g_r$ is noisier than the average and has a larger norm, and each would be scaled by a different factor:
the ranks would take different steps and drift apart, and the step would not be the whole batch's. So:
reduce first, then clip the averaged gradient, then step.

`torch.distributed` does the communication. Processes join a *process group* through a rendez-vous (here a file
both can see; across machines a TCP address) and a *backend* that moves the data: `gloo` on CPUs, `nccl` between
GPUs. In real training, `torch.nn.parallel.DistributedDataParallel` does step 3 for you, overlapping the
all-reduce of one layer's gradients with the backward pass of the layers below, and `torchrun` starts the
processes: `torchrun --nproc_per_node=2 -m gptref train ...` starts two copies of the training script, gives each
its `RANK`, `WORLD_SIZE` and the rendez-vous address in environment variables, and the script calls
`dist.init_process_group` with them. The homework's trainer works this way (`gptref/train/ddp.py`): each rank
reads its own batches, `DistributedDataParallel` averages the gradients, and clipping and the optimizer step
follow. Here we do the averaging by hand, on two CPU processes started from this notebook.

**Exercise.** Write `ddp_train_step(model, optimizer, x, y, max_norm)`, run on every rank with that rank's
micro-batch `(x, y)`: compute `F.cross_entropy(model(x), y)`, back-propagate, average every parameter's gradient
over the ranks with `dist.all_reduce` and `dist.get_world_size()`, clip the averaged gradients to `max_norm`
(here you may use `torch.nn.utils.clip_grad_norm_`), take the optimizer step, and return the loss.
`run_ddp` below starts two processes (gloo, a rendez-vous file in a temporary folder), runs your step on each half
of the batch, and returns rank 0's parameters; the tests compare them with one step on the whole batch.
""")

nb.solution("ddp_train_step", r'''
def ddp_train_step(model, optimizer, x, y, max_norm):
    """One data-parallel step on this rank's micro-batch: backward, average the gradients, clip, step."""
    ### BEGIN SOLUTION
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    world_size = dist.get_world_size()
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)  # every rank now holds the sum over the ranks
            p.grad /= world_size                           # ... and the mean
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)  # after the reduction: the same on every rank
    optimizer.step()
    return loss
    ### END SOLUTION
''')

nb.md(r"""
The cell below is given: it builds the small model from a state dict and starts the two processes that call your
`ddp_train_step`. Read it to see how a rank joins the group; you do not need to change it.
""")

nb.code(r'''
def mlp_from_state(state):
    """A small classifier, Linear -> Tanh -> Linear, with the weights in `state`."""
    n_hidden, n_in = state["0.weight"].shape
    model = nn.Sequential(nn.Linear(n_in, n_hidden), nn.Tanh(), nn.Linear(n_hidden, state["2.weight"].shape[0]))
    model = model.to(state["0.weight"].dtype)
    model.load_state_dict(state)
    return model


def one_step_whole_batch(state, x, y, lr, max_norm):
    """What one process gets from one SGD step on the whole batch (clipped at max_norm): the parameters after it."""
    model = mlp_from_state(state)
    F.cross_entropy(model(x), y).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    torch.optim.SGD(model.parameters(), lr=lr).step()
    return model.state_dict()


def _ddp_worker(rank, world_size, folder, state, x, y, lr, max_norm):
    """One rank: join the group, run ddp_train_step on its slice of the batch, rank 0 saves the parameters."""
    import os, traceback
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1); os.dup2(quiet, 2)     # the notebook shows nothing from the workers; errors go to a file
    stage = "join"
    try:
        import datetime
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank,
                                world_size=world_size, timeout=datetime.timedelta(seconds=30))
        stage = "step"
        model = mlp_from_state(state)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        n = x.shape[0] // world_size
        ddp_train_step(model, optimizer, x[rank * n:(rank + 1) * n], y[rank * n:(rank + 1) * n], max_norm)
        torch.save(model.state_dict(), f"{folder}/rank{rank}.pt")   # every rank's: they must all agree
        dist.barrier()                       # no rank leaves while another still talks to it
        # ... and after it nobody does: os._exit below skips destroy_process_group(), which only waits
    except BaseException:
        with open(f"{folder}/error{rank}.part", "w") as f:
            f.write(stage + "\n" + traceback.format_exc())
        os.replace(f"{folder}/error{rank}.part", f"{folder}/error{rank}.txt")   # whole, or not at all
        os._exit(1)
    os._exit(0)


def _start_ranks(folder, world_size, args, seconds=60):
    """Fork one _ddp_worker per rank and wait until they exit, one fails, or `seconds` pass: {rank: error}."""
    import multiprocessing
    from gptref.grading.ranks import wait_for_ranks
    ctx = multiprocessing.get_context("fork")        # fork: the workers see the functions of this notebook
    workers = [ctx.Process(target=_ddp_worker, args=(r, world_size, folder, *args)) for r in range(world_size)]
    for w in workers:
        w.start()
    wait_for_ranks(workers, seconds)    # until all exit, one fails (+2 s for the others), or time is up
    paths = {r: f"{folder}/error{r}.txt" for r in range(world_size)}
    return {r: open(path).read() for r, path in paths.items() if os.path.exists(path)}


def run_ddp(state, x, y, lr, max_norm, world_size=2):
    """One SGD step of mlp_from_state(state) on (x, y) split over world_size processes: rank 0's new parameters."""
    import tempfile

    from gptref.grading.explain import explain_trace, secondhand
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # its first use imports modules: once, here
    for attempt in (1, 2):
        with tempfile.TemporaryDirectory() as folder:
            errors = _start_ranks(folder, world_size, (state, x, y, lr, max_norm))
            if errors and attempt == 1 and all(e.startswith("join") for e in errors.values()):
                continue                             # the group did not form (a busy machine?): once more
            traces = {r: error.partition("\n")[2] for r, error in sorted(errors.items())}
            first = [r for r, trace in traces.items() if not secondhand(trace)] or list(traces)
            if first:   # the rank whose own error started it (the others only lost their peer)
                raise AssertionError(explain_trace(traces[first[0]], f"rank {first[0]}"))
            if not all(os.path.exists(f"{folder}/rank{r}.pt") for r in range(world_size)):
                raise RuntimeError("the workers did not finish within 60 s (does every rank call all_reduce the same "
                                   "number of times?)")
            ranks = [dict(torch.load(f"{folder}/rank{r}.pt")) for r in range(world_size)]  # {parameter name: tensor}
            moved = [any(not torch.equal(got[k], state[k]) for k in state) for got in ranks]
            if moved[0] and not all(moved):
                raise AssertionError(
                    f"rank {moved.index(False)}'s parameters did not change in the step while rank 0's did: every "
                    "rank holds its own copy of the model, so every rank must call optimizer.step() (with the same "
                    "averaged gradients), or the copies drift apart")
            if any(not torch.equal(got[k], ranks[0][k]) for got in ranks[1:] for k in state):
                whole = one_step_whole_batch(state, x, y, lr, max_norm)
                if all(torch.allclose(ranks[0][k], v, rtol=0, atol=1e-10) for k, v in whole.items()):
                    # rank 0 right and another rank not: the result of the reduction did not reach every rank
                    raise AssertionError(
                        "rank 0 ends the step with the right parameters, but another rank does not: every rank holds "
                        "a copy of the model and must step on the same averaged gradients. all_reduce leaves the "
                        "result on EVERY rank; reduce(dst=0) leaves it on rank 0 only, and the others step on "
                        "gradients of their own")
            return ranks[0]
''')

# The mistakes this test names (summing, no all_reduce, clipping first, ...) are in
# gptref.grading.mistakes.d09_nanogpt_finetune.
nb.tests("test_ddp_train_step", 2, r'''
from gptref.grading.data_parallel import one_step_finding
from gptref.grading.explain import call
from gptref.grading.mistakes.d09_nanogpt_finetune import MISTAKES
_g = torch.Generator().manual_seed(11)
_state = {"0.weight": torch.randn(16, 6, generator=_g, dtype=torch.float64) / 2.5,
          "0.bias": torch.randn(16, generator=_g, dtype=torch.float64) / 4,
          "2.weight": torch.randn(4, 16, generator=_g, dtype=torch.float64) / 4,
          "2.bias": torch.randn(4, generator=_g, dtype=torch.float64) / 2}
_x, _y = torch.randn(8, 6, generator=_g, dtype=torch.float64), torch.randint(0, 4, (8,), generator=_g)

for _max_norm in (100.0, 0.05):   # clipping inactive, then active
    _got = call(run_ddp, _state, _x, _y, 0.5, _max_norm)
    _want = one_step_whole_batch(_state, _x, _y, 0.5, _max_norm)
    _same = lambda a, b: all(torch.allclose(a[k], b[k], rtol=0, atol=1e-10) for k in b)
    if not _same(_got, _want):
        for _mistake in MISTAKES["run_ddp"]:
            _params = _mistake.answer(_state, _x, _y, 0.5, _max_norm)
            assert _same(_params, _want) or not _same(_got, _params), \
                f"max_norm={_max_norm}: your parameters are exactly what you get when you {_mistake.says}"
    _err = max((_got[k] - _want[k]).abs().max().item() for k in _want)
    _finding = one_step_finding(_got, _state, _x, _y, 0.5, max_norm=_max_norm)
    assert _same(_got, _want), (f"max_norm={_max_norm}: after one step on two half-batches the parameters differ by "
                                f"up to {_err:.3g} from one step on the whole batch. "
                                + (_finding + ". " if _finding else "") + "Look at the steps in order: zero_grad, "
                                "backward, all_reduce and divide every p.grad, clip, optimizer.step()")
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("09_nanogpt_finetune", "run_ddp", run_ddp)
### END HIDDEN TESTS
''')

nb.md(r"""
## 6. A miniature of the homework: pretrain on Shakespeare, fine-tune on Milton

A tiny character-level GPT (2 layers, 4 heads, 64 channels, context 64) is pretrained on Shakespeare for
100 steps, then fine-tuned on Milton's poetry for 50 steps with a smaller learning rate. Both phases use
your `cosine_lr` and `clip_gradients`. It runs in a few seconds, so the model only learns character
statistics, spelling and layout; the point is the shape of the curves and the change in style.
""")

nb.code(r"""
from gptref.data import corpus
from gptref.decoding import sample

shakespeare = corpus("shakespeare", split="train")[:300_000]
milton_train = corpus("milton", split="train")[:200_000]
milton_val = corpus("milton", split="val")[:50_000]
chars = sorted(set(shakespeare) | set(milton_train) | set(milton_val))
stoi = {c: i for i, c in enumerate(chars)}
encode = lambda s: torch.tensor([stoi[c] for c in s])
decode = lambda ids: "".join(chars[i] for i in ids)
data = {"shakespeare": encode(shakespeare), "milton": encode(milton_train), "milton_val": encode(milton_val)}

config = GPTConfig(vocab_size=len(chars), block_size=64, n_layer=2, n_head=4, n_embd=64, dropout=0.0)
torch.manual_seed(0)
model = GPT(config)
g = torch.Generator().manual_seed(0)


def get_batch(name, batch_size=16):
    ids = data[name]
    start = torch.randint(0, len(ids) - config.block_size - 1, (batch_size,), generator=g).tolist()
    x = torch.stack([ids[s:s + config.block_size] for s in start])           # (B, T)
    y = torch.stack([ids[s + 1:s + config.block_size + 1] for s in start])   # (B, T) next characters
    return x, y


@torch.no_grad()
def val_loss(name, batches=8):
    model.eval()
    loss = sum(model(*get_batch(name))[1].item() for _ in range(batches)) / batches
    model.train()
    return loss


def train(name, steps, max_lr, warmup):
    opt = torch.optim.AdamW(model.parameters(), lr=max_lr, betas=(0.9, 0.95), weight_decay=0.1)
    history = {"loss": [], "lr": [], "grad_norm": []}
    for step in range(steps):
        lr = cosine_lr(step, max_lr, max_lr / 10, warmup, steps)
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = get_batch(name)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in model.parameters() if p.grad is not None]
        clipped, norm = clip_gradients([p.grad for p in params], 1.0)
        for p, c in zip(params, clipped):
            p.grad = c.to(p.dtype)
        opt.step()
        history["loss"].append(loss.item()); history["lr"].append(lr); history["grad_norm"].append(float(norm))
    return history


def show_sample(prompt="\n", n=150, seed=0):
    out = sample(model, encode(prompt)[None, :], n, temperature=0.8, generator=torch.Generator().manual_seed(seed))
    return decode(out[0].tolist())


t0 = time.perf_counter()
runs = {}
phases = (("pretrain", "shakespeare", 100, 3e-3, 10), ("finetune", "milton", 50, 1e-3, 5))
for phase, name, steps, max_lr, warmup in phases:
    runs[phase] = train(name, steps, max_lr, warmup)
    runs[phase]["milton val loss"] = val_loss("milton_val")
    runs[phase]["sample"] = show_sample("Of Man")
print(f"pretraining + fine-tuning took {time.perf_counter() - t0:.1f} s")
print(f"Milton validation loss: {runs['pretrain']['milton val loss']:.3f} before fine-tuning, "
      f"{runs['finetune']['milton val loss']:.3f} after")
""")

nb.code(r"""
pre, fine = runs["pretrain"], runs["finetune"]
fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
steps_pre = range(len(pre["loss"]))
steps_fine = range(len(pre["loss"]), len(pre["loss"]) + len(fine["loss"]))
axes[0].plot(steps_pre, pre["loss"], label="pretraining (Shakespeare)")
axes[0].plot(steps_fine, fine["loss"], label="fine-tuning (Milton)")
axes[0].set_xlabel("step"); axes[0].set_ylabel("training loss (nats/char)"); axes[0].legend(); axes[0].set_title("loss")
axes[1].plot(steps_pre, pre["lr"]); axes[1].plot(steps_fine, fine["lr"])
axes[1].set_xlabel("step"); axes[1].set_title("learning rate: warmup + cosine")
axes[2].plot(steps_pre, pre["grad_norm"]); axes[2].plot(steps_fine, fine["grad_norm"])
axes[2].axhline(1.0, color="gray", ls="--", label="max_norm"); axes[2].legend()
axes[2].set_xlabel("step"); axes[2].set_title("gradient norm before clipping")
plt.tight_layout()
plt.savefig("finetune_curves.png", dpi=90)
plt.show()

print("--- sample BEFORE fine-tuning (Shakespeare model) ---")
print(pre["sample"])
print("--- sample AFTER fine-tuning on Milton ---")
print(fine["sample"])
""")

nb.md(r"""
Things to notice: the loss falls fast during the warmup and then more slowly; the gradient norm is large at
the start (clipping is active there) and settles below `max_norm`. Fine-tuning starts from a low loss,
and its first steps bring the Milton validation loss down: the model adapts to Milton's vocabulary, capital
letters at line starts, and the absence of speaker names. With 150 steps of a tiny model the text
is still mostly nonsense; the homework trains a real model for longer.

### The SFT mask on an example

Here is what the loss mask looks like for one (prompt, response) pair, and the loss of the model above
measured on the response only against on everything.
""")

nb.code(r"""
prompt, response = "Q: Who wrote of Paradise?\nA: ", "Milton, in twelve books.\n"
ids = encode(prompt + response)
x, y = ids[None, :-1], ids[None, 1:]                     # (1, T) inputs and their next characters
loss_mask = torch.zeros_like(y, dtype=torch.bool)
loss_mask[0, len(prompt) - 1:] = True                    # target y_t is a response character
print("".join(c if m else "." for c, m in zip(decode(y[0].tolist()), loss_mask[0].tolist())))
with torch.no_grad():
    logits, _ = model(x)
print(f"loss on the response: {sft_loss(logits, y, loss_mask).item():.3f}   "
      f"on every position: {F.cross_entropy(logits[0], y[0]).item():.3f}")
""")

nb.md(r"""
## 7. The full homework

The homework does the same at a real scale with `gptref.train`: a bigger model, thousands of steps, evaluation
on held-out text, checkpoints, then fine-tuning on Milton and a report. You run it from a terminal at the
repository root, not in this notebook:

```bash
./run homework            # pretrain on Shakespeare, fine-tune on Milton, write the report folder
./run homework --help     # its options
```

Everything the homework does is set by two files, `gptref/train/configs/homework.toml` (pretraining) and
`homework_finetune.toml` (fine-tuning), and what a run should give is measured in
`gptref/train/configs/homework_expected.toml` (the homework's own test checks that table). The cell below reads
the three files and the command's options, so what it prints is what `./run homework` does.
""")

nb.code(r"""
import argparse
import importlib.resources

from gptref.commands import homework as homework_command
from gptref.train.config import load_config


def read_toml(path):
    try:
        import tomllib
    except ModuleNotFoundError:   # Python 3.10
        import tomli as tomllib
    return tomllib.loads(path.read_text())


configs = importlib.resources.files("gptref.train") / "configs"
pre = load_config(configs / "homework.toml")
fine = load_config(configs / "homework_finetune.toml")
expected = read_toml(configs / "homework_expected.toml")["cpu"]

parser = argparse.ArgumentParser(prog="./run homework", add_help=False)
homework_command.add_arguments(parser)
defaults = parser.parse_args([])
print(f"tokenizer: {defaults.tokenizer} by default (--tokenizer bpe switches to gptref's byte-level BPE)")
print(f"model: {pre.n_layer} layers, {pre.n_head} heads, {pre.n_embd} channels, context {pre.block_size} tokens, "
      f"dropout {pre.dropout}")
print(f"pretraining on Shakespeare: {pre.max_iters} iterations of {pre.batch_size} x {pre.block_size} tokens, "
      f"lr {pre.learning_rate} -> {pre.min_lr}, warmup {pre.warmup_iters}")
print(f"fine-tuning on Milton ({defaults.finetune_mode} by default): {fine.max_iters} iterations, "
      f"lr {fine.learning_rate} -> {fine.min_lr}, warmup {fine.warmup_iters}")
print(f"expected on a quiet 2-core CPU: about {expected['seconds'] / 60:.1f} minutes in all; "
      f"Shakespeare val loss {expected['pretrain_val_loss']:.2f} nats/char (chance ln {expected['vocab_size']} = "
      f"{math.log(expected['vocab_size']):.2f}); Milton val loss {expected['milton_val_before']:.2f} before "
      f"fine-tuning -> {expected['milton_val_after']:.2f} after (runs agree within +-{expected['loss_tolerance']})")
print("options:", ", ".join(a.option_strings[0] for a in parser._actions))
""")

nb.md(r"""
On a GPU, `./run homework --device cuda` trains the larger shape of `homework_gpu.toml` instead (nanoGPT's
Shakespeare character model); the report says which one ran.

## 8. What to hand in

* **This notebook**, `09_nanogpt_finetune.ipynb`, with your exercise cells completed and your answers written in
  the answer cells of the two written questions below. Before handing it in, run it top to bottom once
  (*Kernel → Restart Kernel and Run All Cells*) so that every cell has run in order and the visible tests pass;
  the grader runs it again in its own sandbox, so outputs are not what is graded, your code and answers are.
* **Your homework run goes into the notebook, not beside it.** The instructor's `collect` takes only the course's
  notebooks from each submission (any other file, `report.md`, `metrics.json` or a picture, is listed and left
  out), and the grader never sees your `runs/` folder. So copy from your report folder
  (`runs/homework-<timestamp>/`: `report.md`, `metrics.json`, `loss_curves.png`, `samples.txt`) the numbers and
  samples that the second written question asks for into its answer cell.
* The first written question is about fine-tuning in general; the second is about **your own run**: your loss
  curves, your numbers and your samples before and after fine-tuning.
""")

nb.written("q_finetune", 2, r"""
**Written question.** (a) Why is fine-tuning done with a smaller peak learning rate (and a short warmup)
than pretraining? What could go wrong with the pretraining rate? (b) In SFT, what would the model learn if
the loss also counted the prompt tokens, and why does the denominator of the loss (response tokens rather
than all positions) matter when responses have very different lengths across a batch?
""", answer=r"""
(a) The pretrained weights already sit in a good region; fine-tuning should move them a little towards the
new data. A large learning rate takes big steps away from that region and destroys what pretraining learned
(catastrophic forgetting), and with a small fine-tuning set it overfits quickly; the warmup again protects
against the first noisy Adam steps (the optimizer state is fresh). (b) Counting prompt tokens trains the
model to model users' questions as well: part of its capacity and gradient goes to predicting prompts, and
long prompts dominate the loss, so it learns less about answering. Dividing by all positions (including
prompt and padding) makes the effective weight of the response tokens depend on how much prompt and padding
the batch happens to contain, so the loss scale and the gradient change from batch to batch for reasons
unrelated to the responses; dividing by the number of response tokens gives every response token the same
weight. (Some setups average per sequence first, giving each example equal weight; either way the choice
should be deliberate.)
""")

nb.written("q_homework_run", 3, r"""
**Written question — your homework run.** Run `./run homework` and answer from your report folder.
(a) Copy your numbers from `metrics.json`: the final Shakespeare train and val loss, the Milton val loss before and
after fine-tuning, the total time and the tokens per second. How do they compare with the expected values printed in
section 7, and if they differ, why might they (machine, threads, options you changed)?
(b) Describe your `loss_curves.png`: where does the training loss fall fastest, does the validation loss stop
improving before the end, and how large is the gap between training and validation loss? What would you change
(iterations, model size, dropout) given what you see?
(c) Paste the two samples from `samples.txt`, before and after fine-tuning on Milton, and name two concrete
differences (vocabulary, line layout, speaker names, spelling) and what in the training data explains each.
""", answer=r"""
(An example from the reference run; each student's numbers and samples are their own.) (a) Shakespeare val loss
close to the table's value, Milton val loss falling by about 0.1 nats/char after fine-tuning; a slower or busier
machine changes the time and tokens/s but not the losses much, while changing iterations or model size changes
both. (b) The loss falls fastest in the first few hundred iterations (warmup and the first cosine phase: the model
learns character frequencies, then common words); the val loss flattens towards the end as the learning rate
decays; the train/val gap stays small (no dropout is needed at this size and length, a longer run would show it
growing). (c) Before fine-tuning the sample is a play: speaker names in capitals followed by a colon, short lines;
after, it is verse without speaker names, longer lines starting with capitals, Miltonic words; the first comes from
Shakespeare's plays being dialogue, the second from Paradise Lost being continuous blank verse.
""")

nb.md(r"""
## Summary

* A GPT block is two pre-norm residual sub-layers: $x + \mathrm{Attn}(\mathrm{LN}_1 x)$, then
  $x + \mathrm{MLP}(\mathrm{LN}_2 x)$; GPT stacks them between embeddings and a tied output head.
* The learning rate warms up linearly (Adam's early estimates are unreliable), then follows a cosine down to
  a floor at `max_steps`.
* Gradient clipping scales **all** gradients by $\min(1, c/\|g\|)$: the step's size is capped, its direction
  kept.
* SFT averages the next-token loss over the response tokens only.
* Data parallelism averages the ranks' gradients with an all-reduce (then clips, then steps): one step on $W$
  micro-batches is one step on the whole batch. `torchrun` starts the ranks; `DistributedDataParallel` overlaps
  the reduction with the backward pass.
* Pretraining learns the language; fine-tuning, with a smaller learning rate, moves the model towards a
  style or a task. `./run homework` does both at a real scale; hand in this notebook with your run's numbers,
  curves and samples described in the written answer.
""")

# ---- Closing section (ungraded): a modern recipe. One block, kept at the end of the builder (issue 20, section 2).
nb.md(r"""
## 9. Epilogue (ungraded): a modern recipe

The homework trains the way nanoGPT does: AdamW on every weight, GELU, a tied head, a cosine schedule. The NanoGPT
speedrun community (Keller Jordan's `modded-nanogpt`) kept changing that recipe and timing each change; gptref
has six of those changes as options, each switchable on its own (`./run homework --recipe modern` turns on the ones
kept here, `gptref/train/configs/homework_modern.toml` is the same as a config file):

* `optimizer="muon"`: the blocks' 2-D matrices step with **Muon**; embeddings, head, gains and biases keep AdamW.
  Muon (Keller Jordan, 2024) replaces the momentum of a matrix by the nearest orthogonal matrix (a few
  Newton-Schulz iterations): every direction moves at the same rate, so the rare directions that a plain momentum
  update barely touches are learned too.
* `qk_norm=True`: each head's $q$ and $k$ are divided by their RMS before $q k^\top/\sqrt{D}$. QK-norm (Henry et
  al., 2020; Dehghani et al., 2023 for large models) bounds the attention logits, so they cannot grow until the
  softmax saturates; training stays stable at larger learning rates.
* `activation="relu2"`: the MLP uses $\mathrm{ReLU}(x)^2$ instead of GELU, found by the architecture search of
  Primer (So et al., 2021), one of its two changes that saved the most training compute.
* `zero_init_proj=True`: each block's output projections start at zero, so every block starts as the identity
  (the idea of ReZero and Fixup; modded-nanogpt does it): the first steps train a shallow, well-conditioned model
  that deepens as the projections grow.
* `tie_head=False`: the output head gets its own matrix; reading a character and predicting the next one are
  different jobs, and untied neither has to compromise.
* `schedule="wsd"`: warmup, a long constant stretch, then a short linear cooldown. WSD (MiniCPM, Hu et al., 2024)
  spends most of the run at the full learning rate and takes the loss down in the cooldown; a run can be stopped
  or extended without fixing its length in advance.

Muon's core is short: the cell below orthogonalises a random "gradient" whose singular values are spread out and
prints them before and after.
""")

nb.code(r"""
from gptref.train.muon import orthogonalise
from gptref.train.schedule import lr_at, wsd_lr_at

gen = torch.Generator().manual_seed(0)
gradient = torch.randn(128, 512, generator=gen) * torch.logspace(-2, 0, 512)  # (128, 512): columns scaled 100x apart
before = torch.linalg.svdvals(gradient)
after = torch.linalg.svdvals(orthogonalise(gradient))
print(f"singular values before: {before.min():.3f} to {before.max():.3f} (ratio {before.max() / before.min():.0f})")
print(f"after Newton-Schulz:    {after.min():.3f} to {after.max():.3f}")

steps = range(2500)
plt.figure(figsize=(6, 2.5))
plt.plot(steps, [lr_at(s, 2e-3, 2e-4, 100, 2500) for s in steps], label="cosine (nanoGPT)")
plt.plot(steps, [wsd_lr_at(s, 2e-3, 2e-4, 100, 2500, 0.3) for s in steps], label="WSD, cooldown 0.3")
plt.xlabel("step"); plt.ylabel("learning rate"); plt.legend(); plt.tight_layout(); plt.show()
""")

nb.md(r"""
**Which ones help here?** The speedrun measured them on a 124M-parameter GPT-2 on GPUs; the homework's model is
tiny and trains on a CPU. `benchmarks/recipe_ablation.py` trains the homework's pretraining run with each change
alone and with all of them, three seeds each, the same number of iterations for all; the cell below shows its
results (copied from the results file it names, so this notebook does not retrain 24 models).
""")

nb.code(r"""
# benchmarks/recipe_ablation.py: benchmarks/results/recipe_ablation-20261203-013323.json
ABLATION_ITERS = 80
ABLATION = {  # variant: (mean val loss, std over seeds, mean change against baseline, mean wall time in s)
    "baseline": (2.5978, 0.0171, +0.0000, 1256),
    "+muon": (2.4748, 0.0091, -0.1230, 1284),
    "+qk_norm": (2.5914, 0.0131, -0.0064, 1275),
    "+relu2": (2.5783, 0.0020, -0.0195, 1271),
    "+zero_init_proj": (2.6132, 0.0166, +0.0154, 1257),
    "+untied_head": (2.5676, 0.0018, -0.0302, 1256),
    "+wsd": (2.5657, 0.0147, -0.0321, 1255),
    "all": (2.2831, 0.0146, -0.3147, 1296),
}
names = list(ABLATION)
print(f"{'variant':16s} {'val loss':>14s} {'vs baseline':>12s} {'wall s':>7s}")
for name, (mean, std, delta, wall) in ABLATION.items():
    print(f"{name:16s} {mean:7.3f} +- {std:.3f} {delta:+12.3f} {wall:7.0f}")
plt.figure(figsize=(7, 3))
plt.bar(range(len(names)), [ABLATION[n][0] for n in names], yerr=[ABLATION[n][1] for n in names], capsize=3)
plt.axhline(ABLATION["baseline"][0], color="grey", ls="--", lw=1)
low = min(m - s for m, s, _, _ in ABLATION.values())
high = max(m + s for m, s, _, _ in ABLATION.values())
plt.ylim(low - 0.05, high + 0.05)
plt.xticks(range(len(names)), names, rotation=30, fontsize=8)
plt.ylabel("val loss (nats/char)")
plt.title(f"CPU homework, {ABLATION_ITERS} iterations, 3 seeds")
plt.tight_layout(); plt.show()
""")

nb.md(r"""
Read the table above. At this budget (a few tens of iterations on a busy CPU) Muon gives by far the largest drop of
any single change; the untied head, WSD and ReLU^2 help a little; QK-norm is within the seeds' spread; zero-init
projections come out slightly worse here (they pay off in deeper models and longer runs). All six together lower
the loss more than any one of them, so the modern recipe (`homework_modern.toml`) keeps them all. Muon costs extra
work per step (a few small matrix products per weight matrix), visible in the wall-time column; the side-by-side
with nanoGPT in `docs/homework.md` (time to nanoGPT's final loss) is where that cost is weighed against the gain.
""")

nb.save()
