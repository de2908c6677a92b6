"""Planted mistakes for 06_bert_vs_gpt."""

from tests.mutants import Mutant

MUTANTS = [
    Mutant(cell="attention_mask", old="torch.ones(T, T, dtype=torch.bool).tril()",
           new="torch.ones(T, T, dtype=torch.bool).triu()",
           fails={"test_attention_mask"}, why="causal triangle the wrong way round: queries see the future",
           hint="keep j <= i"),
    Mutant(cell="attention_mask", old="allowed = key_is_token[:, None, None, :].expand(B, 1, T, T)",
           new="allowed = key_is_token[:, None, :, None].expand(B, 1, T, T)",
           fails={"test_attention_mask"}, why="padding applied to queries (rows) instead of keys (columns)",
           hint="padded keys must be hidden from every query"),
    Mutant(cell="mask_tokens", old="selected = (torch.rand(ids.shape, generator=generator) < p) & ~special",
           new="selected = torch.rand(ids.shape, generator=generator) < p",
           fails={"test_mask_tokens"}, why="special tokens can be selected",
           hint="special tokens (special_ids) must never be selected"),
    Mutant(cell="mask_tokens", old="inputs = torch.where(selected & (r < 0.8), torch.full_like(ids, mask_id), ids)",
           new="inputs = torch.where(r < 0.8, torch.full_like(ids, mask_id), ids)",
           fails={"test_mask_tokens"}, why="masks 80% of all tokens instead of 80% of the selected ones",
           hint="positions that were not selected keep their id"),
    Mutant(cell="mask_tokens", old="labels = torch.where(selected, ids, torch.full_like(ids, -100))",
           new="labels = ids.clone()",
           fails={"test_mask_tokens"}, why="labels on every position instead of -100 where not selected",
           hint="labels must be -100 at the positions that were not selected"),
    Mutant(cell="gpt1_objective",
           old="l1 = F.cross_entropy(lm_logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))",
           new="l1 = F.cross_entropy(lm_logits.reshape(-1, V), tokens.reshape(-1))",
           fails={"test_gpt1_objective"}, why="LM loss without the shift: predicts the current token",
           hint="the LM loss must predict the NEXT token"),
    Mutant(cell="gpt1_objective", old="return l2 + lam * l1", new="return lam * l2 + l1",
           fails={"test_gpt1_objective"}, why="lambda on the classification loss instead of the LM loss",
           hint="lambda weights the auxiliary LM loss"),
    # common mistakes (gptref/grading/mistakes/d06_bert_vs_gpt.py and the masking ladder): the visible tests name them
    Mutant(cell="attention_mask", old="torch.ones(T, T, dtype=torch.bool).tril()",
           new="torch.ones(T, T, dtype=torch.bool).tril(-1)",
           fails={"test_attention_mask"}, why="causal mask without the diagonal",
           hint="leave out the diagonal (tril(-1))"),
    Mutant(cell="attention_mask", old="allowed = allowed & torch.ones(T, T, dtype=torch.bool).tril()",
           new="allowed = torch.ones(T, T, dtype=torch.bool).tril().expand(B, 1, T, T)",
           fails={"test_attention_mask"}, why="causal mask forgets the padding",
           hint="drop the padding when causal=True"),
    Mutant(cell="mask_tokens", old="return inputs, labels",
           new="return inputs, torch.where(labels != -100, inputs, labels)",
           fails={"test_mask_tokens"}, why="labels are the replacements, not the original ids",
           hint="the label must be the ORIGINAL id (not the replacement)"),
    Mutant(cell="mask_tokens", old="inputs = torch.where(selected & (r < 0.8)",
           new="inputs = torch.where(selected & (r < 0.5)",
           fails={"test_mask_tokens"}, why="masks half of the selected tokens",
           hint="share of selected tokens replaced by mask_id"),
    Mutant(cell="gpt1_objective",
           old="l1 = F.cross_entropy(lm_logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))",
           new="l1 = F.cross_entropy(lm_logits[:, 1:].reshape(-1, V), tokens[:, :-1].reshape(-1))",
           fails={"test_gpt1_objective"}, why="shifts the wrong way", hint="shift the wrong way"),
    Mutant(cell="gpt1_objective", old="return l2 + lam * l1", new="return lam * (l2 + l1)",
           fails={"test_gpt1_objective"}, why="lambda on both losses", hint="multiply both losses by lambda"),
    Mutant(cell="gpt1_objective", old="return l2 + lam * l1", new="return l2 + l1",
           fails={"test_gpt1_objective"}, why="no lambda", hint="add L1 without lambda"),
    # wrong answers written as a new student would (issue 23), each named by its visible test
    Mutant(cell="attention_mask", old="key_is_token[:, None, None, :].expand(B, 1, T, T)",
           new="key_is_token[:, None, :].expand(B, T, T)",
           fails={"test_attention_mask"}, why="(B, T, T): no head dimension", hint="the 1 is for heads"),
    Mutant(cell="attention_mask", old="allowed = allowed & torch.ones(T, T, dtype=torch.bool).tril()",
           new="allowed = allowed * torch.ones(T, T).tril()",
           fails={"test_attention_mask"}, why="a float mask", hint="return a bool tensor"),
    Mutant(cell="attention_mask", old="allowed = allowed & torch.ones(T, T, dtype=torch.bool).tril()",
           new="allowed &= torch.ones(T, T, dtype=torch.bool).tril()",
           fails={"test_attention_mask"}, why="in-place &= on an expanded view",
           hint="wrote into an expanded/broadcast view"),
    Mutant(cell="mask_tokens", old="selected & (r >= 0.8) & (r < 0.9)", new="selected & (r < 0.9)",
           fails={"test_mask_tokens"}, why="the random replacement overwrites the [MASK] ones: 90% random",
           hint="share of selected tokens replaced by mask_id: 0.000"),
    Mutant(cell="mask_tokens",
           old="    inputs = torch.where(selected & (r < 0.8), torch.full_like(ids, mask_id), ids)\n",
           new="    inputs = ids\n    inputs[selected & (r < 0.8)] = mask_id\n",
           fails={"test_mask_tokens"}, why="writes [MASK] into the caller's ids",
           hint="mask_tokens changed its argument ids in place"),
    Mutant(cell="gpt1_objective", old="lm_logits[:, :-1].reshape(-1, V)", new="lm_logits[:, :-1].view(-1, V)",
           fails={"test_gpt1_objective"}, why=".view on a non-contiguous slice",
           hint="is not contiguous in memory, so `.view` cannot flatten it"),
    Mutant(cell="gpt1_objective", old="lm_logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1)",
           new="lm_logits[:, :-1], tokens[:, 1:]",
           fails={"test_gpt1_objective"}, why="(B, T-1, V) logits given to F.cross_entropy unflattened",
           hint="F.cross_entropy reads the classes from dim 1"),
    # a second set, written after the first round of fixes (issue 23)
    Mutant(cell="attention_mask", old="allowed = key_is_token[:, None, None, :].expand(B, 1, T, T)",
           new="allowed = key_is_token[:, None, :, None] & key_is_token[:, None, None, :]",
           fails={"test_attention_mask"}, why="hides padded queries' rows as well as padded keys",
           hint="a padded query still gets its row"),
    Mutant(cell="attention_mask", old="    return allowed", new="    return ~allowed",
           fails={"test_attention_mask"}, why="True where attention is blocked",
           hint="return the mask inverted, True where attention is blocked"),
    Mutant(cell="mask_tokens", old="r = torch.rand(ids.shape, generator=generator)", new="r = torch.rand(ids.shape)",
           fails={"test_mask_tokens"}, why="draws the 80/10/10 choice from the global random state",
           hint="draw every random number from the generator you are given"),
    Mutant(cell="mask_tokens", old="torch.where(selected, ids, torch.full_like(ids, -100))",
           new="torch.where(selected, ids, torch.zeros_like(ids))",
           fails={"test_mask_tokens"}, why="label 0 instead of -100 where not selected",
           hint="labels must be -100 at the positions that were not selected"),
    Mutant(cell="gpt1_objective", old="tokens[:, 1:].reshape(-1))", new='tokens[:, 1:].reshape(-1), reduction="sum")',
           fails={"test_gpt1_objective"}, why="the LM loss summed, not averaged",
           hint='sum L1 over the B (T - 1) predictions (reduction="sum")'),
    Mutant(cell="gpt1_objective", old="F.cross_entropy(clf_logits, labels)",
           new="F.cross_entropy(clf_logits, labels.float())",
           fails={"test_gpt1_objective"}, why="float labels", hint="takes class ids as integer (int64) targets"),
    # a third set, written after the second round of fixes (issue 23)
    Mutant(cell="attention_mask", old=".tril()", new=".tril(1)",
           fails={"test_attention_mask"}, why="tril(1): each query also sees the next key",
           hint="may attend the later key 1: keep j <= i"),
    Mutant(cell="attention_mask", old="key_is_token[:, None, None, :].expand(B, 1, T, T)",
           new="key_is_token[None, None, :, :].expand(B, 1, T, T)",
           fails={"test_attention_mask"}, why="new axes in the wrong places before expand",
           hint="expand only stretches dimensions of size 1"),
    Mutant(cell="mask_tokens", old="special |= ids == s", new="special = ids == s",
           fails={"test_mask_tokens"}, why="only the last special id is excluded",
           hint="special tokens (special_ids) must never be selected"),
    Mutant(cell="mask_tokens", old="(torch.rand(ids.shape, generator=generator) < p)",
           new="(torch.rand(ids.shape, generator=generator) > p)",
           fails={"test_mask_tokens"}, why="selects with probability 1 - p",
           hint="fraction of non-special tokens selected: 0.852"),
    Mutant(cell="gpt1_objective",
           old="l1 = F.cross_entropy(lm_logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))",
           new="l1 = F.nll_loss(lm_logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))",
           fails={"test_gpt1_objective"}, why="F.nll_loss on raw logits",
           hint="give F.nll_loss the LM's raw logits for L1"),
    Mutant(cell="gpt1_objective",
           old="l1 = F.cross_entropy(lm_logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))",
           new="l1 = F.cross_entropy(lm_logits[:, -2], tokens[:, -1])",
           fails={"test_gpt1_objective"}, why="the LM loss at the last position only",
           hint="take the LM loss at the last position only"),
]

# Fresh wrong answers of issue 23 (n58), named by the general machinery or a new known mistake.
MUTANTS += [
    Mutant("mask_tokens", old="torch.full_like(ids, mask_id)", new="torch.full_like(ids, vocab_size - 1)",
           fails={"test_mask_tokens"}, why="[MASK] hard-coded as the last id of the vocabulary",
           hint="but the [MASK] id is the mask_id argument"),
    Mutant("gpt1_objective", old="l2 = F.cross_entropy(clf_logits, labels)",
           new="l2 = F.cross_entropy(clf_logits.softmax(-1), labels)", fails={"test_gpt1_objective"},
           why="softmax before F.cross_entropy in L2", hint="so L2 went through a softmax twice"),
]

# Issue 23, fresh set 3 (f611): a wrong answer whose message blamed the inputs alone.
MUTANTS += [
    Mutant("mask_tokens",
           old="labels = torch.where(selected, ids, torch.full_like(ids, -100))\n"
               "    r = torch.rand(ids.shape, generator=generator)",
           new="r = torch.rand(ids.shape, generator=generator)\n"
               "    labels = torch.where(selected & (r < 0.8), ids, torch.full_like(ids, -100))",
           fails={"test_mask_tokens"}, why="labels only on the positions replaced by [MASK]",
           hint="none of them to mask_id"),
]

# Issue 23, fresh set 6: labels from the positions that changed, and random ids drawn below the [MASK] id.
MUTANTS += [
    Mutant("mask_tokens", old="return inputs, labels",
           new="return inputs, torch.where(inputs != ids, ids, torch.full_like(ids, -100))",
           fails={"test_mask_tokens"}, why="labels only where the input changed (the unchanged 10% lose theirs)",
           hint="or the labels were set only where the input changed"),
    Mutant("mask_tokens", old="torch.randint(0, vocab_size,", new="torch.randint(0, mask_id,",
           fails={"test_mask_tokens"}, why="random ids drawn from [0, mask_id) instead of the whole vocabulary",
           hint="so the draw stopped at the [MASK] id instead of the vocabulary's end"),
]

# Issue 23, fresh set 7: the selection's random number reused for the 80/10/10 split.
MUTANTS += [
    Mutant("mask_tokens",
           old="selected = (torch.rand(ids.shape, generator=generator) < p) & ~special\n"
               "    labels = torch.where(selected, ids, torch.full_like(ids, -100))\n"
               "    r = torch.rand(ids.shape, generator=generator)",
           new="u = torch.rand(ids.shape, generator=generator)\n    selected = (u < p) & ~special\n"
               "    labels = torch.where(selected, ids, torch.full_like(ids, -100))\n    r = u",
           fails={"test_mask_tokens"}, why="the selection's random number reused for the split",
           hint="or it reuses the random number that selected the token"),
]

# Issue 23, fresh set 9: L2 weighed by (1 - lambda).
MUTANTS += [
    Mutant(cell="gpt1_objective", old="return l2 + lam * l1", new="return (1 - lam) * l2 + lam * l1",
           fails={"test_gpt1_objective"}, why="L2 weighed by (1 - lambda) (B-06-15)",
           hint="weigh L2 by (1 - lambda)"),
]

# Issue 23, fresh set 10: the labels the other way round.
MUTANTS += [
    Mutant(cell="mask_tokens", old="labels = torch.where(selected, ids, torch.full_like(ids, -100))",
           new="labels = torch.where(selected, torch.full_like(ids, -100), ids)",
           fails={"test_mask_tokens"}, why="labels the other way round (A-06-08)",
           hint="your labels are the other way round"),
]

# Issue 23, fresh set 11: random ids drawn as int64 whatever the ids' dtype; L2 from F.nll_loss on raw logits.
MUTANTS += [
    Mutant(cell="mask_tokens",
           old="random_ids = torch.randint(0, vocab_size, ids.shape, generator=generator, dtype=ids.dtype)",
           new="random_ids = torch.randint(0, vocab_size, ids.shape, generator=generator)",
           fails={"test_mask_tokens"}, why="random ids int64 for int32 ids (B-06-14)",
           hint="a tensor you build with torch.randint"),
    Mutant(cell="gpt1_objective", old="l2 = F.cross_entropy(clf_logits, labels)",
           new="l2 = F.nll_loss(clf_logits, labels)",
           fails={"test_gpt1_objective"}, why="L2 from F.nll_loss on raw logits (B-06-20)",
           hint="give F.nll_loss the classifier's raw logits for L2"),
]

# Issue 23, fresh set 12: the split reuses the selection's number, rescaled by a fixed 0.15.
MUTANTS += [
    Mutant(cell="mask_tokens",
           old=("selected = (torch.rand(ids.shape, generator=generator) < p) & ~special\n"
                "    labels = torch.where(selected, ids, torch.full_like(ids, -100))\n"
                "    r = torch.rand(ids.shape, generator=generator)"),
           new=("u = torch.rand(ids.shape, generator=generator)\n    selected = (u < p) & ~special\n"
                "    labels = torch.where(selected, ids, torch.full_like(ids, -100))\n    r = u / 0.15"),
           fails={"test_mask_tokens"}, why="the split reuses the selection's number over 0.15 (C-06-8)",
           hint="is spread over a range"),
]
