"""Day 10, Baichuan 2: SwiGLU, ALiBi, NormHead, max-z loss and a SentencePiece tokenizer with its options."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gptref import heads, losses, positions
from gptref.grading.ladders.d10_baichuan2 import LADDERS, same_tokenization
from gptref.grading.spec import Exercise

DAY = "10_baichuan2"


def _swiglu_reference(x, w_gate, w_up, w_down):
    return F.linear(F.silu(F.linear(x, w_gate)) * F.linear(x, w_up), w_down)


def _swiglu_cases(seed: int) -> list[dict]:
    """Constructed on every seed: a zero input row, T = 1, a hidden width that is not a multiple of d, float64 and
    float32, two and three leading dimensions; the values drawn."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for shape, c, h, dtype in [((4, 8), 8, 16, torch.float64), ((2, 5, 12), 12, 32, torch.float64),
                               ((3, 1, 6, 16), 16, 40, torch.float32), ((1, 1, 6), 6, 11, torch.float64)]:
        x = torch.randn(*shape, generator=g, dtype=dtype)
        x.view(-1, c)[0] = 0.0  # a zero row: no biases, so a zero output row
        cases.append({"x": x,
                      "w_gate": torch.randn(h, c, generator=g, dtype=dtype) / c**0.5,
                      "w_up": torch.randn(h, c, generator=g, dtype=dtype) / c**0.5,
                      "w_down": torch.randn(c, h, generator=g, dtype=dtype) / h**0.5})
    return cases


def _alibi_reference(n_heads, t_q, t_k=None):
    return positions.alibi_bias(n_heads, t_q, t_k)


def _alibi_cases(seed: int) -> list[dict]:
    # powers of two and not (6, 12, 40: the interleaving rule); square and KV-cache shapes
    return [{"n_heads": 8, "t_q": 6}, {"n_heads": 1, "t_q": 3}, {"n_heads": 6, "t_q": 5},
            {"n_heads": 12, "t_q": 2, "t_k": 7}, {"n_heads": 40, "t_q": 1, "t_k": 4},
            {"n_heads": 16, "t_q": 4, "t_k": 4},
            {"n_heads": 3, "t_q": 4}, {"n_heads": 2, "t_q": 1}]


def _norm_head_cases(seed: int) -> list[dict]:
    """Constructed on every seed: rows of very different norms (one 100 times longer, one 100 times shorter, like a
    rare token's), a zero input row, one vocabulary entry (V = 1), float64 and float32; the rest drawn."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for lead, c, v, dtype in [((5,), 8, 11, torch.float64), ((2, 3), 16, 30, torch.float64),
                              ((1, 4), 4, 7, torch.float64),
                              ((3,), 6, 1, torch.float64), ((2, 2), 8, 9, torch.float32)]:
        w = torch.randn(v, c, generator=g, dtype=dtype) * torch.rand(v, 1, generator=g, dtype=dtype) * 5
        w[0] *= 100.0
        w[-1] /= 100.0 if v > 1 else 1.0
        x = torch.randn(*lead, c, generator=g, dtype=dtype)
        x.view(-1, c)[-1] = 0.0
        cases.append({"x": x, "weight": w})
    return cases


def _z_cases(seed: int) -> list[dict]:
    """Constructed on every seed: all logits negative (largest logit != largest absolute value), a weight other than
    2e-4, one position ((V,) logits), rows whose logits are all equal; the values drawn."""
    g = torch.Generator().manual_seed(seed)
    cases = [{"logits": torch.randn(2, 5, 9, generator=g, dtype=torch.float64) * 4},
             {"logits": torch.randn(7, 13, generator=g, dtype=torch.float64) * 10 - 3, "weight": 1e-3},
             {"logits": -torch.rand(3, 4, 6, generator=g, dtype=torch.float64) * 5 - 1},  # all logits negative
             {"logits": torch.randn(10, generator=g, dtype=torch.float64) * 3, "weight": 0.5},  # one position
             {"logits": torch.cat([torch.full((1, 5), -2.0, dtype=torch.float64),
                                   torch.randn(3, 5, generator=g, dtype=torch.float64) * 6]), "weight": 0.01},
             {"logits": torch.randn(4, 7, generator=g) * 5}]  # float32
    return cases


def _z_reference(logits, weight=2e-4):
    return losses.max_z_loss(logits, weight)


# -- the tokenizer: the ladder reads the options back from the model, then the pieces are compared ---------
PROBES = ("In 1599 the Globe sold 12345 tickets.", "naïve café ☃ 世界", "    def f(x):\n        return x",
          "ＦＵＬＬ width  and   spaces", "Thou art more lovely and more temperate", "zyzzyva quixotic")


def _compare_tokenizer(got, expected, case):
    return same_tokenization(got, expected, PROBES)


def _tokenizer_reference(text, vocab_size):
    from gptref.tokenizers import train_sentencepiece

    return train_sentencepiece(text, vocab_size)


_TOK_TEXT = ("Shall I compare thee to a summer's day? Thou art more lovely and more temperate.\n"
             "    for i in range(10):\n        total = total + 2024 * i\n"
             "In the year 1609 the sonnets were printed; 154 of them, numbered 1 to 154.\n")


def _tokenizer_cases(seed: int) -> list[dict]:
    """Constructed on every seed (training is deterministic): a text rich enough that every option trains, with
    empty lines, tabs, indentation, digits and a rare character; a repetitive text with the vocabulary just above
    the 259 reserved pieces; a text where most lines are code."""
    from gptref import data

    code = "def add(a, b):\n    return a + b  # 3.14159 and 2.71828\n\n\tindented with a tab ☃\n"
    start = 1000 * (seed % 20)  # a different stretch of Shakespeare per seed
    return [{"text": data.corpus("shakespeare")[start:start + 12000] + "\n\n" + code, "vocab_size": 420},
            {"text": _TOK_TEXT * 30, "vocab_size": 310}, {"text": (code + _TOK_TEXT) * 20, "vocab_size": 330}]


EXERCISES = [
    Exercise(day=DAY, name="swiglu", grade_ids=("test_swiglu",), make_cases=_swiglu_cases,
             reference=_swiglu_reference, forbidden=(),
             description="down(silu(gate(x)) * up(x)) with weight matrices (out, in), no biases",
             # the ladder: x's shape and dtype, finite; zero rows stay zero; then values
             properties=LADDERS["swiglu"],
             edge_cases=("a zero input row", "T = 1", "hidden width not a multiple of d", "float32 and float64",
                         "two to four dimensions")),
    Exercise(day=DAY, name="alibi_bias", grade_ids=("test_alibi_bias",), make_cases=_alibi_cases,
             reference=_alibi_reference, forbidden=(positions.alibi_bias, positions.alibi_slopes),
             description="(H, t_q, t_k) bias -slope_h (i - j) for keys j <= i, paper's slopes, queries last",
             # the ladder: float32 (H, t_q, t_k); 0 from the diagonal on; <= 0 and linear in i - j per head;
             # power-of-two slopes 2^(-8h/H); then values (the interleaved slopes, the KV-cache rows)
             properties=LADDERS["alibi_bias"],
             edge_cases=("one head", "head counts that are powers of two and not (3, 6, 12, 40)", "t_q = 1",
                         "a KV cache (t_k > t_q)", "t_k given equal to t_q")),
    Exercise(day=DAY, name="norm_head_logits", grade_ids=("test_norm_head_logits",), make_cases=_norm_head_cases,
             reference=heads.norm_head_logits, forbidden=(heads.norm_head_logits,),
             description="logits against the L2-normalised rows of the output weight",
             # the ladder: (..., V) in x's dtype, finite; |logit| <= ||x||; then values
             properties=LADDERS["norm_head_logits"],
             edge_cases=("rows 100 times longer and shorter than the others", "a zero input row", "V = 1",
                         "float32 and float64")),
    Exercise(day=DAY, name="max_z_loss", grade_ids=("test_max_z_loss",), make_cases=_z_cases,
             reference=_z_reference, forbidden=(losses.max_z_loss,),
             description="weight * mean over positions of (largest logit)^2",
             # the ladder: 0-dim in the logits' dtype, finite, >= 0; then values
             properties=LADDERS["max_z_loss"],
             edge_cases=("all logits negative", "a weight other than 2e-4", "one position (V,)",
                         "a row of equal logits", "float32 and float64")),
    Exercise(day=DAY, name="train_baichuan_tokenizer", grade_ids=("test_train_baichuan_tokenizer",),
             make_cases=_tokenizer_cases, reference=_tokenizer_reference, compare=_compare_tokenizer,
             description="SentencePiece BPE with Baichuan 2's options; returns the model proto bytes",
             # the ladder: bytes that load; vocab_size pieces, 3 specials then 256 bytes; each option of the
             # notebook's table, read back from the model; round trips and split digits; then the pieces
             properties=LADDERS["train_baichuan_tokenizer"],
             edge_cases=("a text rich enough that every option trains (each option is read back from the model)",
                         "empty lines and lines of only spaces or a tab", "a vocabulary just above the 259 reserved "
                         "pieces", "characters outside the training text (accents, CJK, full-width, a snowman)",
                         "runs of spaces and leading spaces", "numbers of several digits")),
]
