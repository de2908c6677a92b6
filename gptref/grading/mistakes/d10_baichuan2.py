"""Day 10's common wrong answers: SwiGLU, ALiBi, NormHead, the max-z loss and the tokenizer as students often write
them."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from gptref.grading.explain import Mistake


def _glu(activation, on_gate=True):
    def answer(x, w_gate, w_up, w_down):
        gate, up = x @ w_gate.T, x @ w_up.T  # (..., h) each
        hidden = activation(gate) * up if on_gate else gate * activation(up)
        return hidden @ w_down.T  # (..., d)
    return answer


SWIGLU = (
    Mistake("put silu on the up projection: silu goes on the GATE projection, silu(x @ w_gate.T) * (x @ w_up.T)",
            _glu(F.silu, on_gate=False)),
    Mistake("use GELU, which makes GEGLU: use silu (Swish, g * sigmoid(g)) on the gate",
            _glu(F.gelu)),
    Mistake("use sigmoid as the gate's activation (the original GLU): Swish is g * sigmoid(g), F.silu",
            _glu(torch.sigmoid)),
    Mistake("use ReLU on the gate (ReGLU): Swish is g * sigmoid(g), F.silu",
            _glu(torch.relu)),
    Mistake("leave out the up projection: the gate's silu multiplies x @ w_up.T element by element",
            lambda x, w_gate, w_up, w_down: F.silu(x @ w_gate.T) @ w_down.T),
    Mistake("multiply the two projections without any activation (a bilinear layer): silu goes on the gate",
            _glu(lambda t: t)),
    Mistake("apply silu to the product, silu(gate * up): silu goes on the gate alone, then multiply, "
            "silu(gate) * up",
            lambda x, w_gate, w_up, w_down: F.silu((x @ w_gate.T) * (x @ w_up.T)) @ w_down.T),
    Mistake("add silu(gate) and up: the gate MULTIPLIES the up projection element by element, silu(gate) * up",
            lambda x, w_gate, w_up, w_down: (F.silu(x @ w_gate.T) + x @ w_up.T) @ w_down.T),
    Mistake("stop before the down projection: silu(gate) * up is (..., h); multiply it by w_down.T to get back "
            "to (..., d)",
            lambda x, w_gate, w_up, w_down: F.silu(x @ w_gate.T) * (x @ w_up.T)),
)


def _geometric(n):
    return [2 ** (-8 * (h + 1) / n) for h in range(n)]


def _bias(n_heads, t_q, t_k, slopes, queries_last=True, future="zero", sign=-1.0, dtype=torch.float32):
    t_k = t_q if t_k is None else t_k
    i = torch.arange(t_k - t_q, t_k)[:, None] if queries_last else torch.arange(t_q)[:, None]  # (t_q, 1)
    j = torch.arange(t_k)[None, :]  # (1, t_k)
    distance = {"penalise": (i - j).abs(), "zero": (i - j).clamp(min=0), "flipped": (j - i).clamp(min=0)}[future]
    slopes = torch.tensor(slopes, dtype=torch.float64)
    return (sign * slopes[:, None, None] * distance.to(torch.float64)).to(dtype)  # (H, t_q, t_k)


def _paper_slopes(n_heads, half=0, from_zero=False):
    p = 2 ** math.floor(math.log2(n_heads))
    if from_zero:
        interleaved = [2 ** (-8 * h / (2 * p)) for h in range(2 * p)][half::2]
        return [2 ** (-8 * h / p) for h in range(p)] + interleaved[: n_heads - p]
    return _geometric(p) + _geometric(2 * p)[half::2][: n_heads - p]


ALIBI = (
    Mistake("interleave the wrong half of the 2H' slopes: for 6 heads that takes slopes that 4 heads already have "
            "(1/4, 1/16); the extra heads take every other slope of 2H' starting at the first",
            lambda n_heads, t_q, t_k=None: _bias(n_heads, t_q, t_k, _paper_slopes(n_heads, half=1))),
    Mistake("put the queries at the first t_q positions: with a KV cache the queries are the LAST t_q positions, "
            "i = t_k - t_q, ..., t_k - 1",
            lambda n_heads, t_q, t_k=None: _bias(n_heads, t_q, t_k, _paper_slopes(n_heads), queries_last=False)),
    Mistake("start the slopes at 1: h counts from 1 (m_h = 2^(-8h/H), h = 1..H), so 8 heads start at 1/2",
            lambda n_heads, t_q, t_k=None: _bias(n_heads, t_q, t_k, _paper_slopes(n_heads, from_zero=True))),
    Mistake("penalise the later keys too, with |i - j|: they get 0 here, the causal mask handles them",
            lambda n_heads, t_q, t_k=None: _bias(n_heads, t_q, t_k, _paper_slopes(n_heads), future="penalise")),
    Mistake("use 2^(-8h/H) for every head count: when H is not a power of two the paper takes the slopes of "
            "H' = 2^floor(log2 H) heads, then every other slope of 2H'",
            lambda n_heads, t_q, t_k=None: _bias(n_heads, t_q, t_k, _geometric(n_heads))),
    Mistake("measure the distance as j - i: the penalty falls on the later keys and the earlier ones get 0; the "
            "distance back to an earlier key is i - j",
            lambda n_heads, t_q, t_k=None: _bias(n_heads, t_q, t_k, _paper_slopes(n_heads), future="flipped")),
    Mistake("add +m_h (i - j), a reward for distance: ALiBi subtracts m_h (i - j)",
            lambda n_heads, t_q, t_k=None: _bias(n_heads, t_q, t_k, _paper_slopes(n_heads), sign=1.0)),
    Mistake("return the float64 bias: make it float32 (torch.tensor(slopes) of Python floats is float64)",
            lambda n_heads, t_q, t_k=None: _bias(n_heads, t_q, t_k, _paper_slopes(n_heads), dtype=torch.float64)),
)


NORM_HEAD = (
    Mistake("normalise each column (dim=0) instead of each ROW: normalise each ROW, the vector of one token (dim=1)",
            lambda x, weight: x @ (weight / weight.norm(dim=0, keepdim=True)).T),
    Mistake("multiply by the weight as it is: you used the raw weight; divide each row by its norm first",
            lambda x, weight: x @ weight.T),
    Mistake("normalise x as well (a cosine similarity): only the weight's rows are normalised; x keeps its length",
            lambda x, weight: F.normalize(x, dim=-1) @ F.normalize(weight, dim=1).T),
    Mistake("divide each row by its squared norm: divide by ||w_v||, not ||w_v||^2",
            lambda x, weight: x @ (weight / weight.norm(dim=1, keepdim=True) ** 2).T),
    Mistake("divide the whole matrix by one norm (of all its entries): each row gets its own norm, ||w_v||",
            lambda x, weight: x @ (weight / weight.norm()).T),
    Mistake("divide by the sum of absolute values (the L1 norm): NormHead uses the L2 length, weight.norm(dim=1)",
            lambda x, weight: x @ (weight / weight.abs().sum(dim=1, keepdim=True)).T),
)


MAX_Z = (
    Mistake("take the largest absolute value: z is the largest logit, not the largest absolute value",
            lambda logits, weight=2e-4: weight * logits.abs().max(dim=-1).values.pow(2).mean()),
    Mistake("square the logsumexp: z is the largest logit, not the logsumexp (that is PaLM's z-loss)",
            lambda logits, weight=2e-4: weight * logits.logsumexp(dim=-1).pow(2).mean()),
    Mistake("sum over positions: average z^2 over positions (mean), do not sum",
            lambda logits, weight=2e-4: weight * logits.max(dim=-1).values.pow(2).sum()),
    Mistake("always use 2e-4: use the weight argument",
            lambda logits, weight=2e-4: 2e-4 * logits.max(dim=-1).values.pow(2).mean()),
    Mistake("take one largest logit over the whole batch: z is the largest logit of EACH position (max over the "
            "last dimension), then the mean of z^2",
            lambda logits, weight=2e-4: weight * logits.max().pow(2)),
    Mistake("forget the square: the loss is weight * mean(z^2)",
            lambda logits, weight=2e-4: weight * logits.max(dim=-1).values.mean()),
    Mistake("take the max over the first dimension (dim=0, across positions): z is the largest logit of each "
            "position, the max over the LAST dimension (the vocabulary)",
            lambda logits, weight=2e-4: weight * logits.max(dim=0).values.pow(2).mean()),
    Mistake("square every logit: only the largest logit of each position is squared",
            lambda logits, weight=2e-4: weight * logits.pow(2).mean()),
    Mistake("put the weight inside the square, (weight * z) ** 2: the weight multiplies the square, "
            "weight * z ** 2",
            lambda logits, weight=2e-4: (weight * logits.max(dim=-1).values).pow(2).mean()),
    Mistake("take the mean logit of each position: z is the LARGEST logit, logits.max(dim=-1).values",
            lambda logits, weight=2e-4: weight * logits.mean(dim=-1).pow(2).mean()),
    Mistake("square the mean of z, mean(z)^2: the loss averages the squares, mean(z^2), one square per position",
            lambda logits, weight=2e-4: weight * logits.max(dim=-1).values.mean().pow(2)),
    Mistake("leave out the weight: the loss is weight * mean(z^2)",
            lambda logits, weight=2e-4: logits.max(dim=-1).values.pow(2).mean()),
)

def _trained_without(*left_out: str, **changed):
    """A tokenizer trainer that passes the notebook's options except `left_out` (trainer defaults) and `changed`."""
    def answer(text, vocab_size):
        import io

        import sentencepiece as spm

        from gptref.grading.ladders.d10_baichuan2 import TOKENIZER_OPTIONS

        chosen = {name: value for name, (value, _) in TOKENIZER_OPTIONS.items() if name not in left_out}
        out = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter([line for line in text.split("\n") if line]),
                                       model_writer=out, vocab_size=vocab_size, minloglevel=2, num_threads=1,
                                       **{**chosen, **changed})
        return out.getvalue()
    return answer


TOKENIZER = (
    Mistake("leave character_coverage at the trainer's default (0.9995): the table asks 0.9999",
            _trained_without("character_coverage")),
    Mistake("leave max_sentencepiece_length at the trainer's default (16): the table asks 32",
            _trained_without("max_sentencepiece_length")),
    Mistake("leave allow_whitespace_only_pieces off: indentation needs whitespace-only pieces",
            _trained_without("allow_whitespace_only_pieces")),
    Mistake("leave add_dummy_prefix on (the default): Baichuan 2 adds no space before the text",
            _trained_without("add_dummy_prefix")),
    Mistake("leave split_digits off (the default): numbers are split into single digits",
            _trained_without("split_digits")),
    Mistake("keep the default normalisation (nmt_nfkc, extra spaces removed): the table asks identity and "
            "remove_extra_whitespaces=False",
            _trained_without("normalization_rule_name", "remove_extra_whitespaces")),
)

MISTAKES = {"swiglu": SWIGLU, "alibi_bias": ALIBI, "norm_head_logits": NORM_HEAD, "max_z_loss": MAX_Z,
            "train_baichuan_tokenizer": TOKENIZER}
