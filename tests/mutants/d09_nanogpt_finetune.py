"""Planted mistakes for 09_nanogpt_finetune."""

from tests.mutants import Mutant

MUTANTS = [
    Mutant(cell="block", old="x = x + self.attn(self.ln_1(x))", new="x = self.ln_1(x + self.attn(x))",
           fails={"test_block"}, why="post-norm attention sub-layer instead of pre-norm"),
    Mutant(cell="block", old="x = x + self.mlp(self.ln_2(x))", new="x = self.mlp(self.ln_2(x))",
           fails={"test_block"}, why="forgot the residual connection around the MLP"),
    Mutant(cell="block", old="return self.c_proj(self.gelu(self.c_fc(x)))", new="return self.c_proj(self.c_fc(x))",
           fails={"test_block"}, why="MLP without its GELU non-linearity"),
    Mutant(cell="cosine_lr", old="return max_lr * (step + 1) / warmup_steps", new="return max_lr * step / warmup_steps",
           fails={"test_cosine_lr"}, why="warmup starts at lr 0 (step instead of step + 1)"),
    Mutant(cell="cosine_lr", old="0.5 * (1.0 + math.cos(math.pi * ratio))", new="math.cos(math.pi * ratio)",
           fails={"test_cosine_lr"}, why="cosine factor without 0.5 * (1 + cos): goes below min_lr"),
    Mutant(cell="clip_gradients", old="return [g * factor for g in grads], total_norm",
           new="return [g * min(1.0, max_norm / (g.norm().item() + 1e-6)) for g in grads], total_norm",
           fails={"test_clip_gradients"}, why="clips each tensor by its own norm instead of the global norm"),
    Mutant(cell="clip_gradients", old="factor = min(1.0, max_norm / (total_norm.item() + 1e-6))",
           new="factor = max_norm / (total_norm.item() + 1e-6)",
           fails={"test_clip_gradients"}, why="always rescales to max_norm, also when the norm is already below it"),
    Mutant(cell="sft_loss", old="return (per_token * mask).sum() / mask.sum()",
           new="return (per_token * mask).sum() / mask.numel()",
           fails={"test_sft_loss"}, why="divides by every position instead of the number of response tokens"),
    Mutant(cell="sft_loss", old="mask = loss_mask.reshape(-1).to(per_token.dtype)",
           new="mask = (~loss_mask).reshape(-1).to(per_token.dtype)",
           fails={"test_sft_loss"}, why="counts the prompt tokens instead of the response"),
]
