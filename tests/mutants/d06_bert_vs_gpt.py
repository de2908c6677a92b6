"""Planted mistakes for 06_bert_vs_gpt."""

from tests.mutants import Mutant

MUTANTS = [
    Mutant(cell="attention_mask", old="torch.ones(T, T, dtype=torch.bool).tril()",
           new="torch.ones(T, T, dtype=torch.bool).triu()",
           fails={"test_attention_mask"}, why="causal triangle the wrong way round: queries see the future", hint="keep j <= i"),
    Mutant(cell="attention_mask", old="allowed = key_is_token[:, None, None, :].expand(B, 1, T, T)",
           new="allowed = key_is_token[:, None, :, None].expand(B, 1, T, T)",
           fails={"test_attention_mask"}, why="padding applied to queries (rows) instead of keys (columns)", hint="padded keys must be hidden from every query"),
    Mutant(cell="mask_tokens", old="selected = (torch.rand(ids.shape, generator=generator) < p) & ~special",
           new="selected = torch.rand(ids.shape, generator=generator) < p",
           fails={"test_mask_tokens"}, why="special tokens can be selected", hint="special tokens (special_ids) must never be selected"),
    Mutant(cell="mask_tokens", old="inputs = torch.where(selected & (r < 0.8), torch.full_like(ids, mask_id), ids)",
           new="inputs = torch.where(r < 0.8, torch.full_like(ids, mask_id), ids)",
           fails={"test_mask_tokens"}, why="masks 80% of all tokens instead of 80% of the selected ones", hint="positions that were not selected keep their id"),
    Mutant(cell="mask_tokens", old="labels = torch.where(selected, ids, torch.full_like(ids, -100))",
           new="labels = ids.clone()",
           fails={"test_mask_tokens"}, why="labels on every position instead of -100 where not selected", hint="labels must be -100 at the positions that were not selected"),
    Mutant(cell="gpt1_objective",
           old="l1 = F.cross_entropy(lm_logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))",
           new="l1 = F.cross_entropy(lm_logits.reshape(-1, V), tokens.reshape(-1))",
           fails={"test_gpt1_objective"}, why="LM loss without the shift: predicts the current token", hint="the LM loss must predict the NEXT token"),
    Mutant(cell="gpt1_objective", old="return l2 + lam * l1", new="return lam * l2 + l1",
           fails={"test_gpt1_objective"}, why="lambda on the classification loss instead of the LM loss", hint="lambda weights the auxiliary LM loss"),
]
