"""The one optimizer builder: AdamW with weight decay on matrices only, as nanoGPT and GPT-2 train."""

from __future__ import annotations

import torch

FUSED_DEVICES = ("cpu", "cuda")  # torch's fused AdamW kernel: one pass over all parameters (3-4x faster on a CPU)


def make_optimizer(
    model: torch.nn.Module, learning_rate: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.95),
    device: str | torch.device = "cpu", sharded: bool = False,
) -> torch.optim.Optimizer:
    """AdamW; 2-D weights (matmuls, embeddings) decay, biases and norm gains do not. Fused on CPU and CUDA.

    Fused pays on both: measured on the homework's baby GPT (0.8M parameters, 1 CPU thread), one step takes
    about 7 ms fused against 25 ms with the default multi-tensor kernel. `sharded=True` builds the same AdamW
    as gptref.distributed.ShardedAdamW (ZeRO-1; needs an initialised process group and averaged gradients).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = torch.device(device).type in FUSED_DEVICES
    if sharded:
        from gptref.distributed import ShardedAdamW

        return ShardedAdamW(groups, lr=learning_rate, betas=betas, fused=fused or None)
    return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=fused or None)


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of optimizer state this process holds (AdamW's moments and step counters; a ShardedAdamW's shard)."""
    if hasattr(optimizer, "state_bytes"):
        return optimizer.state_bytes()
    return sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values()
               if isinstance(t, torch.Tensor))


def optimizer_state_for_checkpoint(optimizer: torch.optim.Optimizer) -> dict | None:
    """Plain AdamW's state_dict of the whole model on rank 0 (a ShardedAdamW gathers it: call on every rank)."""
    if hasattr(optimizer, "full_state_dict"):
        return optimizer.full_state_dict(dst=0)
    return optimizer.state_dict()
