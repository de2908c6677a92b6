"""Day 6's common wrong answers (attention masks, GPT-1's objective), each as a small function.

`says` completes "Your answer is exactly what you get when you ...". BERT's masking is random; its wrong
answers are told apart by the ladder's invariants (gptref.grading.ladders.d06_bert_vs_gpt), not here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gptref.grading.explain import Mistake


def _mask(key_is_token, causal, *, keys=True, triangle="tril", pad_when_causal=True, inverted=False):
    B, T = key_is_token.shape
    pads = key_is_token[:, None, None, :] if keys else key_is_token[:, None, :, None]
    allowed = pads.expand(B, 1, T, T)  # (B, 1, T, T)
    if causal:
        ones = torch.ones(T, T, dtype=torch.bool)
        tri = {"tril": ones.tril(), "triu": ones.triu(), "strict": ones.tril(-1)}[triangle]
        allowed = (allowed & tri) if pad_when_causal else tri.expand(B, 1, T, T)
    return ~allowed if inverted else allowed


def _objective(lm_logits, clf_logits, tokens, labels, lam=0.5, *, shift="next", weights="right", probs="",
               l2_nll_raw=False):
    V = lm_logits.shape[-1]
    if "clf" in probs:  # probabilities handed to F.cross_entropy, which applies log_softmax itself
        clf_logits = clf_logits.softmax(-1)
    if "lm" in probs:
        lm_logits = lm_logits.softmax(-1)
    # F.nll_loss expects log-probabilities; given raw logits it is the mean of -z_y
    l2 = F.nll_loss(clf_logits, labels) if l2_nll_raw else F.cross_entropy(clf_logits, labels)
    if shift == "next":
        l1 = F.cross_entropy(lm_logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))
    elif shift == "flat":  # shifted after flattening the batch: crosses from one sequence into the next
        l1 = F.cross_entropy(lm_logits.reshape(-1, V)[:-1], tokens.reshape(-1)[1:])
    elif shift == "per_sequence":  # summed over tokens, divided by B: a mean per sequence, not per token
        l1 = F.cross_entropy(lm_logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1), reduction="sum")
        l1 = l1 / lm_logits.shape[0]
    elif shift == "nll_raw":  # F.nll_loss expects log-probabilities; given raw logits it is -z_y
        l1 = F.nll_loss(lm_logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))
    elif shift == "last":  # only the last prediction, logit T-2 for token T-1
        l1 = F.cross_entropy(lm_logits[:, -2], tokens[:, -1])
    elif shift == "summed":  # summed over the B (T - 1) predictions instead of averaged
        l1 = F.cross_entropy(lm_logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1), reduction="sum")
    elif shift == "none":
        l1 = F.cross_entropy(lm_logits.reshape(-1, V), tokens.reshape(-1))
    else:  # the previous token
        l1 = F.cross_entropy(lm_logits[:, 1:].reshape(-1, V), tokens[:, :-1].reshape(-1))
    return {"right": l2 + lam * l1, "swapped": lam * l2 + l1, "both": lam * (l2 + l1), "none": l2 + l1,
            "convex": (1 - lam) * l2 + lam * l1}[weights]


def _objective_with(**slips):
    """gpt1_objective with the exercise's signature and the slips named by `slips` (options of _objective)."""
    def answer(lm_logits, clf_logits, tokens, labels, lam=0.5):
        return _objective(lm_logits, clf_logits, tokens, labels, lam, **slips)
    return answer


MISTAKES = {
    "attention_mask": (
        Mistake("build the causal triangle with triu: queries then see the future; keep j <= i (tril)",
                lambda key_is_token, causal: _mask(key_is_token, causal, triangle="triu")),
        Mistake("apply key_is_token to the queries (rows) instead of the keys (columns): padded keys must be hidden "
                "from every query", lambda key_is_token, causal: _mask(key_is_token, causal, keys=False)),
        Mistake("leave out the diagonal (tril(-1)): a query may attend its own position",
                lambda key_is_token, causal: _mask(key_is_token, causal, triangle="strict")),
        Mistake("drop the padding when causal=True: the causal mask must also hide padded keys",
                lambda key_is_token, causal: _mask(key_is_token, causal, pad_when_causal=False)),
        Mistake("return the mask inverted, True where attention is blocked (nn.MultiheadAttention's convention): "
                "here True means query i MAY attend key j",
                lambda key_is_token, causal: _mask(key_is_token, causal, inverted=True)),
    ),
    "gpt1_objective": (
        Mistake("compare lm_logits with tokens at the same position: the LM loss must predict the NEXT token "
                "(lm_logits[:, :-1] against tokens[:, 1:])",
                _objective_with(shift="none")),
        Mistake("shift the wrong way (lm_logits[:, 1:] against tokens[:, :-1]): logit t predicts token t + 1",
                _objective_with(shift="previous")),
        Mistake("shift after flattening the batch: the last logit of each sequence then predicts the first token "
                "of the next sequence; shift within each sequence (lm_logits[:, :-1], tokens[:, 1:]), then flatten",
                _objective_with(shift="flat")),
        Mistake("sum L1 over the tokens and divide by B only: both losses are means, L1 over all B (T - 1) "
                "predictions",
                _objective_with(shift="per_sequence")),
        Mistake("sum L1 over the B (T - 1) predictions (reduction=\"sum\") instead of averaging them: both "
                "losses are means",
                _objective_with(shift="summed")),
        Mistake("give F.nll_loss the LM's raw logits for L1: it expects log-probabilities (log_softmax first), or "
                "use F.cross_entropy, which takes logits",
                _objective_with(shift="nll_raw")),
        Mistake("give F.nll_loss the classifier's raw logits for L2: it expects log-probabilities (log_softmax "
                "first), so it returns the mean of -z_y; use F.cross_entropy, which takes logits",
                _objective_with(l2_nll_raw=True)),
        Mistake("take the LM loss at the last position only: L1 averages over every position t = 1 .. T-1 of "
                "every sequence (lm_logits[:, :-1] against tokens[:, 1:])",
                _objective_with(shift="last")),
        Mistake("put lambda on L2: lambda weights the auxiliary LM loss L1, not the classification loss",
                _objective_with(weights="swapped")),
        Mistake("multiply both losses by lambda: only the LM loss L1 is weighted, L3 = L2 + lam * L1",
                _objective_with(weights="both")),
        Mistake("weigh L2 by (1 - lambda), a weighted average of the two: L2 keeps its full weight, "
                "L3 = L2 + lam * L1 (lambda only adds the LM loss on top)",
                _objective_with(weights="convex")),
        Mistake("add L1 without lambda (L2 + L1)",
                _objective_with(weights="none")),
        Mistake("give F.cross_entropy the classifier's probabilities (softmax first): it takes raw logits and applies "
                "log_softmax itself, so L2 went through a softmax twice",
                _objective_with(probs="clf")),
        Mistake("give F.cross_entropy the LM's probabilities (softmax first): it takes raw logits and applies "
                "log_softmax itself, so L1 went through a softmax twice",
                _objective_with(probs="lm")),
    ),
}
