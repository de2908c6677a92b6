"""Data parallelism written out: a DDP wrapper (naive, flat, overlapped buckets) and a ZeRO-1 sharded AdamW.

Both work on any torch.distributed process group (gloo on CPU, nccl on GPUs) and are tested against
torch.nn.parallel.DistributedDataParallel and single-process AdamW in tests/test_distributed.py.
"""

from gptref.distributed.ddp import DataParallel
from gptref.distributed.zero import ShardedAdamW

__all__ = ["DataParallel", "ShardedAdamW"]
