"""Day 6, BERT against GPT: BERT's 80/10/10 masking, bidirectional and causal masks, GPT-1's objective.

Masking is random, so it is graded by what must hold for every draw (special tokens never selected,
labels -100 where not selected and the original id where selected, unselected inputs unchanged, random
replacements inside the vocabulary) and by proportions within wide bounds (at least 6 standard deviations)
on tens of thousands of tokens, so a correct function fails with negligible probability for any seed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import gptref.attention as attention
from gptref.grading.ladders import first_broken
from gptref.grading.ladders.d06_bert_vs_gpt import LADDERS, objective_value
from gptref.grading.spec import Exercise

DAY = "06_bert_vs_gpt"


# ---------------------------------------------------------------- BERT masking


def reference_mask_tokens(ids, mask_id, vocab_size, p=0.15, special_ids=(), generator=None):
    """BERT's 80/10/10 rule: gptref.bert.mask_tokens (the same random draws in the same order)."""
    import gptref.bert as bert

    return bert.mask_tokens(ids, mask_id, vocab_size, p=p, special_ids=special_ids, generator=generator)


def _mask_cases(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    cases = []
    for B, T, V, p, dtype in [(64, 256, 1000, 0.15, torch.int64), (128, 128, 50, 0.3, torch.int64),
                              (32, 512, 30522, 0.15, torch.int64), (100, 200, 200, 0.5, torch.int64),
                              (64, 128, 500, 0.15, torch.int32)]:  # int32 ids: both outputs keep their dtype
        ids = torch.randint(3, V - 1, (B, T), generator=g, dtype=dtype)  # 0 = [CLS], 1 = [SEP], 2 = [PAD], V - 1
        ids[:, 0] = 0
        lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
        for b, n in enumerate(lengths.tolist()):
            ids[b, n - 1] = 1
            ids[b, n:] = 2
        mask_id = 103 if V == 30522 else V - 1  # BERT's own [MASK] id, 103, is not the last id of its vocabulary
        cases.append({"ids": ids, "mask_id": mask_id, "vocab_size": V, "p": p, "special_ids": [0, 1, 2],
                      "seed": int(torch.randint(0, 2**31 - 1, (1,), generator=g))})
    return cases


_GLOBAL_STATE: dict[str, torch.Tensor] = {}  # torch's global random state when the last call's arguments were made


def _wrap_generator(case: dict) -> dict:
    args = dict(case)
    args["generator"] = torch.Generator().manual_seed(args.pop("seed"))
    _GLOBAL_STATE["before the call"] = torch.get_rng_state()
    return args


def draws_only_from_the_generator(got, case) -> str | None:
    """Every random number comes from the generator passed in, so a run is reproducible: torch's global random
    state is the same after the call as before it (checked by the hidden cases, which make the arguments)."""
    before = _GLOBAL_STATE.get("before the call")
    if before is not None and not torch.equal(before, torch.get_rng_state()):
        return ("mask_tokens drew random numbers from torch's global random state: draw every random number from the "
                "generator you are given (torch.rand(ids.shape, generator=generator), and the same for randint), so "
                "that runs are reproducible")
    return None


def mask_tokens_problem(got, case) -> str | None:
    """What is wrong with a result (inputs, labels) of mask_tokens on `case`, or None: the ladder, in order."""
    return first_broken(LADDERS["mask_tokens"], got, case)


def _compare_mask(got, expected, case) -> str | None:
    return None  # a random answer: the ladder (properties=) is the whole check


# ---------------------------------------------------------------- attention masks


def reference_attention_mask(key_is_token, causal):
    """(B, T) bool -> (B, 1, T, T): True where query i may attend key j (a real token, and j <= i if causal)."""
    mask = attention.padding_mask(key_is_token)  # (B, 1, 1, T)
    if causal:
        T = key_is_token.shape[1]
        mask = mask & attention.causal_mask(T, device=key_is_token.device)  # (B, 1, T, T)
    return mask.expand(key_is_token.shape[0], 1, key_is_token.shape[1], key_is_token.shape[1])


def _mask_shape_cases(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed + 1)
    cases = []
    for B, T in [(2, 5), (3, 8), (1, 1), (4, 13)]:
        lengths = torch.randint(1, T + 1, (B,), generator=g)
        key = torch.arange(T)[None, :] < lengths[:, None]  # right padding
        for causal in (False, True):
            cases.append({"key_is_token": key, "causal": causal})
    left = torch.tensor([[False, False, True, True, True], [True, True, True, True, True]])  # left padding
    cases += [{"key_is_token": left, "causal": True}, {"key_is_token": left, "causal": False}]
    right = torch.tensor([[True, True, True, False, False, False], [False] * 6])  # right padding; a row of padding
    cases += [{"key_is_token": right, "causal": True}, {"key_is_token": right, "causal": False}]
    return cases


def _compare_attention_mask(got, expected, case) -> str | None:
    if not isinstance(got, torch.Tensor) or got.dtype != torch.bool:
        return f"return a bool tensor, got {getattr(got, 'dtype', type(got).__name__)}"
    if tuple(got.shape) != tuple(expected.shape):
        return f"mask has shape {tuple(got.shape)}, expected (B, 1, T, T) = {tuple(expected.shape)}"
    if torch.equal(got, expected):
        return None
    T = expected.shape[-1]
    future = torch.ones(T, T, dtype=torch.bool).triu(1)  # key j > query i
    pads = ~case["key_is_token"][:, None, None, :].expand_as(expected)
    if (got & pads).any():
        return "padded keys must be hidden from every query (key_is_token is False there)"
    if case["causal"] and (got & future).any():
        return "causal=True: a query may not attend to later keys (keep j <= i)"
    if not case["causal"] and (expected & ~got & future).any():
        return "causal=False is BERT's bidirectional mask: every query sees every real token, before and after it"
    return "the mask differs from (real key) and (j <= i if causal)"


# ---------------------------------------------------------------- GPT-1's fine-tuning objective


def reference_gpt1_objective(lm_logits, clf_logits, tokens, labels, lam=0.5):
    """L3 = L2 (classification cross-entropy) + lam * L1 (next-token cross-entropy on the input tokens)."""
    V = lm_logits.shape[-1]
    l2 = F.cross_entropy(clf_logits, labels)
    l1 = F.cross_entropy(lm_logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))  # (B*(T-1), V) vs (B*(T-1),)
    return l2 + lam * l1


def _objective_cases(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed + 2)
    cases = []
    for B, T, V, C, lam, dtype in [(4, 6, 11, 2, 0.5, torch.float64), (2, 9, 7, 3, 0.0, torch.float64),
                                   (3, 5, 20, 4, 2.0, torch.float32), (1, 2, 5, 2, 0.5, torch.float64)]:
        cases.append({
            "lm_logits": torch.randn(B, T, V, generator=g, dtype=dtype) * 2,
            "clf_logits": torch.randn(B, C, generator=g, dtype=dtype) * 2,
            "tokens": torch.randint(0, V, (B, T), generator=g),
            "labels": torch.randint(0, C, (B,), generator=g),
            "lam": lam,
        })
    return cases


def _compare_objective(got, expected, case) -> str | None:
    return objective_value(got, expected, case)


def _gptref_bert() -> tuple:
    try:
        import gptref.bert as bert
    except ImportError:
        return ()
    return tuple(fn for fn in (getattr(bert, "mask_tokens", None),) if fn is not None)


EXERCISES = [
    Exercise(
        day=DAY, name="mask_tokens", grade_ids=("test_mask_tokens",),
        make_cases=_mask_cases, reference=reference_mask_tokens, compare=_compare_mask, wrap=_wrap_generator,
        forbidden=_gptref_bert(),
        description="BERT's 80/10/10 masking, graded by invariants and proportions",
        # a pair of the ids' shape and dtype; labels = original id where selected, -100 elsewhere, never on a
        # special token; unselected inputs unchanged, ids inside the vocabulary; then the proportions
        properties=LADDERS["mask_tokens"] + (draws_only_from_the_generator,),
        edge_cases=("special tokens at both ends and padding", "p = 0.15, 0.3 and 0.5", "a small vocabulary (50)",
                    "BERT's vocabulary (30522)", "a [MASK] id that is not vocab_size - 1 (BERT's 103)",
                    "int32 ids (both outputs keep the ids' dtype)"),
    ),
    Exercise(
        day=DAY, name="attention_mask", grade_ids=("test_attention_mask",),
        make_cases=_mask_shape_cases, reference=reference_attention_mask, compare=_compare_attention_mask,
        forbidden=(attention.causal_mask, attention.padding_mask),
        description="bidirectional (BERT) and causal (GPT) masks with padding",
        # bool (B, 1, T, T); padded keys hidden from every query; causal: no later key, own and earlier real keys
        # seen; bidirectional: every real key seen
        properties=LADDERS["attention_mask"],
        edge_cases=("T = 1", "B = 1", "left padding", "right padding", "a row that is all padding",
                    "causal and bidirectional"),
    ),
    Exercise(
        day=DAY, name="gpt1_objective", grade_ids=("test_gpt1_objective",),
        make_cases=_objective_cases, reference=reference_gpt1_objective, compare=_compare_objective,
        description="GPT-1 fine-tuning objective L2 + lambda * L1",
        properties=LADDERS["gpt1_objective"],  # a finite scalar of the logits' dtype; then the value
        edge_cases=("T = 2 (one next-token pair)", "B = 1", "lam = 0 and lam = 2", "float32 and float64"),
    ),
]
