"""Day 10, Baichuan 2: SwiGLU, ALiBi, NormHead, max-z loss and a SentencePiece tokenizer with its options."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gptref import heads, losses, positions
from gptref.grading.spec import Exercise

DAY = "10_baichuan2"


def _swiglu_reference(x, w_gate, w_up, w_down):
    return F.linear(F.silu(F.linear(x, w_gate)) * F.linear(x, w_up), w_down)


def _swiglu_cases(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    cases = []
    for shape, c, h, dtype in [((4, 8), 8, 16, torch.float64), ((2, 5, 12), 12, 32, torch.float64),
                               ((3, 1, 6, 16), 16, 40, torch.float32)]:
        cases.append({"x": torch.randn(*shape, generator=g, dtype=dtype),
                      "w_gate": torch.randn(h, c, generator=g, dtype=dtype) / c**0.5,
                      "w_up": torch.randn(h, c, generator=g, dtype=dtype) / c**0.5,
                      "w_down": torch.randn(c, h, generator=g, dtype=dtype) / h**0.5})
    return cases


def _alibi_reference(n_heads, t_q, t_k=None):
    return positions.alibi_bias(n_heads, t_q, t_k)


def _alibi_cases(seed: int) -> list[dict]:
    # powers of two and not (6, 12, 40: the interleaving rule); square and KV-cache shapes
    return [{"n_heads": 8, "t_q": 6}, {"n_heads": 1, "t_q": 3}, {"n_heads": 6, "t_q": 5},
            {"n_heads": 12, "t_q": 2, "t_k": 7}, {"n_heads": 40, "t_q": 1, "t_k": 4}, {"n_heads": 16, "t_q": 4, "t_k": 4}]


def _norm_head_cases(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    cases = []
    for lead, c, v in [((5,), 8, 11), ((2, 3), 16, 30), ((1, 4), 4, 7)]:
        w = torch.randn(v, c, generator=g, dtype=torch.float64) * torch.rand(v, 1, generator=g, dtype=torch.float64) * 5
        cases.append({"x": torch.randn(*lead, c, generator=g, dtype=torch.float64), "weight": w})
    return cases


def _z_cases(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    cases = [{"logits": torch.randn(2, 5, 9, generator=g, dtype=torch.float64) * 4},
             {"logits": torch.randn(7, 13, generator=g, dtype=torch.float64) * 10 - 3, "weight": 1e-3},
             {"logits": -torch.rand(3, 4, 6, generator=g, dtype=torch.float64) * 5 - 1}]  # all logits negative
    return cases


def _z_reference(logits, weight=2e-4):
    return losses.max_z_loss(logits, weight)


# -- the tokenizer: compare what the two models DO on probe strings ------------------------------------
PROBES = ("In 1599 the Globe sold 12345 tickets.", "naïve café ☃ 世界", "    def f(x):\n        return x",
          "ＦＵＬＬ width  and   spaces", "Thou art more lovely and more temperate", "zyzzyva quixotic")


def _pieces(proto: bytes) -> list[list[str]]:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(proto)
    return [sp.EncodeAsPieces(p) for p in PROBES] + [[sp.DecodeIds(sp.EncodeAsIds(p)) for p in PROBES]]


def _compare_tokenizer(got, expected, case):
    if not isinstance(got, (bytes, bytearray)):
        return f"return the model as bytes (sp.serialized_model_proto() or a BytesIO model_writer), got {type(got).__name__}"
    try:
        got_pieces = _pieces(bytes(got))
    except Exception as e:  # noqa: BLE001 - any failure to load is the student's
        return f"the bytes you returned are not a SentencePiece model ({type(e).__name__}: {e})"
    want = _pieces(expected)
    *gp, g_round = got_pieces
    *wp, w_round = want
    for probe, r in zip(PROBES, g_round):
        if r != probe:
            return (f"{probe!r} decodes back as {r!r}: with byte_fallback and no normalisation "
                    "(normalization_rule_name='identity', remove_extra_whitespaces=False) every text round-trips")
    for probe, a, b in zip(PROBES, gp, wp):
        if a != b:
            return f"{probe!r} splits as {a} but Baichuan 2's options give {b}"
    return None


def _tokenizer_reference(text, vocab_size):
    from gptref.tokenizers import train_sentencepiece

    return train_sentencepiece(text, vocab_size)


_TOK_TEXT = ("Shall I compare thee to a summer's day? Thou art more lovely and more temperate.\n"
             "    for i in range(10):\n        total = total + 2024 * i\n"
             "In the year 1609 the sonnets were printed; 154 of them, numbered 1 to 154.\n")


def _tokenizer_cases(seed: int) -> list[dict]:
    code = "def add(a, b):\n    return a + b  # 3.14159 and 2.71828\n\tindented with a tab\n"
    return [{"text": _TOK_TEXT * 30, "vocab_size": 400}, {"text": (code + _TOK_TEXT) * 20, "vocab_size": 330}]


EXERCISES = [
    Exercise(day=DAY, name="swiglu", grade_ids=("test_swiglu",), make_cases=_swiglu_cases,
             reference=_swiglu_reference, forbidden=(),
             description="down(silu(gate(x)) * up(x)) with weight matrices (out, in), no biases"),
    Exercise(day=DAY, name="alibi_bias", grade_ids=("test_alibi_bias",), make_cases=_alibi_cases,
             reference=_alibi_reference, forbidden=(positions.alibi_bias, positions.alibi_slopes),
             description="(H, t_q, t_k) bias -slope_h (i - j) for keys j <= i, paper's slopes, queries last"),
    Exercise(day=DAY, name="norm_head_logits", grade_ids=("test_norm_head_logits",), make_cases=_norm_head_cases,
             reference=heads.norm_head_logits, forbidden=(heads.norm_head_logits,),
             description="logits against the L2-normalised rows of the output weight"),
    Exercise(day=DAY, name="max_z_loss", grade_ids=("test_max_z_loss",), make_cases=_z_cases,
             reference=_z_reference, forbidden=(losses.max_z_loss,),
             description="weight * mean over positions of (largest logit)^2"),
    Exercise(day=DAY, name="train_baichuan_tokenizer", grade_ids=("test_train_baichuan_tokenizer",),
             make_cases=_tokenizer_cases, reference=_tokenizer_reference, compare=_compare_tokenizer,
             description="SentencePiece BPE with Baichuan 2's options; returns the model proto bytes"),
]
