"""Day 6's ladders: what every correct BERT masking, attention mask and GPT-1 objective answer has.

Masking is random, so its ladder holds for every draw (special tokens never selected, labels the original id
where selected and -100 elsewhere, unselected inputs unchanged, replacements inside the vocabulary) and then
checks proportions within wide bounds (at least 6 standard deviations), so a correct function fails with
negligible probability: the 80/10/10 shares, and random ids spread over the whole vocabulary.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# ---------------------------------------------------------------- BERT masking


def _special(case: dict) -> torch.Tensor:
    special = torch.zeros(case["ids"].shape, dtype=torch.bool)
    for s in case.get("special_ids", ()):
        special |= case["ids"] == s
    return special


def masking_form(got, case) -> str | None:
    """A pair (inputs, labels) of tensors with the ids' shape and dtype."""
    ids = case["ids"]
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"return a pair (inputs, labels), got {type(got).__name__}"
    for name, t in zip(("inputs", "labels"), got):
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != tuple(ids.shape):
            shape = getattr(t, "shape", type(t).__name__)
            return f"{name} must be a tensor of the ids' shape {tuple(ids.shape)}, got {shape}"
        if t.dtype != ids.dtype:
            return (f"{name} must keep the ids' dtype {ids.dtype}, got {t.dtype}: a tensor you build with "
                    "torch.randint, torch.full or torch.tensor is int64 unless you pass dtype=ids.dtype")
    return None


def _labels_inverted(got, case) -> str | None:
    """Labels the other way round: -100 where selected and the id everywhere else. Seen as: no input that changed
    carries a label (a selected position always does), and the labelled share of the ordinary tokens is nearer 1 - p
    than p (a second, independent draw of the selection would label about p of them)."""
    ids, (inputs, labels) = case["ids"], got
    p, ordinary = case["p"], ~_special(case)
    labelled, changed = labels != -100, inputs != ids
    if p >= 0.5 or not changed.any() or (changed & labelled).any() or not ordinary.any():
        return None
    share = (labelled & ordinary).sum().item() / ordinary.sum().item()
    if abs(share - (1 - p)) >= abs(share - p):
        return None
    return (f"your labels are the other way round: none of the {int(changed.sum())} positions whose input you changed "
            f"has a label (they all have -100), while {share:.0%} of the ordinary tokens carry their id, about 1 - p "
            f"with p={p}: the label is the original id where the position WAS selected, -100 everywhere else "
            "(torch.where(selected, ids, -100))")


def labels_mark_the_selection(got, case) -> str | None:
    """Labels: the original id where selected, -100 elsewhere; never on a special token."""
    ids, (_, labels) = case["ids"], got
    selected = labels != -100
    if selected.all():
        return "labels must be -100 at the positions that were not selected (only about p of the tokens get a label)"
    if not torch.equal(labels[selected], ids[selected]):
        return "at a selected position the label must be the ORIGINAL id (not the replacement), and -100 elsewhere"
    inverted = _labels_inverted(got, case)
    if inverted:
        return inverted
    if (selected & _special(case)).any():
        return "special tokens (special_ids) must never be selected for masking"
    return None


def only_selected_inputs_change(got, case) -> str | None:
    """Inputs keep their id wherever the label is -100, and every id stays inside the vocabulary."""
    ids, (inputs, labels) = case["ids"], got
    selected = labels != -100
    moved = (inputs != ids) & ~selected
    if moved.any():
        where = tuple(int(i) for i in moved.nonzero()[0])
        if not (inputs[moved] == case["mask_id"]).any():  # random ids only: a replacement or a label left out
            return (f"{int(moved.sum())} of your positions with label -100 changed in inputs, none of them to mask_id, "
                    f"e.g. at {where} id {int(ids[where])} became {int(inputs[where])}: an input may change only at a "
                    "selected position, and every selected position gets its original id as label, whatever its "
                    "input became (mask_id, a random id or itself): look at the random replacement, its condition "
                    "and the labels of the positions it replaces")
        return (f"positions that were not selected keep their id in inputs (and get label -100); "
                f"{int(moved.sum())} of your unselected positions changed, e.g. at {where} id {int(ids[where])} became "
                f"{int(inputs[where])}: every replacement (mask_id or random) applies to selected positions only")
    V = case["vocab_size"]
    if ((inputs < 0) | (inputs >= V)).any():
        return f"random replacement ids must lie in [0, vocab_size={V})"
    return None


def masks_use_mask_id(got, case) -> str | None:
    """The replacement most selected tokens get is mask_id itself (not another fixed id)."""
    ids, (inputs, labels) = case["ids"], got
    changed = inputs[(labels != -100) & (inputs != ids)]
    if changed.numel() < 20:
        return None
    commonest = int(changed.mode().values)
    share = (changed == commonest).float().mean().item()
    if commonest != case["mask_id"] and share > 0.5:
        return (f"{share:.0%} of the selected tokens you changed became id {commonest}, but the [MASK] id is the "
                f"mask_id argument, {case['mask_id']} here: replace with mask_id (BERT's [MASK] is 103, not the "
                f"last id of its vocabulary)")
    return None


def _bounds(frac: float, expected: float, n: int, what: str, hint: str) -> str | None:
    slack = 6 * math.sqrt(expected * (1 - expected) / max(n, 1)) + 0.005
    if abs(frac - expected) > slack:
        return f"{what}: {frac:.3f}, expected {expected:.2f} (+- {slack:.3f}) {hint}"
    return None


def proportions(got, case) -> str | None:
    """About p of the non-special tokens selected; of those 80% [MASK], 10% random, 10% unchanged."""
    ids, (inputs, labels) = case["ids"], got
    selected, special = labels != -100, _special(case)
    p, V = case.get("p", 0.15), case["vocab_size"]
    n_candidates, n_sel = int((~special).sum()), int(selected.sum())
    if n_sel == 0:
        return _bounds(0.0, p, n_candidates, "fraction of non-special tokens selected",
                       f"(select each non-special token with probability p={p})")
    sel_in, sel_ids = inputs[selected], ids[selected]
    is_mask = sel_in == case["mask_id"]
    is_kept = (sel_in == sel_ids) & ~is_mask
    is_random = ~is_mask & ~is_kept
    shares = [share.float().mean().item() for share in (is_mask, is_random, is_kept)]
    yours = (f"(of your selected tokens {shares[0]:.3f} became mask_id, {shares[1]:.3f} a random id and "
             f"{shares[2]:.3f} stayed unchanged; BERT's rule: 80% [MASK], 10% random, 10% unchanged)")
    if is_mask.all() and _bounds(1.0, 0.8, n_sel, "", ""):
        return (f"every one of your {n_sel} selected tokens became mask_id, none a random id and none left unchanged: "
                "either the 80/10/10 split is missing, or it reuses the random number that selected the token "
                "(each selected one is below p, so below 0.8 too): draw a second random number for the split")
    # before the share selected: labels set only where the input changed also select 10% too few
    if not is_kept.any() and is_random.any() and _bounds(0.0, 0.1 + 0.1 / V, n_sel, "", ""):
        return (f"none of your {n_sel} selected tokens (those with a label) kept its id in inputs, but BERT leaves "
                f"10% of the selected tokens unchanged and they keep their label too {yours}: either the unchanged "
                "10% is missing, or the labels were set only where the input changed (every selected position gets "
                "its original id as label, whatever its input became: mask_id, a random id or itself)")
    problem = _bounds(n_sel / n_candidates, p, n_candidates, "fraction of non-special tokens selected",
                      f"(select each non-special token with probability p={p})")
    if problem:
        return problem
    squeezed = shares[0] / 0.8  # a split number uniform on [0, 1 / squeezed) instead of [0, 1)
    if 0.05 < squeezed < 0.85 and not _bounds(shares[1], 0.1 * squeezed, n_sel, "", "") \
            and not _bounds(shares[2], 1 - 0.9 * squeezed, n_sel, "", ""):
        return (f"your shares are BERT's 80% and 10% times {squeezed:.2f}, the unchanged share taking the rest "
                f"{yours}: the number that decides the split is spread over a range {1 / squeezed:.2f} times too "
                f"wide, as when the number that selected the token (below p = {p}) is reused and divided by a "
                "constant other than p; draw a second random number for the split, r = torch.rand(...)")
    for frac, want, what in ((shares[0], 0.8, "share of selected tokens replaced by mask_id"),
                             (shares[1], 0.1 * (1 - 1 / V), "share replaced by a random id"),
                             (shares[2], 0.1 + 0.1 / V, "share left unchanged")):
        problem = _bounds(frac, want, n_sel, what, yours)
        if problem:
            return problem
    return None


def random_ids_span_the_vocabulary(got, case) -> str | None:
    """The random replacements are drawn from the whole vocabulary [0, vocab_size): about half lie in its upper half."""
    ids, (inputs, labels) = case["ids"], got
    selected, V = labels != -100, case["vocab_size"]
    random_ids = inputs[selected & (inputs != ids) & (inputs != case["mask_id"])]
    n_random = random_ids.numel()
    upper = (random_ids >= V // 2).float().mean().item() if n_random else 0.0
    expected = (V - V // 2) / V
    if n_random < 20 or not _bounds(upper, expected, n_random, "", ""):
        return None
    largest, mask_id = int(random_ids.max()), case["mask_id"]
    below_mask = (f": every one is below mask_id = {mask_id}, so the draw stopped at the [MASK] id instead of the "
                  f"vocabulary's end" if largest < mask_id < V - 1 else "")
    return (f"of your {n_random} random replacements {upper:.3f} lie in the upper half of the vocabulary "
            f"[{V // 2}, {V}); drawn uniformly from [0, vocab_size={V}) about {expected:.2f} would (your largest "
            f"random id is {largest}){below_mask}: draw them with torch.randint(0, vocab_size, ..., generator=...)")


# ---------------------------------------------------------------- attention masks


def mask_form(got, case) -> str | None:
    """A bool (B, 1, T, T) tensor."""
    B, T = case["key_is_token"].shape
    if not isinstance(got, torch.Tensor):
        return f"return a tensor, got {type(got).__name__}"
    if got.dtype != torch.bool:
        return f"return a bool tensor (True = may attend), got dtype {got.dtype}"
    if tuple(got.shape) != (B, 1, T, T):
        return f"the mask has shape {tuple(got.shape)}; it must be (B, 1, T, T) = {(B, 1, T, T)} (the 1 is for heads)"
    return None


def padded_keys_hidden(got, case) -> str | None:
    """No query attends a padded key (a column where key_is_token is False)."""
    pads = ~case["key_is_token"][:, None, None, :].expand_as(got)  # (B, 1, T, T) padded KEYS are columns j
    seen = got & pads
    if seen.any():
        b, _, i, j = (int(x) for x in seen.nonzero()[0])
        return (f"row {b}: query {i} may attend key {j}, a padded key: no query may attend a padded key "
                "(mask the columns j where key_is_token[b, j] is False)")
    return None


def causal_rule(got, case) -> str | None:
    """With causal, no query sees a later key; each query sees its own and earlier real keys; without, all real keys."""
    key = case["key_is_token"]
    T = key.shape[1]
    want = key[:, None, None, :].expand_as(got)  # (B, 1, T, T)
    if case["causal"]:
        future = torch.ones(T, T, dtype=torch.bool).triu(1)  # key j > query i
        if (got & future).any():
            b, _, i, j = (int(x) for x in (got & future).nonzero()[0])
            return f"causal=True: query {i} of row {b} may attend the later key {j}: keep j <= i"
        want = want & ~future
    missing = want & ~got
    if missing.any():
        b, _, i, j = (int(x) for x in missing.nonzero()[0])
        if not bool(key[b, i]):
            return (f"row {b}: query {i} is padding and you hid its row, but a padded query still gets its row of "
                    "the formula: the mask depends on the keys only (the loss ignores padded queries' outputs)")
        where = "itself" if i == j else ("an earlier key" if j < i else "a later key")
        rule = ("each query sees its own position and every earlier real key (diagonal included)"
                if case["causal"] else
                "causal=False is BERT's bidirectional mask: every query sees every real token, before and after it")
        return f"row {b}: query {i} may not attend key {j} ({where}, a real token): {rule}"
    return None


# ---------------------------------------------------------------- GPT-1's objective


def objective_form(got, case) -> str | None:
    """A finite scalar tensor of the logits' dtype."""
    if not isinstance(got, torch.Tensor):
        return f"return a tensor (keep the loss in torch so it can be back-propagated), got {type(got).__name__}"
    if got.numel() != 1:  # (a 0-d tensor comes back from the autograder's sandbox as shape (1,))
        return f"return a scalar (a 0-d tensor: both losses are means), got shape {tuple(got.shape)}"
    if got.dtype != case["lm_logits"].dtype:
        return f"the loss has dtype {got.dtype}; keep the logits' dtype {case['lm_logits'].dtype}"
    if not torch.isfinite(got).all():
        return f"the loss is {got.item()}, not a finite number"
    return None


def objective_value(got, expected, case) -> str | None:
    """L2 + lam * L1, with both numbers shown."""
    tol = 1e-5 if expected.dtype == torch.float32 else 1e-9
    if abs(got.item() - expected.item()) <= tol * (1 + abs(expected.item())):
        return None
    lm, clf, tok, lab = (case[k] for k in ("lm_logits", "clf_logits", "tokens", "labels"))
    V = lm.shape[-1]
    l2 = F.cross_entropy(clf, lab).item()
    l1 = F.cross_entropy(lm[:, :-1].reshape(-1, V), tok[:, 1:].reshape(-1)).item()
    if case.get("lam", 0.5) == 0:
        return (f"got {got.item():.6f}; with lam = 0 the objective is L2 alone, the classifier's cross-entropy "
                f"F.cross_entropy(clf_logits, labels) = {l2:.6f}: look at how you compute L2")
    return (f"got {got.item():.6f}, expected L2 + lam * L1 = {l2:.6f} + {case.get('lam', 0.5)} * {l1:.6f} = "
            f"{expected.item():.6f} (L2: classifier cross-entropy; L1: next-token cross-entropy)")


LADDERS = {
    "mask_tokens": (masking_form, labels_mark_the_selection, only_selected_inputs_change, masks_use_mask_id,
                    proportions, random_ids_span_the_vocabulary),
    "attention_mask": (mask_form, padded_keys_hidden, causal_rule),
    "gpt1_objective": (objective_form,),
}
