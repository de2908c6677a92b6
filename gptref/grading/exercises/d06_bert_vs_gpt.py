"""Day 6, BERT against GPT: BERT's 80/10/10 masking, bidirectional and causal masks, GPT-1's objective.

Masking is random, so it is graded by what must hold for every draw (special tokens never selected,
labels -100 where not selected and the original id where selected, unselected inputs unchanged, random
replacements inside the vocabulary) and by proportions within wide bounds (at least 6 standard deviations)
on tens of thousands of tokens, so a correct function fails with negligible probability for any seed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

import gptref.attention as attention
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
    for B, T, V, p in [(64, 256, 1000, 0.15), (128, 128, 50, 0.3), (32, 512, 30522, 0.15), (100, 200, 200, 0.5)]:
        ids = torch.randint(3, V - 1, (B, T), generator=g)  # 0 = [CLS], 1 = [SEP], 2 = [PAD], V - 1 = [MASK]
        ids[:, 0] = 0
        lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
        for b, n in enumerate(lengths.tolist()):
            ids[b, n - 1] = 1
            ids[b, n:] = 2
        cases.append({"ids": ids, "mask_id": V - 1, "vocab_size": V, "p": p, "special_ids": [0, 1, 2],
                      "seed": int(torch.randint(0, 2**31 - 1, (1,), generator=g))})
    return cases


def _wrap_generator(case: dict) -> dict:
    args = dict(case)
    args["generator"] = torch.Generator().manual_seed(args.pop("seed"))
    return args


def _bounds(frac: float, expected: float, n: int, what: str, hint: str) -> str | None:
    slack = 6 * math.sqrt(expected * (1 - expected) / max(n, 1)) + 0.005
    if abs(frac - expected) > slack:
        return f"{what}: {frac:.3f}, expected {expected:.2f} (+- {slack:.3f}) {hint}"
    return None


def mask_tokens_problem(got, case) -> str | None:
    """What is wrong with a result (inputs, labels) of mask_tokens on `case`, or None."""
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"return a pair (inputs, labels), got {type(got).__name__}"
    inputs, labels = got
    ids = case["ids"]
    for name, t in (("inputs", inputs), ("labels", labels)):
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != tuple(ids.shape):
            return f"{name} must be a tensor of the ids' shape {tuple(ids.shape)}, got {getattr(t, 'shape', type(t).__name__)}"
        if t.dtype != ids.dtype:
            return f"{name} must keep the ids' dtype {ids.dtype}, got {t.dtype}"
    selected = labels != -100
    if selected.all():
        return "labels must be -100 at the positions that were not selected (only about p of the tokens get a label)"
    if not torch.equal(labels[selected], ids[selected]):
        return "at a selected position the label must be the ORIGINAL id (and -100 everywhere else)"
    special = torch.zeros(ids.shape, dtype=torch.bool)
    for s in case.get("special_ids", ()):
        special |= ids == s
    if (selected & special).any():
        return "special tokens (special_ids) must never be selected for masking"
    if not torch.equal(inputs[~selected], ids[~selected]):
        return "positions that were not selected must keep their original id in inputs (and get label -100)"
    V = case["vocab_size"]
    if ((inputs < 0) | (inputs >= V)).any():
        return f"random replacement ids must lie in [0, vocab_size={V})"
    p = case.get("p", 0.15)
    n_candidates = int((~special).sum())
    n_sel = int(selected.sum())
    problem = _bounds(n_sel / n_candidates, p, n_candidates, "fraction of non-special tokens selected",
                      f"(select each non-special token with probability p={p})")
    if problem:
        return problem
    sel_in, sel_ids = inputs[selected], ids[selected]
    is_mask = sel_in == case["mask_id"]
    is_kept = (sel_in == sel_ids) & ~is_mask
    is_random = ~is_mask & ~is_kept
    for frac, exp, what in ((is_mask.float().mean().item(), 0.8, "share of selected tokens replaced by mask_id"),
                            (is_random.float().mean().item(), 0.1 * (1 - 1 / V), "share replaced by a random id"),
                            (is_kept.float().mean().item(), 0.1 + 0.1 / V, "share left unchanged")):
        problem = _bounds(frac, exp, n_sel, what, "(BERT's rule: 80% [MASK], 10% random, 10% unchanged)")
        if problem:
            return problem
    return None


def _compare_mask(got, expected, case) -> str | None:
    return mask_tokens_problem(got, case)


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
    if not isinstance(got, torch.Tensor):
        return f"return a tensor, got {type(got).__name__}"
    if got.numel() != 1:  # (a 0-d tensor comes back from the autograder's sandbox as shape (1,))
        return f"return a scalar (a 0-d tensor: the mean loss), got shape {tuple(got.shape)}"
    tol = 1e-5 if expected.dtype == torch.float32 else 1e-9
    if abs(got.item() - expected.item()) <= tol * (1 + abs(expected.item())):
        return None
    lm, clf, tok, lab, lam = (case[k] for k in ("lm_logits", "clf_logits", "tokens", "labels", "lam"))
    V = lm.shape[-1]
    l2 = F.cross_entropy(clf, lab).item()
    l1 = F.cross_entropy(lm[:, :-1].reshape(-1, V), tok[:, 1:].reshape(-1)).item()
    l1_unshifted = F.cross_entropy(lm.reshape(-1, V), tok.reshape(-1)).item()
    close = lambda a: abs(got.item() - a) <= 1e-5 * (1 + abs(a))
    if close(l2 + lam * l1_unshifted):
        return "the LM loss must predict the NEXT token: compare lm_logits[:, :-1] with tokens[:, 1:]"
    if close(lam * l2 + l1):
        return "lambda weights the auxiliary LM loss L1, not the classification loss L2"
    return f"got {got.item():.6f}, expected L2 + lam * L1 = {expected.item():.6f}"


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
    ),
    Exercise(
        day=DAY, name="attention_mask", grade_ids=("test_attention_mask",),
        make_cases=_mask_shape_cases, reference=reference_attention_mask, compare=_compare_attention_mask,
        forbidden=(attention.causal_mask, attention.padding_mask),
        description="bidirectional (BERT) and causal (GPT) masks with padding",
    ),
    Exercise(
        day=DAY, name="gpt1_objective", grade_ids=("test_gpt1_objective",),
        make_cases=_objective_cases, reference=reference_gpt1_objective, compare=_compare_objective,
        description="GPT-1 fine-tuning objective L2 + lambda * L1",
    ),
]
