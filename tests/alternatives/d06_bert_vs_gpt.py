"""Honest day-6 solutions written another way than the notebook's (other draw order, index arithmetic)."""

import torch
import torch.nn.functional as F


def mask_tokens(ids, mask_id, vocab_size, p=0.15, special_ids=(), generator=None):
    """One uniform draw per position decides everything: < 0.8 p mask, < 0.9 p random, < p unchanged."""
    u = torch.rand(ids.shape, generator=generator)
    special = torch.isin(ids, torch.tensor(list(special_ids), dtype=ids.dtype))
    selected = (u < p) & ~special
    inputs = ids.clone()
    inputs[selected & (u < 0.8 * p)] = mask_id
    swap = selected & (u >= 0.8 * p) & (u < 0.9 * p)
    inputs[swap] = torch.randint(0, vocab_size, (int(swap.sum()),), generator=generator, dtype=ids.dtype)
    labels = torch.full_like(ids, -100)
    labels[selected] = ids[selected]
    return inputs, labels


def attention_mask(key_is_token, causal):
    """Compare query and key positions directly."""
    B, T = key_is_token.shape
    query = torch.arange(T).view(T, 1)
    key = torch.arange(T).view(1, T)
    order_ok = key <= query if causal else torch.ones(T, T, dtype=torch.bool)
    return (order_ok.unsqueeze(0) & key_is_token.unsqueeze(1)).unsqueeze(1)  # (B, 1, T, T)


def gpt1_objective(lm_logits, clf_logits, tokens, labels, lam=0.5):
    """Cross-entropies with the class dimension second, as F.cross_entropy also accepts."""
    lm_loss = F.cross_entropy(lm_logits[:, :-1].transpose(1, 2), tokens[:, 1:])
    return F.cross_entropy(clf_logits, labels) + lam * lm_loss
