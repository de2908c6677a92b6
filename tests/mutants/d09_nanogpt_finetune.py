"""Planted mistakes for 09_nanogpt_finetune."""

from tests.mutants import Mutant

MUTANTS = [
    Mutant(cell="block", old="x = x + self.attn(self.ln_1(x), causal=True)",
           new="x = self.ln_1(x + self.attn(x, causal=True))",
           fails={"test_block"}, why="post-norm attention sub-layer instead of pre-norm",
           hint="post-norm: normalize the INPUT"),
    Mutant(cell="block", old="self.attn(self.ln_1(x), causal=True)", new="self.attn(self.ln_1(x))",
           fails={"test_block"}, why="attention without the causal mask", hint="the attention must be causal"),
    Mutant(cell="block", old="x = x + self.mlp(self.ln_2(x))", new="x = self.mlp(self.ln_2(x))",
           fails={"test_block"}, why="forgot the residual connection around the MLP",
           hint="(the residual connection)"),
    Mutant(cell="block", old="return self.c_proj(self.gelu(self.c_fc(x)))", new="return self.c_proj(self.c_fc(x))",
           fails={"test_block"}, why="MLP without its GELU non-linearity",
           hint="the MLP needs its GELU"),
    Mutant(cell="cosine_lr", old="return max_lr * (step + 1) / warmup_steps", new="return max_lr * step / warmup_steps",
           fails={"test_cosine_lr"}, why="warmup starts at lr 0 (step instead of step + 1)",
           hint="warm up as max_lr * (step + 1) / warmup_steps"),
    Mutant(cell="cosine_lr", old="0.5 * (1.0 + math.cos(math.pi * ratio))", new="math.cos(math.pi * ratio)",
           fails={"test_cosine_lr"}, why="cosine factor without 0.5 * (1 + cos): goes below min_lr",
           hint="use 0.5 * (1 + cos(pi * r))"),
    Mutant(cell="clip_gradients", old="return [g * factor for g in grads], total_norm",
           new="return [g * min(1.0, max_norm / (g.norm().item() + 1e-6)) for g in grads], total_norm",
           fails={"test_clip_gradients"}, why="clips each tensor by its own norm instead of the global norm",
           hint="do not clip each tensor by its own norm"),
    Mutant(cell="clip_gradients", old="factor = min(1.0, max_norm / (total_norm.item() + 1e-6))",
           new="factor = max_norm / (total_norm.item() + 1e-6)",
           fails={"test_clip_gradients"}, why="always rescales to max_norm, also when the norm is already below it",
           hint="when the total norm is below max_norm, leave the gradients unchanged"),
    Mutant(cell="sft_loss", old="return (per_token * mask).sum() / mask.sum()",
           new="return (per_token * mask).sum() / mask.numel()",
           fails={"test_sft_loss"}, why="divides by every position instead of the number of response tokens",
           hint="divide by the number of response tokens"),
    Mutant(cell="sft_loss", old="mask = loss_mask.reshape(-1).to(per_token.dtype)",
           new="mask = (~loss_mask).reshape(-1).to(per_token.dtype)",
           fails={"test_sft_loss"}, why="counts the prompt tokens instead of the response",
           hint="the loss must count the response tokens"),
    Mutant(cell="ddp_train_step", old="            p.grad /= world_size                           # ... and the mean\n",
           new="", fails={"test_ddp_train_step"}, why="sums the gradients over the ranks instead of averaging",
           hint="you summed the gradients over the ranks"),
    Mutant(cell="ddp_train_step",
           old="            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)"
               "  # every rank now holds the sum over the ranks\n"
                                      "            p.grad /= world_size                           # ... and the mean\n",
           new="            pass\n", fails={"test_ddp_train_step"},
           why="no all_reduce: each rank steps on its own half",
           hint="the gradients were not averaged across ranks"),
    Mutant(cell="ddp_train_step", old="    world_size = dist.get_world_size()\n",
           new="    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)\n"
               "    world_size = dist.get_world_size()\n",
           fails={"test_ddp_train_step"}, why="clips each rank's gradients before the reduction",
           hint="you clipped before averaging"),
    # common mistakes (gptref.grading.mistakes.d09_nanogpt_finetune), named by the visible tests
    Mutant(cell="block", old="return self.c_proj(self.gelu(self.c_fc(x)))",
           new="return self.c_proj(torch.relu(self.c_fc(x)))",
           fails={"test_block"}, why="ReLU instead of GELU", hint="use ReLU instead of GELU"),
    Mutant(cell="block", old="x = x + self.mlp(self.ln_2(x))", new="x = x + self.mlp(self.ln_1(x))",
           fails={"test_block"}, why="ln_1 before the MLP too", hint="normalise with ln_1 before the MLP too"),
    Mutant(cell="block", old="x = x + self.attn(self.ln_1(x), causal=True)",
           new="x = self.ln_1(x)\n        x = x + self.attn(x, causal=True)",
           fails={"test_block"}, why="the residual adds to the normalised x",
           hint="add the sub-layer's output to the normalised x"),
    Mutant(cell="cosine_lr", old="return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (max_lr - min_lr)",
           new="return 0.5 * (1.0 + math.cos(math.pi * ratio)) * max_lr",
           fails={"test_cosine_lr"}, why="decays to 0 instead of min_lr", hint="decay to 0 instead of min_lr"),
    Mutant(cell="cosine_lr", old="ratio = (step - warmup_steps) / (max_steps - warmup_steps)",
           new="ratio = step / max_steps",
           fails={"test_cosine_lr"}, why="r = step / max_steps", hint="measure r from the end of the warmup"),
    Mutant(cell="cosine_lr", old="    if step > max_steps:\n        return min_lr\n", new="",
           fails={"test_cosine_lr"}, why="no floor after max_steps", hint="keep min_lr after max_steps"),
    Mutant(cell="clip_gradients", old="return [g * factor for g in grads], total_norm",
           new="return [g * factor for g in grads], total_norm * factor",
           fails={"test_clip_gradients"}, why="returns the norm after clipping", hint="return the norm after clipping"),
    Mutant(cell="clip_gradients", old="total_norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))",
           new="total_norm = sum((g.double() ** 2).sum() for g in grads)",
           fails={"test_clip_gradients"}, why="no square root", hint="forget the square root"),
    Mutant(cell="clip_gradients", old="total_norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))",
           new="total_norm = sum(g.double().norm() for g in grads)",
           fails={"test_clip_gradients"}, why="sum of the tensors' norms", hint="add the tensors' norms"),
    Mutant(cell="sft_loss", old="return (per_token * mask).sum() / mask.sum()",
           new="return ((per_token * mask).view(loss_mask.shape).sum(-1) / mask.view(loss_mask.shape).sum(-1)).mean()",
           fails={"test_sft_loss"}, why="mean of per-sequence means", hint="average each sequence first"),
    Mutant(cell="sft_loss", old="return (per_token * mask).sum() / mask.sum()", new="return (per_token * mask).sum()",
           fails={"test_sft_loss"}, why="sums instead of averaging",
           hint="sum the response tokens' losses without dividing"),
    Mutant(cell="sft_loss", old="return (per_token * mask).sum() / mask.sum()", new="return per_token.mean()",
           fails={"test_sft_loss"}, why="averages over every position",
           hint="count only the positions where loss_mask is True"),
    # issue 23, written as a new student before reading the mutants above
    Mutant(cell="block", old="self.attn = MultiHeadAttention(config.n_embd, config.n_head)",
           new="self.attn = MultiHeadAttention(config.n_embd, config.n_embd // config.n_head)",
           fails={"test_block"}, why="head size passed where the number of heads goes", hint="the NUMBER of heads"),
    Mutant(cell="block", old="""        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)""",
           new="""        self.c_fc = nn.Linear(config.n_embd, config.n_embd)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)""",
           fails={"test_block"}, why="MLP hidden width C instead of 4C", hint="size mismatch for mlp.c_fc.weight"),
    Mutant(cell="cosine_lr", old="ratio = (step - warmup_steps) / (max_steps - warmup_steps)",
           new="ratio = (step - warmup_steps) / max_steps", fails={"test_cosine_lr"}, why="r = (s - w) / N",
           hint="divide by max_steps in r = (step - w) / max_steps"),
    Mutant(cell="cosine_lr", old="* (max_lr - min_lr)", new="* max_lr", fails={"test_cosine_lr"},
           why="cosine amplitude max_lr instead of max_lr - min_lr",
           hint="scale the cosine by max_lr instead of (max_lr - min_lr)"),
    Mutant(cell="cosine_lr", old="if step < warmup_steps:", new="if step <= warmup_steps:", fails={"test_cosine_lr"},
           why="warmup branch includes step == w", hint="keep step == warmup_steps in the warmup branch"),
    Mutant(cell="clip_gradients", old="return [g * factor for g in grads], total_norm",
           new="return [g.mul_(factor) for g in grads], total_norm", fails={"test_clip_gradients"},
           why="clips the input gradients in place", hint="do not modify the input gradients in place"),
    Mutant(cell="clip_gradients", old="total_norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))",
           new="total_norm = torch.cat(grads).double().norm()", fails={"test_clip_gradients"},
           why="torch.cat of gradients of different shapes", hint="flatten each first"),
    Mutant(cell="sft_loss", old="""    V = logits.shape[-1]
    per_token = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none")  # (B*T,)""",
           new="""    per_token = F.cross_entropy(logits, targets, reduction="none").reshape(-1)""",
           fails={"test_sft_loss"},
           why="cross_entropy on (B, T, V) without moving the class dim", hint="classes in dimension 1"),
    Mutant(cell="sft_loss", old="""    V = logits.shape[-1]
    per_token = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none")  # (B*T,)
    mask = loss_mask.reshape(-1).to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum()""",
           new="""    targets[~loss_mask] = -100
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))""", fails={"test_sft_loss"},
           why="writes -100 into the caller's targets", hint="sft_loss changed its argument 'targets' in place"),
    Mutant(cell="ddp_train_step", old="dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)",
           new="dist.reduce(p.grad, dst=0, op=dist.ReduceOp.SUM)", fails={"test_ddp_train_step"},
           why="reduce to rank 0 instead of all_reduce: only rank 0 steps on the mean (fresh set 8)",
           hint="reduce(dst=0) leaves it on rank 0 only"),
    Mutant(cell="ddp_train_step", old="dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)",
           new="dist.all_reduce(p.grad, op=dist.ReduceOp.AVG)",
           fails={"test_ddp_train_step"}, why="ReduceOp.AVG, then the division as well",
           hint="divide by world_size twice"),
    Mutant(cell="ddp_train_step", old="""    optimizer.zero_grad(set_to_none=True)
    loss.backward()""", new="""    loss.backward()
    optimizer.zero_grad(set_to_none=True)""", fails={"test_ddp_train_step"}, why="zero_grad after backward",
           hint="rank 0's parameters did not move"),
    # issue 23, second set (written after the fixes to measure them)
    Mutant(cell="clip_gradients", old="return [g * factor for g in grads], total_norm",
           new="return total_norm, [g * factor for g in grads]", fails={"test_clip_gradients"},
           why="returns (total_norm, clipped) in the wrong order", hint="yours has the norm first"),
    # issue 23, third set: wrong answers the testers wrote that were caught but not named
    Mutant(cell="block", old="""        x = x + self.attn(self.ln_1(x), causal=True)
        x = x + self.mlp(self.ln_2(x))""", new="""        x = x + self.attn(self.ln_2(x), causal=True)
        x = x + self.mlp(self.ln_1(x))""", fails={"test_block"}, why="the two norms swapped between the sub-layers",
           hint="swap the two norms"),
    Mutant(cell="block", old="self.attn(self.ln_1(x), causal=True)",
           new="self.attn(self.ln_2(x), causal=True)",
           fails={"test_block"}, why="ln_2 before the attention", hint="apply ln_2 before the attention too"),
    Mutant(cell="block", old="""        x = x + self.attn(self.ln_1(x), causal=True)
        x = x + self.mlp(self.ln_2(x))
        return x""", new="""        h = x + self.attn(self.ln_1(x), causal=True)
        return x + self.mlp(self.ln_2(h))""", fails={"test_block"}, why="second residual adds to the block's input",
           hint="add the input x to the MLP's output"),
    Mutant(cell="cosine_lr", old="return max_lr * (step + 1) / warmup_steps",
           new="return max_lr * step / (warmup_steps - 1)", fails={"test_cosine_lr"},
           why="warmup as step / (w - 1): ZeroDivisionError at w = 1", hint="dividing by (warmup_steps - 1) fails"),
    Mutant(cell="cosine_lr", old="math.cos(math.pi * ratio)", new="math.cos(ratio)", fails={"test_cosine_lr"},
           why="cos(r) without pi", hint="take cos(r) without pi"),
    Mutant(cell="sft_loss", old="per_token = F.cross_entropy(logits.reshape(-1, V), targets",
           new="per_token = F.nll_loss(logits.reshape(-1, V), targets",
           fails={"test_sft_loss"}, why="nll_loss on raw logits (no log_softmax)",
           hint="pass the raw logits to F.nll_loss"),
    Mutant(cell="sft_loss", old="per_token = F.cross_entropy(logits.reshape(-1, V), targets",
           new="per_token = F.nll_loss(F.softmax(logits.reshape(-1, V), dim=-1), targets",
           fails={"test_sft_loss"}, why="nll_loss on probabilities (softmax, not log_softmax)",
           hint="take F.softmax instead of F.log_softmax"),
    Mutant(cell="ddp_train_step", old="    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)  # after the "
                                      "reduction: the same on every rank\n    optimizer.step()",
           new="    optimizer.step()\n    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)",
           fails={"test_ddp_train_step"},
           why="optimizer stepped before gradient clipping", hint="take the optimizer step before clipping"),
    Mutant(cell="cosine_lr", old="return max_lr * (step + 1) / warmup_steps",
           new="return max_lr * (step + 1) / (warmup_steps + 1)", fails={"test_cosine_lr"},
           why="warmup divided by w + 1", hint="divide the warmup by warmup_steps + 1"),
    Mutant(cell="sft_loss", old="""    V = logits.shape[-1]
    per_token = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none")  # (B*T,)""",
           new="""    V = logits.shape[-1]
    log_probs = F.log_softmax(logits, dim=1)
    per_token = F.nll_loss(log_probs.reshape(-1, V), targets.reshape(-1), reduction="none")""",
           fails={"test_sft_loss"}, why="log_softmax over the positions", hint="take the log_softmax over dim=1"),
    # issue 23, fresh set 1
    Mutant(cell="cosine_lr", old="return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (max_lr - min_lr)",
           new="return 0.5 * (1.0 + math.cos(math.pi * ratio)) * (max_lr - min_lr)", fails={"test_cosine_lr"},
           why="the cosine without its floor min_lr", hint="the floor min_lr is not added"),
    Mutant(cell="cosine_lr", old="ratio = (step - warmup_steps) / (max_steps - warmup_steps)",
           new="ratio = (step - warmup_steps) // (max_steps - warmup_steps)", fails={"test_cosine_lr"},
           why="an integer division for r, which stays 0", hint="as if r were 0 there"),
    Mutant(cell="sft_loss", old="mask = loss_mask.reshape(-1).to(per_token.dtype)",
           new="mask = loss_mask.T.reshape(-1).to(per_token.dtype)", fails={"test_sft_loss"},
           why="the mask flattened in (T, B) order, the losses in (B, T)",
           hint="while loss_mask is True"),
]

# Issue 23, fresh set 3 (f611): the mean's range alone did not say what was wrong.
MUTANTS += [
    Mutant(cell="sft_loss", old="return (per_token * mask).sum() / mask.sum()",
           new="return (per_token * mask).sum() / loss_mask.shape[0]", fails={"test_sft_loss"},
           why="divides the masked sum by the batch size", hint="divided by 2 instead of by their number"),
]

# Issue 23, fresh set 4: three block mistakes that got only the value difference.
MUTANTS += [
    Mutant(cell="block", old="x = x + self.attn(self.ln_1(x), causal=True)\n        x = x + self.mlp(self.ln_2(x))",
           new="x = self.ln_1(x + self.attn(x, causal=True))\n        x = self.ln_2(x + self.mlp(x))",
           fails={"test_block"}, why="a post-norm block (the original Transformer's)",
           hint="normalise after each residual sum (post-norm"),
    Mutant(cell="block", old="x = x + self.mlp(self.ln_2(x))", new="h = self.ln_2(x)\n        x = h + self.mlp(h)",
           fails={"test_block"}, why="the MLP's residual adds to the normalised stream",
           hint="add the MLP's output to the normalised stream"),
    Mutant(cell="block", old="self.gelu = nn.GELU()", new='self.gelu = nn.GELU(approximate="tanh")',
           fails={"test_block"}, why="the tanh approximation of GELU", hint="use the tanh approximation of GELU"),
]

# Issue 23, fresh set 5: only rank 0 stepped; rank 0's parameters were right, so nothing failed.
MUTANTS += [
    Mutant(cell="ddp_train_step", old="\n    optimizer.step()",
           new="\n    if dist.get_rank() == 0:\n        optimizer.step()",
           fails={"test_ddp_train_step"}, why="only rank 0 takes the optimizer step",
           hint="every rank must call optimizer.step()"),
]

# Issue 23, fresh set 10: attention and MLP side by side (GPT-J's parallel block).
MUTANTS += [
    Mutant(cell="block", old="x = x + self.attn(self.ln_1(x), causal=True)\n        x = x + self.mlp(self.ln_2(x))",
           new="x = x + self.attn(self.ln_1(x), causal=True) + self.mlp(self.ln_2(x))",
           fails={"test_block"}, why="parallel attention and MLP (B-09-03)", hint="GPT-J's parallel block"),
]
