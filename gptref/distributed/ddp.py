"""DataParallel: keep one model's copies identical across ranks by averaging their gradients.

Three ways to communicate, chosen by `mode`:
- "naive": after backward, one all_reduce per parameter;
- "flat": after backward, one all_reduce of every gradient flattened into one buffer;
- "bucketed": while backward runs, a post-accumulate-grad hook on each parameter launches an asynchronous
  all_reduce as soon as every gradient of its bucket (reverse parameter order, at most bucket_mb MB) is ready.
In every mode call `finish_gradient_synchronization()` after backward and before the optimizer step.
"""

from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist
import torch.nn as nn

from gptref.distributed.buckets import assign_buckets, flatten, unflatten_into

MODES = ("naive", "flat", "bucketed")


class DataParallel(nn.Module):
    """Wraps `module`: broadcasts rank 0's parameters and buffers, then averages gradients over the ranks."""

    def __init__(self, module: nn.Module, mode: str = "bucketed", bucket_mb: float = 25.0, group=None):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.module, self.mode, self.group = module, mode, group
        self.world_size = dist.get_world_size(group)
        self.params = [p for p in module.parameters() if p.requires_grad]
        with torch.no_grad():
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor, src=0, group=group)  # every rank starts from rank 0's copy
        self.synchronizing = True  # False inside no_sync(): gradients only accumulate
        self.buckets: list[list[torch.Tensor]] = []
        if mode == "bucketed":
            self.buckets = assign_buckets(self.params, bucket_mb)
            self._bucket_of = {id(p): i for i, bucket in enumerate(self.buckets) for p in bucket}
            self._reset_buckets()
            for p in self.params:
                p.register_post_accumulate_grad_hook(self._gradient_ready)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside only accumulate gradients locally; the next one outside communicates."""
        previous, self.synchronizing = self.synchronizing, False
        try:
            yield
        finally:
            self.synchronizing = previous

    # ------------------------------------------------------------ bucketed: launched from the hooks

    def _reset_buckets(self) -> None:
        self._waiting = [len(bucket) for bucket in self.buckets]  # gradients each bucket still waits for
        self._in_flight: dict[int, tuple] = {}  # bucket index -> (work handle, flat buffer)

    def _gradient_ready(self, param: torch.Tensor) -> None:
        if not self.synchronizing:
            return
        index = self._bucket_of[id(param)]
        self._waiting[index] -= 1
        if self._waiting[index] == 0:  # the bucket's last gradient: launch, and let backward go on
            self._launch(index)

    def _launch(self, index: int) -> None:
        grads = [self._grad(p) for p in self.buckets[index]]
        buffer = flatten(grads)
        work = dist.all_reduce(buffer, group=self.group, async_op=True)
        self._in_flight[index] = (work, buffer)

    @staticmethod
    def _grad(param: torch.Tensor) -> torch.Tensor:
        if param.grad is None:  # a parameter the loss did not use: it contributes zeros
            param.grad = torch.zeros_like(param)
        return param.grad

    # ------------------------------------------------------------ after backward

    def finish_gradient_synchronization(self) -> None:
        """Make every rank's gradients the mean over the ranks (waits for the buckets in flight)."""
        if self.mode == "naive":
            for p in self.params:
                dist.all_reduce(self._grad(p), group=self.group)
                p.grad.div_(self.world_size)
        elif self.mode == "flat":
            grads = [self._grad(p) for p in self.params]
            buffer = flatten(grads)
            dist.all_reduce(buffer, group=self.group)
            unflatten_into(buffer.div_(self.world_size), grads)
        else:
            for index in range(len(self.buckets)):
                if index not in self._in_flight:  # some gradient never arrived (unused parameter)
                    self._launch(index)
            for index, (work, buffer) in sorted(self._in_flight.items()):
                work.wait()
                unflatten_into(buffer.div_(self.world_size), [p.grad for p in self.buckets[index]])
            self._reset_buckets()
