"""Builds solutions/11_distributed/11_distributed.ipynb: data parallelism from scratch on two gloo processes
(naive, flat, overlapped buckets), gradient accumulation and ZeRO-1, each checked against one process on the
whole batch, with measured step times and optimizer-state memory."""

from tools.nbbuild import Notebook

nb = Notebook("11_distributed")

nb.md(r"""
# Day 11 — Training beyond one process: DDP from scratch, overlapped buckets, ZeRO-1

Day 9 averaged gradients over two processes with one `all_reduce` per parameter. That is the idea of
**distributed data parallel** (DDP); today we build it the way real trainers do and measure what each step
buys: one call per parameter, then one call for all gradients together, then calls that run *while backward is
still computing*. Then we train with a batch larger than one step can hold (gradient accumulation) and split the
optimizer's memory over the ranks (ZeRO stage 1). Everything runs on two CPU processes talking through `gloo`,
and every exercise is checked the same way: the parameters after a few steps on two half-batches must equal
those of one process on the whole batch.

**Learning goals.** After this notebook you can

1. say why averaging gradients over ranks is exactly one step on the whole batch, and what each rank must agree on
   first (the same starting parameters);
2. write naive DDP (one `all_reduce` per parameter) and flat DDP (one `all_reduce` for all gradients);
3. overlap communication with backward: gradient hooks that launch an asynchronous `all_reduce` per bucket, and
   `finish_gradient_synchronization()` that waits;
4. accumulate gradients over micro-batches without communicating, and scale the loss so that it is one big step;
5. shard AdamW's state over the ranks (ZeRO-1) and measure the memory it saves;
6. read measured step times and choose a bucket size.
""")

nb.code(r"""
import datetime
import os
import tempfile
import time

import matplotlib.pyplot as plt
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from gptref.grading.data_parallel import later_steps_finding, one_step_finding, run_starts, unmoved_finding
from gptref.grading.explain import NAMED, call, explain_trace, secondhand
from gptref.grading.ladders import agreeing
from gptref.grading.mistakes.d11_distributed import MISTAKES

torch.manual_seed(0)
torch.set_num_threads(1)   # tiny tensors, a shared machine: one thread per process
""")

nb.md(r"""
## 1. The math: why the average of the ranks' gradients is the whole batch's

With $W$ ranks, each holding an equal slice $\mathcal B_r$ of a batch $\mathcal B$ of $B$ examples, the loss of the
batch is the mean of per-example losses, so its gradient is

$$g = \nabla \frac{1}{B}\sum_{i\in\mathcal B}\ell_i
     = \frac{1}{W}\sum_{r=1}^{W}\underbrace{\nabla\frac{W}{B}\sum_{i\in\mathcal B_r}\ell_i}_{g_r}.$$

`dist.all_reduce(t)` replaces `t` on every rank by $\sum_r t_r$; dividing by $W$ gives $g$ on every rank. If every
rank also starts from **the same parameters** (rank 0's, sent to all with `dist.broadcast`) and takes the same
optimizer step, the copies never drift apart, and training is the same as one process on the whole batch.

**Gradient accumulation** uses the same identity along time instead of ranks: $N$ micro-batches of $B/N$ examples,
each loss divided by $N$ before `backward()`, add up in `p.grad` to the gradient of the whole batch. Communication
is needed only once, after the last micro-batch.

**The cost.** An `all_reduce` of $n$ bytes over $W$ ranks moves about $2n(W-1)/W$ bytes per rank (the ring
algorithm), plus a fixed latency $\alpha$ per call. One call per parameter pays $\alpha$ once per tensor; one flat
call pays it once, but only after backward ends; buckets of a few MB pay it a few times and start while backward is
still running, so the communication hides behind computation.

## 2. The worked example: two processes, one step

The cell below is given. `launch(task, args)` forks two processes, each joins the group (gloo, a rendez-vous
file in a temporary folder), runs `task(rank, *args)` and sends back what it returns. `rank_start` gives rank 1
*different* starting values on purpose: a DDP that forgets to broadcast rank 0's parameters shows up at once.
""")

nb.code(r'''
def mlp_from_state(state):
    """A small classifier, Linear -> Tanh -> Linear, with the weights in `state`."""
    n_hidden, n_in = state["0.weight"].shape
    model = nn.Sequential(nn.Linear(n_in, n_hidden), nn.Tanh(), nn.Linear(n_hidden, state["2.weight"].shape[0]))
    model = model.to(state["0.weight"].dtype)
    model.load_state_dict(state)
    return model


def rank_start(state, rank):
    """Rank 0 starts from `state`, the others from other values, so that a missing broadcast shows."""
    return state if rank == 0 else {k: v * 0.5 + 0.1 for k, v in state.items()}


def my_rows(batch, rank, world_size):
    """This rank's equal slice of a batch (the first dimension)."""
    rows = batch.shape[0] // world_size
    return batch[rank * rows:(rank + 1) * rows]


def _worker(rank, world_size, folder, task, args):
    """One rank: join the group, run task(rank, *args), save what it returns; errors go to a file."""
    import os, traceback
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1); os.dup2(quiet, 2)     # the notebook shows nothing from the workers
    stage = "join"
    try:
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank,
                                world_size=world_size, timeout=datetime.timedelta(seconds=30))
        stage = "run"
        result = task(rank, *args)
        torch.save(result, f"{folder}/result{rank}.pt")
        dist.barrier()                       # no rank leaves while another still talks to it
        # ... and after it nobody does: os._exit below skips destroy_process_group(), which only waits
    except BaseException:
        with open(f"{folder}/error{rank}.part", "w") as f:
            f.write(stage + "\n" + traceback.format_exc())
        os.replace(f"{folder}/error{rank}.part", f"{folder}/error{rank}.txt")   # whole, or not at all
        os._exit(1)
    os._exit(0)


def _start_ranks(folder, world_size, task, args, seconds):
    """Fork one _worker per rank; wait until they exit, one fails, or `seconds` pass: {rank: error}."""
    import multiprocessing
    from gptref.grading.ranks import wait_for_ranks
    ctx = multiprocessing.get_context("fork")        # fork: the workers see this notebook's functions
    workers = [ctx.Process(target=_worker, args=(r, world_size, folder, task, args)) for r in range(world_size)]
    for w in workers:
        w.start()
    wait_for_ranks(workers, seconds)    # until all exit, one fails (+2 s for the others), or time is up
    paths = {r: f"{folder}/error{r}.txt" for r in range(world_size)}
    return {r: open(path).read() for r, path in paths.items() if os.path.exists(path)}


def launch(task, args, world_size=2, seconds=60):
    """Run task(rank, *args) on `world_size` fresh processes: {rank: what it returned}."""
    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])   # import the optimizers once, before forking
    for attempt in (1, 2):
        with tempfile.TemporaryDirectory() as folder:
            errors = _start_ranks(folder, world_size, task, args, seconds)
            if errors and attempt == 1 and all(e.startswith("join") for e in errors.values()):
                continue                             # the group did not form (a busy machine?): once more
            traces = {r: error.partition("\n")[2] for r, error in sorted(errors.items())}
            first = [r for r, trace in traces.items() if not secondhand(trace)] or list(traces)
            if first:   # the rank whose own error started it (the others only lost their peer)
                raise AssertionError(explain_trace(traces[first[0]], f"rank {first[0]}"))
            if not all(os.path.exists(f"{folder}/result{r}.pt") for r in range(world_size)):
                raise RuntimeError(f"the ranks did not finish within {seconds} s (does every rank call all_reduce "
                                   "and broadcast the same number of times, in the same order?)")
            return {r: torch.load(f"{folder}/result{r}.pt") for r in range(world_size)}


def whole_batch_sgd(state, x, y, lr):
    """What every data-parallel run must equal: one process, SGD, step s on the whole batch x[s], y[s]."""
    model = mlp_from_state(state)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for step in range(x.shape[0]):
        optimizer.zero_grad()
        F.cross_entropy(model(x[step]), y[step]).backward()
        optimizer.step()
    return dict(model.state_dict())    # a plain dict: the grader sends plain data only


def toy_problem(seed=11, n_in=6, hidden=16, n_out=4, batch=8, steps=2):
    """Float64 weights and `steps` batches: the inputs of every exercise's test."""
    g = torch.Generator().manual_seed(seed)
    shapes = {"0.weight": (hidden, n_in), "0.bias": (hidden,), "2.weight": (n_out, hidden), "2.bias": (n_out,)}
    state = {k: torch.randn(*s, generator=g, dtype=torch.float64) / s[-1] ** 0.5 for k, s in shapes.items()}
    x = torch.randn(steps, batch, n_in, generator=g, dtype=torch.float64)
    return state, x, torch.randint(0, n_out, (steps, batch), generator=g)


def report(got, want, name, kwargs, otherwise, one_step=None, first_step=None, again=None, watched=None):
    """Fail with the largest difference, and the known mistake that gives exactly `got` and, rerun by
    `again(state, x, y)` on a second problem, that answer too (one input can make two slips agree); else what
    `watched()` saw of the exercise's own calls (None: nothing wrong there); else what rank 0's first step shows
    (`one_step()` reruns the exercise for the first step only; `first_step()` says what it shows, for exercises that
    are not SGD), then `otherwise`."""
    err = max((got[k] - want[k]).abs().max().item() for k in want)
    if err < 1e-10:
        return
    close = lambda a, b: None if max((a[k] - b[k]).abs().max().item() for k in b) < 1e-10 else "differs"
    fits = list(agreeing(MISTAKES.get(name, ()), [kwargs], [got], close))
    if fits and again is not None:
        state, x, y = toy_problem(seed=29, batch=kwargs["x"].shape[1], steps=3)   # 3 steps: later steps differ too
        try:
            answer = again(state, x, y)
        except Exception:   # the second run failed: name nothing rather than guess
            fits = []
        else:
            fits = list(agreeing(fits, [dict(kwargs, state=state, x=x, y=y)], [answer], close))
    named = f"{NAMED}{fits[0].says}" if fits else ""
    seen = watched() if not named and watched is not None else None
    if seen:
        named = "\n  " + seen + "\n  " + otherwise
    if not named and one_step is not None:
        x, y = kwargs["x"], kwargs["y"]
        finding = one_step_finding(one_step(), kwargs["state"], x[0], y[0], kwargs["lr"])
        named = "\n  " + (finding or later_steps_finding(x.shape[0])) + "\n  " + otherwise
    finding = first_step() if not named and first_step is not None else None
    if finding:
        named = "\n  " + finding + "\n  " + otherwise
    raise AssertionError(f"rank 0's parameters differ from one process on the whole batch by up to {err:.3g}."
                         + (named or "\n  " + otherwise))


def _hello_rank(rank, x):
    """Each rank sums its slice, then all_reduce adds the ranks' sums in place."""
    total = my_rows(x, rank, dist.get_world_size()).sum()
    dist.all_reduce(total)
    return total


_x_demo = torch.arange(8.0)
print("each rank's total after all_reduce:", launch(_hello_rank, (_x_demo,)), " one process:", _x_demo.sum().item())
''')

nb.md(r"""
Both ranks printed the sum of the whole vector although each only summed its own half: that is `all_reduce`.

## 3. Naive DDP: broadcast once, one `all_reduce` per parameter

**Exercise.** Write `broadcast_parameters(model)`, which sends rank 0's value of every parameter to all ranks
(`dist.broadcast(tensor, src=0)` overwrites `tensor` in place on the other ranks), and
`average_gradients_naive(model)`, which replaces every `p.grad` by its mean over the ranks with one `dist.all_reduce`
per parameter (`dist.get_world_size()` is $W$). `run_naive` below trains `steps` SGD steps with them on two ranks.
""")

nb.solution("naive_ddp", r'''
def broadcast_parameters(model):
    """Every rank takes rank 0's parameters."""
    ### BEGIN SOLUTION
    with torch.no_grad():
        for p in model.parameters():
            dist.broadcast(p, src=0)
    ### END SOLUTION


def average_gradients_naive(model):
    """Every p.grad becomes the mean of that gradient over the ranks: one all_reduce per parameter."""
    ### BEGIN SOLUTION
    world_size = dist.get_world_size()
    for p in model.parameters():
        dist.all_reduce(p.grad)     # the sum over the ranks, in place
        p.grad /= world_size        # the mean
    ### END SOLUTION
''')

nb.code(r'''
def _naive_rank(rank, state, x, y, lr):
    model = mlp_from_state(rank_start(state, rank))
    broadcast_parameters(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for step in range(x.shape[0]):
        optimizer.zero_grad()
        F.cross_entropy(model(my_rows(x[step], rank, 2)), my_rows(y[step], rank, 2)).backward()
        average_gradients_naive(model)
        optimizer.step()
    return dict(model.state_dict())    # a plain dict: the grader sends plain data only


def run_naive(state, x, y, lr):
    """SGD steps on x[s], y[s] split over 2 ranks with your naive DDP: rank 0's parameters at the end."""
    return launch(_naive_rank, (state, x, y, lr))[0]
''')

# Mistakes these visible tests name (tests/mutants/d11_distributed.py plants each): no broadcast, summing
# instead of averaging, no averaging at all.
nb.tests("test_naive_ddp", 2, r'''
_state, _x, _y = toy_problem()
_got = call(run_naive, _state, _x, _y, 0.5)
report(_got, whole_batch_sgd(_state, _x, _y, 0.5), "run_naive", dict(state=_state, x=_x, y=_y, lr=0.5),
       "check both halves: broadcast rank 0's parameters first, then all_reduce and divide every p.grad",
       one_step=lambda: call(run_naive, _state, _x[:1], _y[:1], 0.5),
       again=lambda state, x, y: call(run_naive, state, x, y, 0.5))
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("11_distributed", "run_naive", run_naive)
### END HIDDEN TESTS
''')

nb.md(r"""
## 4. Flat DDP: one `all_reduce` for all gradients

Every call pays the latency $\alpha$. A GPT has about a dozen parameter tensors per layer: naive DDP makes a
dozen calls per layer and step. Copying all
gradients into **one** buffer, reducing it once and copying the pieces back costs two memory copies and pays
$\alpha$ once.

**Exercise.** Write `average_gradients_flat(model)`: concatenate every `p.grad`, flattened, into one 1-D tensor
(`torch.cat([...])`), `all_reduce` it once, divide by $W$, and copy each piece back into its `p.grad`
(`p.grad.copy_(piece.view_as(p.grad))`). Here both ranks start from the same parameters; no broadcast is needed.
""")

nb.solution("flat_ddp", r'''
def average_gradients_flat(model):
    """Every p.grad becomes its mean over the ranks, with ONE all_reduce of all gradients flattened together."""
    ### BEGIN SOLUTION
    grads = [p.grad for p in model.parameters()]
    flat = torch.cat([g.reshape(-1) for g in grads])           # (total number of elements,)
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))   # back into the gradient's own shape
        offset += g.numel()
    ### END SOLUTION
''')

nb.code(r'''
def _flat_rank(rank, state, x, y, lr):
    model = mlp_from_state(state)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for step in range(x.shape[0]):
        optimizer.zero_grad()
        F.cross_entropy(model(my_rows(x[step], rank, 2)), my_rows(y[step], rank, 2)).backward()
        average_gradients_flat(model)
        optimizer.step()
    return dict(model.state_dict())    # a plain dict: the grader sends plain data only


def run_flat(state, x, y, lr):
    """SGD steps on x[s], y[s] split over 2 ranks with your flat DDP: rank 0's parameters at the end."""
    return launch(_flat_rank, (state, x, y, lr))[0]
''')

nb.tests("test_flat_ddp", 2, r'''
_state, _x, _y = toy_problem(seed=12)
_got = call(run_flat, _state, _x, _y, 0.5)
report(_got, whole_batch_sgd(_state, _x, _y, 0.5), "run_flat", dict(state=_state, x=_x, y=_y, lr=0.5),
       "check that the flat buffer holds the gradients, is reduced once, divided by the world size, and copied back",
       one_step=lambda: call(run_flat, _state, _x[:1], _y[:1], 0.5),
       again=lambda state, x, y: call(run_flat, state, x, y, 0.5))
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("11_distributed", "run_flat", run_flat)
### END HIDDEN TESTS
''')

nb.md(r"""
## 5. Overlapping communication with backward: buckets and gradient hooks

Backward computes gradients from the last layer to the first. The last layer's gradient is final long before
the first layer's is computed, so its `all_reduce` can start at once and run *while* backward continues.
`p.register_post_accumulate_grad_hook(fn)` calls `fn(p)` right after `p.grad` got its value for this backward.
One call per parameter would pay the latency many times; so parameters are grouped into **buckets** of at
most `bucket_mb` megabytes, taken in **reverse** parameter order (the order backward finishes them), and a bucket's
asynchronous `all_reduce(buffer, async_op=True)` starts when its **last** gradient is ready. It returns a handle;
`finish_gradient_synchronization()`, called after `backward()`, waits on every handle (`handle.wait()`), divides
by $W$ and copies the buffers back into the gradients.

**Exercise.** Complete `BucketedDDP`: in `__init__`, broadcast rank 0's parameters, form the buckets
(a parameter bigger than a bucket gets a bucket of its own), and register the hook;
write the hook `_gradient_ready` and `finish_gradient_synchronization`.
""")

nb.solution("bucketed_ddp", r'''
class BucketedDDP(nn.Module):
    """DDP that all_reduces gradients bucket by bucket while backward is still running."""

    def __init__(self, module, bucket_mb):
        super().__init__()
        self.module = module
        params = list(module.parameters())
        ### BEGIN SOLUTION
        with torch.no_grad():
            for p in params:
                dist.broadcast(p, src=0)                  # every rank starts from rank 0's copy
        self.buckets = []                                 # lists of parameters, last layer first
        size = 0
        for p in reversed(params):
            nbytes = p.numel() * p.element_size()
            if not self.buckets or size + nbytes > bucket_mb * 2**20:
                self.buckets.append([])
                size = 0
            self.buckets[-1].append(p)
            size += nbytes
        self.bucket_of = {p: i for i, bucket in enumerate(self.buckets) for p in bucket}
        self.waiting = [len(b) for b in self.buckets]     # gradients each bucket still waits for
        self.in_flight = []                               # (handle, flat buffer, bucket index)
        for p in params:
            p.register_post_accumulate_grad_hook(self._gradient_ready)
        ### END SOLUTION

    def forward(self, *args):
        return self.module(*args)

    def _gradient_ready(self, p):
        """Called by autograd when p.grad is final for this backward."""
        ### BEGIN SOLUTION
        index = self.bucket_of[p]
        self.waiting[index] -= 1
        if self.waiting[index] == 0:                      # the bucket's last gradient: send it now
            flat = torch.cat([q.grad.reshape(-1) for q in self.buckets[index]])
            handle = dist.all_reduce(flat, async_op=True)
            self.in_flight.append((handle, flat, index))
        ### END SOLUTION

    def finish_gradient_synchronization(self):
        """Wait for every bucket's all_reduce; every p.grad becomes its mean over the ranks."""
        ### BEGIN SOLUTION
        for handle, flat, index in self.in_flight:
            handle.wait()
            flat /= dist.get_world_size()
            offset = 0
            for q in self.buckets[index]:
                q.grad.copy_(flat[offset:offset + q.numel()].view_as(q.grad))
                offset += q.numel()
        self.in_flight = []
        self.waiting = [len(b) for b in self.buckets]
        ### END SOLUTION
''')

nb.code(r'''
def _bucketed_rank(rank, state, x, y, lr, bucket_mb):
    model = BucketedDDP(mlp_from_state(rank_start(state, rank)), bucket_mb)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)          # gradients exist from the start; zero_grad keeps them
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for step in range(x.shape[0]):
        optimizer.zero_grad(set_to_none=False)
        F.cross_entropy(model(my_rows(x[step], rank, 2)), my_rows(y[step], rank, 2)).backward()
        model.finish_gradient_synchronization()
        optimizer.step()
    return dict(model.module.state_dict())


def run_bucketed(state, x, y, lr, bucket_mb):
    """SGD steps on x[s], y[s] split over 2 ranks with your BucketedDDP: rank 0's parameters at the end."""
    return launch(_bucketed_rank, (state, x, y, lr, bucket_mb))[0]
''')

# Mistakes these visible tests name: no broadcast in __init__, summing instead of averaging, a bucket launched
# before all its gradients are ready. 0.0007 MB puts the last layer's weight and bias in one bucket.
nb.tests("test_bucketed_ddp", 3, r'''
def _bucket_launches(rank, state, x, y, bucket_mb):
    """The all_reduce calls of one backward with your BucketedDDP: "calls", (values sent, whether backward was
    running, how many gradients had reached your hook by then; 0 when your hook is not BucketedDDP._gradient_ready);
    "sent", the tensors as each call received them; "grads", each parameter's gradient once backward returned."""
    ready, real_hook = [0], getattr(BucketedDDP, "_gradient_ready", None)
    def counted_hook(self, p):
        ready[0] += 1
        return real_hook(self, p)
    if real_hook is not None:
        BucketedDDP._gradient_ready = counted_hook
    try:
        model = BucketedDDP(mlp_from_state(rank_start(state, rank)), bucket_mb)
    finally:
        if real_hook is not None:
            BucketedDDP._gradient_ready = real_hook
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    calls, during, sent = [], [False], []
    real_all_reduce = dist.all_reduce
    def recorded(tensor, *args, **kwargs):
        calls.append((tensor.numel(), during[0], ready[0]))
        sent.append(tensor.detach().clone())  # what this rank sends, before the sum replaces it
        return real_all_reduce(tensor, *args, **kwargs)
    dist.all_reduce = recorded
    during[0] = True
    F.cross_entropy(model(my_rows(x[0], rank, 2)), my_rows(y[0], rank, 2)).backward()
    during[0] = False
    grads = {name: p.grad.detach().clone() for name, p in model.module.named_parameters()}  # this backward's own
    model.finish_gradient_synchronization()
    return {"calls": calls, "sent": sent, "grads": grads}


def _buckets(state, bucket_mb):
    """(parameters, values) of each bucket formed from the LAST parameter back, as the exercise asks."""
    buckets, size = [], None
    for p in reversed(list(mlp_from_state(state).parameters())):
        if size is None or size + p.numel() * p.element_size() > bucket_mb * 2**20:
            buckets.append([0, 0])
            size = 0
        buckets[-1][0] += 1
        buckets[-1][1] += p.numel()
        size += p.numel() * p.element_size()
    return buckets


def _stale_finding(seen, state, bucket_mb):
    """Which gradients a bucket sent as zeros (the p.grad from before this backward), or None."""
    names = [name for name, _ in reversed(list(mlp_from_state(state).named_parameters()))]
    first = 0
    for i, ((n_params, _), buffer) in enumerate(zip(_buckets(state, bucket_mb), seen["sent"])):
        bucket, first, buffer = names[first:first + n_params], first + n_params, buffer.reshape(-1)
        grads = {name: seen["grads"][name] for name in bucket}
        stale = [name for name, g in grads.items() if g.abs().max() > 0 and not run_starts(buffer, g)
                 and run_starts(buffer, torch.zeros_like(g))]
        if stale:
            return (f"bucket {i} sent zeros where the gradients of {stale} belong: the p.grad they had BEFORE this "
                    "backward. Either your hook ran before autograd wrote p.grad (a hook of p.register_hook runs "
                    "before the gradient is accumulated into p.grad, and receives it as its argument; one of "
                    "p.register_post_accumulate_grad_hook runs after, when p.grad is final), or what the bucket "
                    "joins is not each parameter's p.grad")
    return None


def _launch_finding(state, x, y, bucket_mb):
    """What your all_reduce calls of one backward show about WHEN each bucket is sent and what it sends, or None."""
    seen = call(launch, _bucket_launches, (state, x, y, bucket_mb))[0]
    calls = seen["calls"]
    buckets = _buckets(state, bucket_mb)
    sent = [n for n, _, _ in calls]
    if not calls:
        return ("no bucket was sent: dist.all_reduce was not called once in a whole backward and "
                "finish_gradient_synchronization (a bucket whose count of waiting gradients never meets your launch "
                "condition is never sent: the hook must count it down, self.waiting[index] -= 1, and send the bucket "
                "when it reaches 0; if you call all_reduce under another name, this check cannot see it)")
    if sent != [v for _, v in buckets][:len(sent)]:
        return None   # other buckets: the check after this one says so
    needed = 0
    for i, ((n, _, ready), (n_params, _)) in enumerate(zip(calls, buckets)):
        needed += n_params
        if 0 < ready < needed:
            return (f"bucket {i} ({n} values) can be sent once the first {needed} gradients have reached your hook, "
                    f"but it was sent when only {ready} had: its all_reduce started before its last gradient "
                    "arrived, so it sent an unfinished value; start it when the bucket's count of waiting gradients "
                    "reaches 0, in the hook call of its last gradient")
    if len(calls) < len(buckets):
        return (f"only {len(calls)} of the {len(buckets)} buckets were sent in one backward (values sent: {sent}, "
                f"expected {[v for _, v in buckets]}): a bucket whose count of waiting gradients never meets your "
                "launch condition is never sent; check the condition for a bucket of one parameter too")
    return _stale_finding(seen, state, bucket_mb)


_state, _x, _y = toy_problem(seed=13)
_got = call(run_bucketed, _state, _x, _y, 0.5, 0.0007)
report(_got, whole_batch_sgd(_state, _x, _y, 0.5), "run_bucketed",
       dict(state=_state, x=_x, y=_y, lr=0.5, bucket_mb=0.0007),
       "launch a bucket's all_reduce only when every gradient in it is ready (count down per bucket in the hook), "
       "and copy each buffer back into the same parameters, in the same order",
       one_step=lambda: call(run_bucketed, _state, _x[:1], _y[:1], 0.5, 0.0007),
       again=lambda state, x, y: call(run_bucketed, state, x, y, 0.5, 0.0007),
       watched=lambda: _launch_finding(_state, _x, _y, 0.0007))

# 0.001 MB = 1048 bytes of float64 gradients. Taken from the LAST parameter back, the buckets are (2.bias, 2.weight,
# 0.bias) = 84 values, then 0.weight = 96; taken from the first parameter on, they would be (0.weight, 0.bias) = 112
# and (2.weight, 2.bias) = 68, sent as 68, then 112: right sums either way, so only the calls tell them apart.
_want = [values for _, values in _buckets(_state, 0.001)]
_calls = call(launch, _bucket_launches, (_state, _x, _y, 0.001))[0]["calls"]
if _calls:   # none recorded: all_reduce was imported under another name, and this check cannot see it
    _sent = [n for n, _, _ in _calls]
    assert all(running for _, running, _ in _calls), (
        f"all_reduce ran after backward had finished (values sent: {_sent}): launch each bucket from the hook, "
        "while backward is still running, and only wait for it in finish_gradient_synchronization")
    assert _sent == _want, (
        f"with bucket_mb=0.001 your buckets sent {_sent} gradient values, in that order; buckets formed from the "
        f"LAST parameter back (the order backward finishes them) send {_want}: take the parameters in reverse "
        "order when you form the buckets, and start a new bucket when the next one would not fit")


def _bucket_waits(rank, state, x, y, bucket_mb):
    """How often each all_reduce handle is waited on over two steps with your BucketedDDP, per handle."""
    model = BucketedDDP(mlp_from_state(rank_start(state, rank)), bucket_mb)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    waits, real_all_reduce = [], dist.all_reduce
    class Counted:   # the handle all_reduce returned, counting its wait() calls
        def __init__(self, handle):
            self.handle, self.number = handle, len(waits)
            waits.append(0)
        def wait(self, *args, **kwargs):
            waits[self.number] += 1
            return self.handle.wait(*args, **kwargs)
        def __getattr__(self, name):
            return getattr(self.handle, name)
    def counted(tensor, *args, **kwargs):
        handle = real_all_reduce(tensor, *args, **kwargs)
        return Counted(handle) if handle is not None else None
    dist.all_reduce = counted
    for step in range(2):
        for p in model.parameters():
            p.grad.zero_()
        F.cross_entropy(model(my_rows(x[step], rank, 2)), my_rows(y[step], rank, 2)).backward()
        model.finish_gradient_synchronization()
    return waits


_waits = call(launch, _bucket_waits, (_state, _x, _y, 0.001))[0]
assert max(_waits, default=1) <= 1, (
    f"over two steps your handles were waited on {_waits} times (one entry per all_reduce, in launch order): the "
    "second step waited again on the first step's all_reduces, so the list of pending buckets was not emptied: "
    "clear it at the end of finish_gradient_synchronization, or every step redoes (and keeps alive) the work of "
    "all the steps before it")
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("11_distributed", "run_bucketed", run_bucketed)
### END HIDDEN TESTS
''')

nb.md(r"""
## 6. Gradient accumulation: one big step from micro-batches, communicating once

When the batch a step should use does not fit in memory, each rank runs $N$ micro-batches: forward, the loss
divided by $N$, backward. `p.grad` adds the micro-batches' gradients up. Only after the last one are the
gradients averaged over the ranks and the optimizer steps. (torch's DDP and `gptref.distributed.DataParallel`
skip their communication inside `with model.no_sync():` for exactly this.)

**Exercise.** Write `accumulated_step(model, optimizer, micro_batches)`: `micro_batches` is this rank's list of
`(x, y)`; zero the gradients, accumulate the scaled losses' gradients, then average the gradients over the ranks
**once** (a loop over the parameters, as in section 3), and step. The test watches when you call `all_reduce`.
""")

nb.solution("accumulation", r'''
def accumulated_step(model, optimizer, micro_batches):
    """One optimizer step over this rank's micro-batches; gradients are averaged over the ranks once, at the end."""
    ### BEGIN SOLUTION
    optimizer.zero_grad()
    for x, y in micro_batches:
        loss = F.cross_entropy(model(x), y) / len(micro_batches)   # the mean over the whole batch, in pieces
        loss.backward()                                            # p.grad adds up; no communication yet
    for p in model.parameters():                                   # once per step: the mean over the ranks
        dist.all_reduce(p.grad)
        p.grad /= dist.get_world_size()
    optimizer.step()
    ### END SOLUTION
''')

nb.code(r'''
def _accumulated_rank(rank, state, x, y, lr, micro_steps):
    model = mlp_from_state(state)
    forwards, early = [0], [0]
    model.register_forward_pre_hook(lambda module, args: forwards.__setitem__(0, forwards[0] + 1))
    real_all_reduce = dist.all_reduce

    def watched_all_reduce(*args, **kwargs):
        if forwards[0] % micro_steps:                    # a micro-batch of this step is still to come
            early[0] += 1
        return real_all_reduce(*args, **kwargs)

    dist.all_reduce = watched_all_reduce                 # this process only: watch the communication
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    steps, real_step = [0], optimizer.step

    def counted_step(*args, **kwargs):
        steps[0] += 1
        return real_step(*args, **kwargs)

    optimizer.step = counted_step                        # count the optimizer steps too
    for step in range(x.shape[0]):
        xs, ys = my_rows(x[step], rank, 2), my_rows(y[step], rank, 2)
        accumulated_step(model, optimizer, list(zip(xs.chunk(micro_steps), ys.chunk(micro_steps))))
    return {"params": dict(model.state_dict()), "early_all_reduce_calls": early[0], "optimizer_steps": steps[0]}


def run_accumulated(state, x, y, lr, micro_steps):
    """Your accumulated_step on 2 ranks, `micro_steps` micro-batches each: rank 0's parameters, how many
    all_reduce calls it made before a step's last micro-batch, and how many optimizer steps it took."""
    return launch(_accumulated_rank, (state, x, y, lr, micro_steps))[0]
''')

nb.tests("test_accumulation", 2, r'''
_state, _x, _y = toy_problem(seed=14, batch=12)   # N = 3 micro-batches of 2 rows per rank: N differs from both the
                                                   # world size and the rows per micro-batch
_got = call(run_accumulated, _state, _x, _y, 0.5, 3)
assert _got["early_all_reduce_calls"] == 0, (
    f"{_got['early_all_reduce_calls']} all_reduce calls came before a step's last micro-batch: communicate once per "
    "step, after the last micro-batch, not after each one")
assert _got["optimizer_steps"] == _x.shape[0], (
    f"optimizer.step() ran {_got['optimizer_steps']} times in {_x.shape[0]} calls of accumulated_step: the "
    "micro-batches' gradients add up in p.grad, and ONE optimizer.step() follows the last micro-batch of each call")
report(_got["params"], whole_batch_sgd(_state, _x, _y, 0.5), "run_accumulated",
       dict(state=_state, x=_x, y=_y, lr=0.5, micro_steps=3),
       "N micro-batches must add up to the gradient of the whole batch before ONE optimizer step: look at where "
       "the gradients are zeroed (once per step), the loss scale (1/N) and the one averaging over the ranks",
       one_step=lambda: call(run_accumulated, _state, _x[:1], _y[:1], 0.5, 3)["params"],
       again=lambda state, x, y: call(run_accumulated, state, x, y, 0.5, 3)["params"])
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("11_distributed", "run_accumulated", run_accumulated)
### END HIDDEN TESTS
''')

nb.md(r"""
## 7. ZeRO stage 1: shard the optimizer state

AdamW keeps two moments per parameter element: in float32 that is 8 bytes per element, twice the parameters
themselves, and with DDP every rank holds all of it. **ZeRO-1** gives each parameter an *owner* rank: only the
owner keeps its AdamW state and updates it; afterwards the owner broadcasts the new values, so every rank again
holds the whole model. Gradients are still averaged as before (here by torch's `DistributedDataParallel`).
The state per rank drops to about $1/W$; the price is one broadcast of the parameters per step.

**Exercise.** Write
- `shard_owners(numels, world_size)`: the owner of each parameter (a list of ranks), so that the ranks hold about
  the same number of **elements** (give each parameter, in order, to the rank with the fewest elements so far);
- `make_local_optimizer(params, owners, rank, lr)`: an `torch.optim.AdamW(..., lr=lr)` over the parameters this
  rank owns (the test gives every rank at least one);
- `zero1_step(params, local_optimizer, owners)`: step the local optimizer, then broadcast every parameter from its
  owner (`dist.broadcast(p.data, src=owner)`).
""")

nb.solution("zero1", r'''
def shard_owners(numels, world_size):
    """The owner rank of each parameter, balancing the number of elements per rank."""
    ### BEGIN SOLUTION
    loads = [0] * world_size
    owners = []
    for n in numels:
        rank = loads.index(min(loads))
        owners.append(rank)
        loads[rank] += n
    return owners
    ### END SOLUTION


def make_local_optimizer(params, owners, rank, lr):
    """AdamW over this rank's own parameters only: the state of the others lives on their owners."""
    ### BEGIN SOLUTION
    return torch.optim.AdamW([p for p, owner in zip(params, owners) if owner == rank], lr=lr)
    ### END SOLUTION


def zero1_step(params, local_optimizer, owners):
    """Update this rank's shard, then every rank receives each parameter from its owner."""
    ### BEGIN SOLUTION
    local_optimizer.step()
    with torch.no_grad():
        for p, owner in zip(params, owners):
            dist.broadcast(p.data, src=owner)
    ### END SOLUTION
''')

nb.code(r'''
def state_bytes(optimizer):
    """Bytes of the optimizer's state (AdamW: two moments per element and a step counter per parameter)."""
    return sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values()
               if isinstance(t, torch.Tensor))


def _zero_rank(rank, state, x, y, lr):
    model = mlp_from_state(state)
    ddp = nn.parallel.DistributedDataParallel(model)     # averages the gradients (sections 3-5)
    params = list(model.parameters())
    owners = shard_owners([p.numel() for p in params], dist.get_world_size())
    optimizer = make_local_optimizer(params, owners, rank, lr)
    for step in range(x.shape[0]):
        model.zero_grad()
        F.cross_entropy(ddp(my_rows(x[step], rank, 2)), my_rows(y[step], rank, 2)).backward()
        zero1_step(params, optimizer, owners)
    return {"params": dict(model.state_dict()), "state_bytes": state_bytes(optimizer)}


def run_zero(state, x, y, lr):
    """AdamW steps with your ZeRO-1 on 2 ranks: rank 0's parameters and each rank's optimizer-state bytes."""
    ranks = launch(_zero_rank, (state, x, y, lr))
    return {"params": ranks[0]["params"], "state_bytes": [ranks[r]["state_bytes"] for r in sorted(ranks)]}


def whole_batch_adamw(state, x, y, lr):
    """One process, plain AdamW on the whole batch: its parameters and its state bytes."""
    model = mlp_from_state(state)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    for step in range(x.shape[0]):
        optimizer.zero_grad()
        F.cross_entropy(model(x[step]), y[step]).backward()
        optimizer.step()
    return model.state_dict(), state_bytes(optimizer)
''')

nb.tests("test_zero1", 3, r'''
_state, _x, _y = toy_problem(seed=15)
_got = call(run_zero, _state, _x, _y, 0.05)
_want, _full = whole_batch_adamw(_state, _x, _y, 0.05)
_mine = _got["state_bytes"]
assert sum(_mine) >= _full, (f"the ranks hold {sum(_mine)} bytes of AdamW state together, one AdamW holds {_full}: "
                             "every parameter needs an owner that steps it")
assert max(_mine) < _full, (f"state per rank {_mine} bytes, a whole AdamW holds {_full}: build the local optimizer "
                            "over this rank's own parameters only")
assert max(_mine) <= 0.7 * _full, (f"state per rank {_mine} bytes of {_full}: the shards are unbalanced; give each "
                                   "parameter to the rank with the fewest ELEMENTS so far")
report(_got["params"], _want, "run_zero", dict(state=_state, x=_x, y=_y, lr=0.05),
       "each rank must step its own shard, then every parameter is broadcast from its owner: look at the owners, "
       "the local optimizer (its parameters, and lr=lr), and the broadcasts after its step",
       first_step=lambda: unmoved_finding(call(run_zero, _state, _x[:1], _y[:1], 0.05)["params"], _state),
       again=lambda state, x, y: call(run_zero, state, x, y, 0.05)["params"])
### BEGIN HIDDEN TESTS
from gptref.grading import check
check("11_distributed", "run_zero", run_zero)
### END HIDDEN TESTS
''')

nb.md(r"""
## 8. Measured: time per step, and where it goes

Now `gptref.distributed`, the course's own implementation of the same ideas (it is what
`python -m gptref train --ddp_impl=gptref` uses under `torchrun`), on a wider model: 6 linear layers of
$128\times128$, float32, a batch of 64 rows per rank. Each variant runs a few steps on the two processes; we time
the whole step (forward, backward, communication, optimizer) and, separately, the time spent in
`finish_gradient_synchronization()`: for naive and flat that is all the communication, for buckets only the part
that backward did not hide. The optimizer-state memory per rank is measured with plain AdamW and with
`gptref.distributed.ShardedAdamW`.
""")

nb.code(r'''
from gptref.distributed import DataParallel, ShardedAdamW

BUCKET_SIZES_MB = (0.02, 0.07, 0.15, 1.0)
VARIANTS = [("naive", None), ("flat", None)] + [("bucketed", mb) for mb in BUCKET_SIZES_MB]


def wide_model():
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Sequential(nn.Linear(128, 128), nn.Tanh()) for _ in range(6)], nn.Linear(128, 10))


def _measure_rank(rank, rounds=5):
    """Seconds per step and in finish_gradient_synchronization per variant (the fastest of `rounds`, the variants
    taking turns so that a busy machine slows them alike); AdamW state bytes, plain and sharded."""
    g = torch.Generator().manual_seed(rank)
    x, y = torch.randn(64, 128, generator=g), torch.randint(0, 10, (64,), generator=g)
    models = {}
    for mode, mb in VARIANTS:
        model = DataParallel(wide_model(), mode=mode, bucket_mb=mb or 25.0)
        models[mode if mb is None else f"bucket {mb} MB"] = (model, torch.optim.SGD(model.parameters(), lr=0.01))
    measured = {name: [] for name in models}
    for round_ in range(rounds + 1):                        # round 0 warms up, not counted
        for name, (model, optimizer) in models.items():
            dist.barrier()
            t0 = time.perf_counter()
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            t1 = time.perf_counter()
            model.finish_gradient_synchronization()
            t2 = time.perf_counter()
            optimizer.step()
            if round_:
                measured[name].append((time.perf_counter() - t0, t2 - t1))
    times = {name: (min(s for s, _ in m), min(c for _, c in m), max(len(models[name][0].buckets), 1))
             for name, m in measured.items()}
    memory = {}
    for name, make in (("AdamW (every rank)", lambda ps: torch.optim.AdamW(ps)),
                       ("ShardedAdamW (ZeRO-1)", lambda ps: ShardedAdamW(ps))):
        model = DataParallel(wide_model(), mode="flat")
        optimizer = make(list(model.parameters()))
        F.cross_entropy(model(x), y).backward()
        model.finish_gradient_synchronization()
        optimizer.step()
        memory[name] = optimizer.state_bytes() if hasattr(optimizer, "state_bytes") else state_bytes(optimizer)
    return {"times": times, "memory": memory}


def measure_and_plot():
    """Run _measure_rank on the two processes, print the numbers, and plot them."""
    measured = launch(_measure_rank, ())
    times = measured[0]["times"]
    n_bytes = sum(p.numel() * 4 for p in wide_model().parameters())
    print(f"gradients: {n_bytes / 2**20:.2f} MB in {len(list(wide_model().parameters()))} tensors")
    n_tensors = len(list(wide_model().parameters()))
    for name, (step_s, comm_s, n_buckets) in times.items():
        calls = n_tensors if name == "naive" else n_buckets
        print(f"{name:>16}: {step_s * 1e3:6.2f} ms per step, {comm_s * 1e3:6.2f} ms waiting for communication, "
              f"{calls} all_reduce calls")
    per_call = (times["naive"][1] - times["flat"][1]) / (n_tensors - 1)
    print(f"latency of one more all_reduce call (naive minus flat, per extra call): {per_call * 1e3:.2f} ms")
    for name in measured[0]["memory"]:
        print(f"{name:>22}: " + ", ".join(f"rank {r} {measured[r]['memory'][name] / 2**10:.0f} KiB" for r in measured))

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    names = list(times)
    steps_ms = [times[n][0] * 1e3 for n in names]
    comm_ms = [times[n][1] * 1e3 for n in names]
    ax1.bar(names, [s - c for s, c in zip(steps_ms, comm_ms)], label="compute (forward, backward, step)")
    ax1.bar(names, comm_ms, bottom=[s - c for s, c in zip(steps_ms, comm_ms)], label="waiting for all_reduce")
    ax1.set_ylabel("ms per step (fastest of 5)"); ax1.set_title("time per step, 2 gloo processes")
    ax1.tick_params(axis="x", rotation=30); ax1.legend(fontsize=8)
    memory_names = list(measured[0]["memory"])
    for r in sorted(measured):
        kib = [measured[r]["memory"][n] / 2**10 for n in memory_names]
        ax2.bar([i + 0.4 * r for i in range(len(memory_names))], kib, width=0.4, label=f"rank {r}")
    ax2.set_xticks([i + 0.2 for i in range(len(memory_names))], memory_names)
    ax2.set_ylabel("KiB of optimizer state"); ax2.set_title("optimizer state per rank"); ax2.legend(fontsize=8)
    plt.tight_layout()
    plt.savefig("distributed_measurements.png", dpi=90)
    plt.show()


measure_and_plot()
''')

nb.md(r"""
**Reading the plot.** The numbers are the ones the cell above printed on this machine, and they move from run
to run on a busy CPU. Compare the naive bar with the flat bar: the difference, divided by the extra calls, is the
latency of one call that the cell prints. In the bucketed bars only the *waiting* part is communication that
backward did not hide; very small buckets pay the latency many times, and one bucket as large as the model
cannot start before backward has finished.
The right panel shows ZeRO-1: each rank holds only its shard of AdamW's moments, the printed bytes per rank
against the whole.

**On a real cluster.** Here two processes share one machine's memory, and gloo copies through it; the
compute per step is small too. Between GPUs, NCCL moves data over NVLink or InfiniBand, while each GPU computes
backward far faster than a CPU, so the communication is a much larger share of the step and hiding it behind
backward (buckets, started in reverse order) matters more than it does here. The measurements above are the
two quantities to redo on your own hardware: the latency of one call (printed above) and how much of the
communication the buckets hide (the waiting part of each bucketed bar against the flat bar's).
""")

nb.written("q_bucket_size", 2, r"""
**Question.** Using the plot and the printed times above, choose a bucket size for this model on this machine and
defend it: which numbers did you compare, what would go wrong with a much smaller and with a much larger bucket,
and would you expect the same choice to hold on 8 GPUs connected by NVLink? (4–8 sentences.)
""", r"""
*Sample answer (the numbers depend on the run).* Compare each bucketed bar's total and its waiting part with the
flat bar, and read the printed number of calls. The best bucket size is the one with the lowest total: a few
buckets, so that backward still has layers to compute when the first buckets are sent (part of the communication
hidden), but few enough calls that the printed per-call latency does not add up. The smallest size makes almost
every tensor its own bucket and pays that latency per tensor, like naive; the largest makes one bucket that is
launched only after the last gradient, so nothing overlaps and it behaves like flat. On 8 GPUs with NVLink both
the latency per call and the backward time are much smaller, so the trade-off must be measured there again;
PyTorch's default bucket of 25 MB is meant for models of hundreds of MB, where it still gives many buckets.
""")

nb.save()
