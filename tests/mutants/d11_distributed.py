"""Planted mistakes for 11_distributed."""

from tests.mutants import Mutant

MUTANTS = [
    # naive DDP
    Mutant(cell="naive_ddp", old="            dist.broadcast(p, src=0)\n", new="            pass\n",
           fails={"test_naive_ddp"}, why="no broadcast of rank 0's parameters at the start",
           hint="never broadcast rank 0's parameters"),
    Mutant(cell="naive_ddp", old="\n        p.grad /= world_size        # the mean", new="",
           fails={"test_naive_ddp"}, why="sums the gradients over the ranks instead of averaging",
           hint="add each gradient over the ranks"),
    Mutant(cell="naive_ddp", old="        dist.all_reduce(p.grad)     # the sum over the ranks, in place\n"
                                 "        p.grad /= world_size        # the mean",
           new="        p.grad /= world_size",
           fails={"test_naive_ddp"}, why="divides by the world size but never calls all_reduce",
           hint="without all_reduce-ing it first"),
    # flat DDP
    Mutant(cell="bucketed_ddp", old="if self.waiting[index] == 0:", new="if self.waiting[index] == 1:",
           fails={"test_bucketed_ddp"}, why="sends a bucket one gradient early (fresh set 9, C-11-10)",
           hint="its all_reduce started before its last gradient arrived"),
    Mutant(cell="naive_ddp",
           old="        dist.all_reduce(p.grad)     # the sum over the ranks, in place\n"
               "        p.grad /= world_size        # the mean",
           new="        p.grad = dist.all_reduce(p.grad) / world_size", fails={"test_naive_ddp"},
           why="uses what all_reduce returns (None) as the sum (fresh set 9, C-11-4)",
           hint="changes the tensor you pass it IN PLACE and returns None"),
    Mutant(cell="flat_ddp", old="    flat /= dist.get_world_size()\n", new="",
           fails={"test_flat_ddp"}, why="sums the flat buffer instead of averaging", hint="sum the flat buffer"),
    Mutant(cell="flat_ddp",
           old="        g.copy_(flat[offset:offset + g.numel()].view_as(g))   # back into the gradient's own shape\n",
           new="        g = flat[offset:offset + g.numel()].view_as(g)\n",
           fails={"test_flat_ddp"}, why="rebinds the name instead of copying the averaged piece into p.grad",
           hint="never copy it back into the p.grad"),
    Mutant(cell="flat_ddp", old="\n        offset += g.numel()", new="",
           fails={"test_flat_ddp"}, why="forgets to advance the offset: every gradient gets the first piece",
           hint="advance the offset"),
    # bucketed DDP
    Mutant(cell="bucketed_ddp",
           old="                dist.broadcast(p, src=0)                  # every rank starts from rank 0's copy\n",
           new="                pass\n", fails={"test_bucketed_ddp"}, why="no broadcast in BucketedDDP.__init__",
           hint="leave out the broadcast in BucketedDDP.__init__"),
    Mutant(cell="bucketed_ddp", old="            flat /= dist.get_world_size()\n", new="",
           fails={"test_bucketed_ddp"}, why="sums each bucket instead of averaging",
           hint="sum each bucket over the ranks"),
    Mutant(cell="bucketed_ddp",
           old="        if self.waiting[index] == 0:                      # the bucket's last gradient: send it now\n",
           new="        if self.waiting[index] == len(self.buckets[index]) - 1:   # the first gradient: send now\n",
           fails={"test_bucketed_ddp"}, why="launches a bucket when its first gradient is ready, not its last",
           hint="its all_reduce started before its last gradient arrived"),
    # accumulation
    Mutant(cell="accumulation", old="loss = F.cross_entropy(model(x), y) / len(micro_batches)",
           new="loss = F.cross_entropy(model(x), y)", fails={"test_accumulation"},
           why="does not divide the micro-batch loss by the number of micro-batches",
           hint="do not divide each micro-batch's loss"),
    Mutant(cell="accumulation", old="    optimizer.zero_grad()\n    for x, y in micro_batches:\n",
           new="    for x, y in micro_batches:\n        optimizer.zero_grad()\n", fails={"test_accumulation"},
           why="zeroes the gradients inside the micro-batch loop", hint="zero the gradients before every micro-batch"),
    Mutant(cell="accumulation",
           old="        loss.backward()                                            "
               "# p.grad adds up; no communication yet\n"
               "    for p in model.parameters():                                   "
               "# once per step: the mean over the ranks\n"
               "        dist.all_reduce(p.grad)\n        p.grad /= dist.get_world_size()\n"
               "    optimizer.step()",
           new="        loss.backward()\n        for p in model.parameters():\n            dist.all_reduce(p.grad)\n"
               "            p.grad /= dist.get_world_size()\n        optimizer.step()",
           fails={"test_accumulation"}, why="communicates and steps after every micro-batch",
           hint="not after each one"),
    # ZeRO-1
    Mutant(cell="zero1", old="            dist.broadcast(p.data, src=owner)", new="            pass",
           fails={"test_zero1"}, why="the updated shards are not broadcast back",
           hint="still hold their starting values"),
    Mutant(cell="zero1",
           old="    return torch.optim.AdamW([p for p, owner in zip(params, owners) if owner == rank], lr=lr)\n",
           new="    return torch.optim.AdamW(params, lr=lr)\n", fails={"test_zero1"},
           why="every rank keeps AdamW state for every parameter", hint="over this rank's own parameters only"),
    Mutant(cell="zero1", old="        loads[rank] += n\n", new="        loads[rank] += 1\n", fails={"test_zero1"},
           why="balances the shards by number of tensors, not of elements", hint="fewest ELEMENTS"),
    # issue 23, written as a new student before reading the mutants above
    Mutant(cell="naive_ddp", old="dist.broadcast(p, src=0)", new="dist.broadcast(p.detach().clone(), src=0)",
           fails={"test_naive_ddp"}, why="broadcasts into a copy", hint="never broadcast rank 0's parameters"),
    Mutant(cell="naive_ddp", old="        p.grad /= world_size        # the mean",
           new="        if dist.get_rank() == 0:\n            p.grad /= world_size",
           fails={"test_naive_ddp"}, why="divides only on rank 0", hint="divide by world_size on rank 0 only"),
    Mutant(cell="naive_ddp", old="""        dist.all_reduce(p.grad)     # the sum over the ranks, in place
        p.grad /= world_size        # the mean""", new="""        dist.all_reduce(p.data)
        p.data /= world_size""", fails={"test_naive_ddp"}, why="averages the parameters not the gradients",
           hint="all_reduce the parameters (p.data) instead of the gradients"),
    Mutant(cell="flat_ddp", old="flat = torch.cat([g.reshape(-1) for g in grads])", new="flat = torch.stack(grads)",
           fails={"test_flat_ddp"}, why="torch.stack of the gradients",
           hint="torch.stack needs tensors of equal shapes"),
    Mutant(cell="flat_ddp", old="flat = torch.cat([g.reshape(-1) for g in grads])", new="flat = torch.cat(grads)",
           fails={"test_flat_ddp"}, why="torch.cat without flattening", hint="flatten each first"),
    Mutant(cell="bucketed_ddp",
           old="        self.in_flight = []\n        self.waiting = [len(b) for b in self.buckets]",
           new="        self.in_flight = []", fails={"test_bucketed_ddp"},
           why="the countdown is not reset after a step", hint="average only in the first step"),
    Mutant(cell="accumulation", old="        p.grad /= dist.get_world_size()",
           new="        p.grad /= dist.get_world_size() * len(micro_batches)",
           fails={"test_accumulation"}, why="scales by N twice", hint="scale by the number of micro-batches twice"),
    Mutant(cell="zero1", old="rank = loads.index(min(loads))", new="rank = loads.index(max(loads))",
           fails={"test_zero1"}, why="gives each parameter to the most loaded rank",
           hint="optimizer was built over an empty list of parameters"),
    Mutant(cell="zero1", old="dist.broadcast(p.data, src=owner)", new="dist.broadcast(p.data, src=0)",
           fails={"test_zero1"}, why="broadcasts every parameter from rank 0",
           hint="rank 0 never receives them; every parameter is broadcast from its owner"),
    Mutant(cell="zero1", old="if owner == rank]", new="if owner != rank]",
           fails={"test_zero1"}, why="the local optimizer holds the other ranks' parameters",
           hint="none of rank 0's parameters changed"),
    # issue 23, second set (written after the fixes to measure them)
    Mutant(cell="flat_ddp",
           old="        g.copy_(flat[offset:offset + g.numel()].view_as(g))   # back into the gradient's own shape\n"
               "        offset += g.numel()",
           new="        offset += g.numel()\n        g.copy_(flat[offset:offset + g.numel()].view_as(g))",
           fails={"test_flat_ddp"},
           why="advances the offset before copying", hint="the slice bounds it was cut with"),
    # issue 23, third set: wrong answers the testers wrote that were caught but not named
    Mutant(cell="naive_ddp", old="        dist.all_reduce(p.grad)     # the sum over the ranks, in place\n",
           new="        p.grad /= world_size\n        dist.all_reduce(p.grad)\n", fails={"test_naive_ddp"},
           why="divides by the world size both before and after the all_reduce",
           hint="divide by world_size twice (before and after the all_reduce"),
    Mutant(cell="flat_ddp", old="    dist.all_reduce(flat)\n",
           new="    flat /= dist.get_world_size()\n    dist.all_reduce(flat)\n", fails={"test_flat_ddp"},
           why="divides the flat buffer by the world size twice",
           hint="divide the flat buffer by world_size twice"),
    Mutant(cell="accumulation", old="    optimizer.zero_grad()\n    for x, y in micro_batches:\n",
           new="    for x, y in micro_batches:\n", fails={"test_accumulation"},
           why="gradients never zeroed between steps", hint="never zero the gradients between steps"),
    Mutant(cell="zero1", old="if owner == rank], lr=lr)", new="if owner == rank])", fails={"test_zero1"},
           why="the local AdamW built without lr", hint="build the local AdamW without lr=lr"),
    # issue 23, fresh set 1: messages from what the first step shows (gptref.grading.data_parallel)
    Mutant(cell="naive_ddp", old="dist.all_reduce(p.grad)     # the sum over the ranks, in place",
           new="dist.all_reduce(p.data)     # the sum over the ranks, in place", fails={"test_naive_ddp"},
           why="all_reduce of the parameters, the gradients divided but never reduced",
           hint="times their starting values"),
    Mutant(cell="flat_ddp", old="        offset += g.numel()", new="        offset = g.numel()",
           fails={"test_flat_ddp"},
           why="the offset set to the last gradient's size instead of advanced (named since fresh set 8, C-11-5)",
           hint="advance the offset by every gradient's .numel()"),
    Mutant(cell="accumulation", old="# p.grad adds up; no communication yet",
           new="# p.grad adds up\n        optimizer.step()", fails={"test_accumulation"},
           why="an optimizer step after every micro-batch", hint="optimizer.step() ran"),
]

# Issue 23, fresh set 3 (f611): the order of ZeRO-1's step and broadcast, shown by the first step.
MUTANTS += [
    Mutant(cell="zero1",
           old="    local_optimizer.step()\n    with torch.no_grad():\n        for p, owner in zip(params, owners):\n"
               "            dist.broadcast(p.data, src=owner)",
           new="    with torch.no_grad():\n        for p, owner in zip(params, owners):\n"
               "            dist.broadcast(p.data, src=owner)\n    local_optimizer.step()",
           fails={"test_zero1"}, why="broadcasts before the local step", hint="still hold their starting values"),
]

# Issue 23, fresh set 4: buckets formed from the first parameter on gave the right sums and passed every test.
MUTANTS += [
    Mutant(cell="bucketed_ddp", old="for p in reversed(params):", new="for p in params:",
           fails={"test_bucketed_ddp"}, why="buckets formed in forward parameter order",
           hint="take the parameters in reverse order when you form the buckets", verdict=False),
]

# Issue 23, fresh set 6: the pending buckets never emptied (right values, but each step redoes the earlier ones).
MUTANTS += [
    Mutant(cell="bucketed_ddp",
           old="        self.in_flight = []\n        self.waiting = [len(b) for b in self.buckets]",
           new="        self.waiting = [len(b) for b in self.buckets]",
           fails={"test_bucketed_ddp"}, why="the list of pending all_reduces is never emptied",
           hint="the list of pending buckets was not emptied", verdict=False),
]

# Issue 23, fresh set 10: a hook that runs before the gradient is accumulated into p.grad.
MUTANTS += [
    Mutant(cell="bucketed_ddp", old="p.register_post_accumulate_grad_hook(self._gradient_ready)",
           new="p.register_hook(lambda grad, p=p: self._gradient_ready(p))",
           fails={"test_bucketed_ddp"}, why="register_hook instead of the post-accumulate hook (B-11-12)",
           hint="sent zeros where the gradients of"),
]

# Issue 23, fresh set 11: the bucket countdown never counted down, so no bucket is sent.
MUTANTS += [
    Mutant(cell="bucketed_ddp", old="        self.waiting[index] -= 1\n", new="",
           fails={"test_bucketed_ddp"}, why="the countdown never decremented (C-11-8)", hint="no bucket was sent"),
]

# Issue 23, fresh set 12: the flat buffer made in float32 for float64 gradients.
MUTANTS += [
    Mutant(cell="flat_ddp", old="flat = torch.cat([g.reshape(-1) for g in grads])",
           new=("flat = torch.zeros(sum(g.numel() for g in grads))\n    start = 0\n    for g in grads:\n"
                "        flat[start:start + g.numel()] = g.reshape(-1)\n        start += g.numel()"),
           fails={"test_flat_ddp"}, why="a float32 buffer for float64 gradients (A-11-06)",
           hint="the size of float32 rounding"),
]

# Issue 23, fresh set 13: the division by world_size outside the loop.
MUTANTS += [
    Mutant(cell="naive_ddp", old="\n        p.grad /= world_size        # the mean", new="\n    p.grad /= world_size",
           fails={"test_naive_ddp"}, why="only the last gradient divided (A-11-03)",
           hint="divide only the LAST parameter's gradient"),
]
