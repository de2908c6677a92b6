"""Builds solutions/09_nanogpt_finetune/09_nanogpt_finetune.ipynb: a GPT block, the training loop's
schedule and clipping, the SFT loss, and a tiny pretrain-then-fine-tune run."""

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
5. read loss curves of pretraining and fine-tuning, and run the full homework with `./run homework`.
""")

nb.code(r"""
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

from gptref.gpt import GPT, GPTConfig, CausalSelfAttention

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

**Exercise.** Complete `MLP` and `Block`. Use `CausalSelfAttention(config)` from `gptref.gpt` (Day 2's
multi-head attention with its projections) and `nn.LayerNorm(config.n_embd)`. Name the parts exactly
`ln_1`, `attn`, `ln_2`, `mlp`, and inside the MLP `c_fc`, `c_proj` (GPT-2's names), so that GPT-2
checkpoints load into them. `block_forward` below runs your block with given weights; the tests call it.
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
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        x = x + self.attn(self.ln_1(x))
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

nb.tests("test_block", 3, r'''
from gptref.gpt import Block as _RefBlock
torch.manual_seed(9)
_cfg = GPTConfig(vocab_size=1, block_size=6, n_layer=1, n_head=2, n_embd=16)
_ref = _RefBlock(_cfg)
with torch.no_grad():
    for _p in _ref.parameters():
        _p.copy_(torch.randn_like(_p) * 0.3 + (1.0 if _p.dim() == 1 and _p.shape[0] == 16 else 0.0))
_mine = Block(_cfg)
_names, _ref_names = set(_mine.state_dict()), set(_ref.state_dict())
assert _names == _ref_names, \
    f"name the parts ln_1, attn, ln_2, mlp (and mlp.c_fc, mlp.c_proj): missing {sorted(_ref_names - _names)}, unexpected {sorted(_names - _ref_names)}"
_x = torch.randn(2, 6, 16) * 2 + 1
_out = block_forward(_x, _ref.state_dict(), 2)
assert _out.shape == _x.shape, f"the block must keep the shape (B, T, C) = {tuple(_x.shape)}, got {tuple(_out.shape)}"
with torch.no_grad():
    _expected = _ref.eval()(_x)
    _post = _ref.ln_1(_x + _ref.attn(_x)); _post = _ref.ln_2(_post + _ref.mlp(_post))
assert not torch.allclose(_out, _post, atol=1e-5), "that is a post-norm block: normalize the INPUT of each sub-layer, x + attn(ln_1(x))"
assert not torch.allclose(_out, _ref.mlp(_ref.ln_2(_ref.attn(_ref.ln_1(_x)))), atol=1e-5), "add each sub-layer's output to x (the residual connection)"
assert torch.allclose(_out, _expected, atol=1e-5), f"max abs error {(_out - _expected).abs().max():.3g} against x + attn(ln_1(x)), then x + mlp(ln_2(x))"
_x2 = _x.clone(); _x2[:, 4:] += 10.0
assert torch.allclose(block_forward(_x2, _ref.state_dict(), 2)[:, :4], _out[:, :4], atol=1e-5), "changing later tokens changed earlier outputs: the attention must be causal"
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("09_nanogpt_finetune", "block_forward", block_forward)
### END HIDDEN TESTS
''')

nb.md(r"""
`gptref.gpt.GPT` is exactly this: `wte` (token embedding) + `wpe` (position embedding), `n_layer` blocks,
`ln_f`, and `lm_head` sharing its weight with `wte`. Its forward returns `(logits, loss)`.

## 2. The learning-rate schedule

Adam's first updates are noisy: its second-moment estimates start from zero, and a randomly initialized
network's gradients are large and badly scaled. A **linear warmup** grows the learning rate from almost 0
to its peak over the first $w$ steps. Afterwards a **cosine decay** lowers it smoothly to a floor
$\eta_{\min}$ (often $\eta_{\max}/10$) at step $N$, so the final steps average out the noise instead of
bouncing around a minimum:

$$\eta(s) = \begin{cases}
\eta_{\max}\,\dfrac{s+1}{w} & s < w \\[2mm]
\eta_{\min} + \tfrac12\big(1 + \cos(\pi r)\big)(\eta_{\max} - \eta_{\min}), \quad r = \dfrac{s - w}{N - w} & w \le s \le N \\[2mm]
\eta_{\min} & s > N
\end{cases}$$

(The $s+1$ makes the very first step use a small non-zero rate; at $s = w - 1$ the warmup reaches $\eta_{\max}$,
and the cosine starts there too, $r = 0$.)

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
_kw = dict(max_lr=1e-3, min_lr=1e-4, warmup_steps=10, max_steps=110)
_lrs = [cosine_lr(s, **_kw) for s in range(130)]
assert all(isinstance(v, (int, float)) for v in _lrs), "return a plain float"
assert _lrs[0] > 0, "the first step's learning rate must be > 0: warm up as max_lr * (step + 1) / warmup_steps"
assert abs(_lrs[0] - 1e-4) < 1e-12 and abs(_lrs[9] - 1e-3) < 1e-12, \
    f"warmup: lr(0) = max_lr / warmup_steps = 1e-4 and lr(warmup_steps - 1) = max_lr, got {_lrs[0]:.3g} and {_lrs[9]:.3g}"
assert abs(_lrs[10] - 1e-3) < 1e-12, "the cosine starts at max_lr when step == warmup_steps"
assert abs(_lrs[60] - 5.5e-4) < 1e-12, \
    f"half-way through the decay the rate is the mean of max_lr and min_lr, 5.5e-4, got {_lrs[60]:.3g}: use 0.5 * (1 + cos(pi * r))"
assert abs(_lrs[110] - 1e-4) < 1e-12 and abs(_lrs[129] - 1e-4) < 1e-12, "at max_steps and after it the rate is min_lr"
assert all(a >= b for a, b in zip(_lrs[10:], _lrs[11:])), "after the warmup the rate must only decrease"
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
_g = [torch.tensor([3.0, 0.0]), torch.tensor([[0.0], [4.0]])]          # global norm 5
_res = clip_gradients(_g, 1.0)
assert isinstance(_res, tuple) and len(_res) == 2, "return a tuple (clipped_grads, total_norm)"
_clipped, _total = _res
assert abs(float(_total) - 5.0) < 1e-6, f"total_norm is the norm of all gradients together, sqrt(3^2 + 4^2) = 5, got {float(_total)}"
assert len(_clipped) == 2 and _clipped[1].shape == (2, 1), "return one clipped tensor per gradient, with its shape"
assert torch.allclose(_clipped[0], torch.tensor([0.6, 0.0]), atol=1e-5) and torch.allclose(_clipped[1], torch.tensor([[0.0], [0.8]]), atol=1e-5), \
    "scale EVERY gradient by the same factor max_norm / total_norm (here 1/5); do not clip each tensor by its own norm"
_small = [torch.tensor([0.1, 0.2])]
assert torch.allclose(clip_gradients(_small, 1.0)[0][0], _small[0]), "when the total norm is below max_norm, leave the gradients unchanged"
assert torch.equal(_g[0], torch.tensor([3.0, 0.0])), "do not modify the input gradients in place: return new tensors"
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
torch.manual_seed(4)
_logits, _targets = torch.randn(2, 6, 9, dtype=torch.float64), torch.randint(0, 9, (2, 6))
_mask = torch.tensor([[False, False, True, True, True, False], [False, True, True, True, True, True]])
_out = sft_loss(_logits, _targets, _mask)
assert isinstance(_out, torch.Tensor) and _out.dim() == 0, "return a scalar tensor"
_per = F.cross_entropy(_logits.reshape(-1, 9), _targets.reshape(-1), reduction="none").view(2, 6)
assert not torch.isclose(_out, _per.mean()), "count only the positions where loss_mask is True"
assert not torch.isclose(_out, (_per * _mask).sum() / _mask.numel()), "divide by the number of response tokens (mask.sum()), not by every position"
assert not torch.isclose(_out, _per[~_mask].mean()), "the loss must count the response tokens (loss_mask True), not the prompt"
assert torch.isclose(_out, _per[_mask].mean()), f"got {_out.item():.6f}, expected {_per[_mask].mean().item():.6f}"
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("09_nanogpt_finetune", "sft_loss", sft_loss)
### END HIDDEN TESTS
''')

nb.md(r"""
## 5. A miniature of the homework: pretrain on Shakespeare, fine-tune on Milton

A tiny character-level GPT (2 layers, 4 heads, 64 channels, context 64) is pretrained on Shakespeare for
a couple of hundred steps, then fine-tuned on Milton's poetry with a smaller learning rate. Both phases use
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
for phase, name, steps, max_lr, warmup in (("pretrain", "shakespeare", 150, 3e-3, 15), ("finetune", "milton", 80, 1e-3, 8)):
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
letters at line starts, and the absence of speaker names. With a few hundred steps of a tiny model the text
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
## 6. The full homework

The homework does the same at a real scale with `gptref.train`: BPE tokens instead of characters, a
6-layer model, thousands of steps, evaluation on held-out plays, checkpoints, and then fine-tuning on
Milton. From the repository root:

```bash
./run homework            # pretrain on Shakespeare, fine-tune on Milton, write loss curves and samples
./run homework --help     # its options (model size, steps, device)
```

It runs on the CPU by default (slowly); on a GPU it takes minutes.
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

nb.md(r"""
## Summary

* A GPT block is two pre-norm residual sub-layers: $x + \mathrm{Attn}(\mathrm{LN}_1 x)$, then
  $x + \mathrm{MLP}(\mathrm{LN}_2 x)$; GPT stacks them between embeddings and a tied output head.
* The learning rate warms up linearly (Adam's early estimates are unreliable), then follows a cosine down to
  a floor at `max_steps`.
* Gradient clipping scales **all** gradients by $\min(1, c/\|g\|)$: the step's size is capped, its direction
  kept.
* SFT averages the next-token loss over the response tokens only.
* Pretraining learns the language; fine-tuning, with a smaller learning rate, moves the model towards a
  style or a task. `./run homework` does both at a real scale.
""")

nb.save()
