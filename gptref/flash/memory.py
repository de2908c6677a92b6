"""Count the bytes torch allocates while some code runs: the peak of live tensors and the largest one.

torch has no CPU analogue of torch.cuda.max_memory_allocated, so `track_allocations` installs a
TorchDispatchMode that sees every aten op: each output whose storage is new (not one of the op's
inputs, so not a view or an in-place result) is counted as allocated, and a weakref finalizer on
each tensor referring to it frees it when the last such tensor dies. Tensors that existed before
the block (the inputs) are not counted, so `peak` is the extra memory the code needed at its worst.
Memory outside tensors (the allocator's slack, Python objects) is not seen.
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = ["AllocationTracker", "track_allocations"]


class AllocationTracker(TorchDispatchMode):
    """Live = bytes of storages created inside the mode and still referenced; peak = max(live)."""

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0
        self.largest = 0  # the single largest new storage, in bytes
        self._refs: dict[int, list[int]] = {}  # storage data_ptr -> [nbytes, number of tensors using it]

    def _release(self, key: int) -> None:
        entry = self._refs.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.live -= entry[0]
            del self._refs[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        in_ptrs = {
            t.untyped_storage().data_ptr()
            for t in tree_flatten((args, kwargs))[0]
            if isinstance(t, torch.Tensor)
        }
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key = storage.data_ptr()
            if key in self._refs:  # another tensor on a storage we already count (a view)
                self._refs[key][1] += 1
            elif key in in_ptrs or storage.nbytes() == 0:  # a view of, or in place on, an uncounted tensor
                continue
            else:
                self._refs[key] = [storage.nbytes(), 1]
                self.live += storage.nbytes()
                self.peak = max(self.peak, self.live)
                self.largest = max(self.largest, storage.nbytes())
            weakref.finalize(t, self._release, key)
        return out


@contextmanager
def track_allocations():
    """`with track_allocations() as mem: ...` then mem.peak and mem.largest are in bytes."""
    tracker = AllocationTracker()
    with tracker:
        yield tracker
