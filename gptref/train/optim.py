"""The optimizer builders: AdamW with weight decay on matrices only, as nanoGPT and GPT-2 train, and the modern
recipe's split (Muon for the blocks' 2-D matrices, AdamW for embeddings, head, gains and biases)."""

from __future__ import annotations

import torch

from gptref.train.muon import Muon

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


def muon_split(model: torch.nn.Module) -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter]]:
    """(Muon's, AdamW's) parameters: the 2-D matrices inside the transformer blocks go to Muon; embeddings, the
    head, norm gains and biases to AdamW. Each trainable parameter lands in exactly one list (a tied one once)."""
    hidden, rest = [], []
    for name, param in model.named_parameters():  # named_parameters yields a tied parameter once
        if not param.requires_grad:
            continue
        in_block = name.startswith("transformer.h.")
        (hidden if in_block and param.dim() == 2 else rest).append(param)
    return hidden, rest


class MuonWithAdamW:
    """Muon and AdamW stepped together, seen by the loop as one optimizer (param_groups, step, state_dict).

    Each group holds "lr_scale": the loop sets group["lr"] = schedule's lr x lr_scale, so Muon runs at muon_lr
    and AdamW at learning_rate under the same schedule.
    """

    def __init__(self, muon: torch.optim.Optimizer, adamw: torch.optim.Optimizer):
        self.muon, self.adamw = muon, adamw

    @property
    def param_groups(self) -> list[dict]:
        return self.muon.param_groups + self.adamw.param_groups

    @property
    def state(self) -> dict:
        return {**self.muon.state, **self.adamw.state}

    def step(self) -> None:
        self.muon.step()
        self.adamw.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.muon.zero_grad(set_to_none=set_to_none)
        self.adamw.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.muon.load_state_dict(state["muon"])
        self.adamw.load_state_dict(state["adamw"])


def make_muon_optimizer(model: torch.nn.Module, learning_rate: float, muon_lr: float, weight_decay: float,
                        betas: tuple[float, float] = (0.9, 0.95), device: str | torch.device = "cpu",
                        momentum: float = 0.95, ns_steps: int = 5) -> MuonWithAdamW:
    """Muon (orthogonalised Nesterov momentum, Keller Jordan 2024; torch.optim.Muon, or gptref.train.muon's float32
    version on a CPU) on the blocks' matrices at muon_lr;
    make_optimizer's AdamW on the rest (embeddings and an untied head decay, gains and biases do not)."""
    hidden, rest = muon_split(model)
    on_cpu = torch.device(device).type == "cpu"
    muon_class = Muon if on_cpu else torch.optim.Muon  # gptref.train.muon: float32 Newton-Schulz (bf16 is slow on CPU)
    muon = muon_class([{"params": hidden, "lr_scale": muon_lr / learning_rate}], lr=muon_lr,
                            weight_decay=weight_decay, momentum=momentum, ns_steps=ns_steps)
    groups = [
        {"params": [p for p in rest if p.dim() >= 2], "weight_decay": weight_decay, "lr_scale": 1.0},
        {"params": [p for p in rest if p.dim() < 2], "weight_decay": 0.0, "lr_scale": 1.0},
    ]
    fused = torch.device(device).type in FUSED_DEVICES
    return MuonWithAdamW(muon, torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=fused or None))


def make_optimizer_for(cfg, model: torch.nn.Module, device: str | torch.device = "cpu"):
    """The optimizer a TrainConfig asks for: make_optimizer's AdamW, or make_muon_optimizer's split."""
    betas = (cfg.beta1, cfg.beta2)
    if cfg.optimizer == "muon":
        return make_muon_optimizer(model, cfg.learning_rate, cfg.muon_lr, cfg.weight_decay, betas, device,
                                   ns_steps=cfg.muon_ns_steps)
    return make_optimizer(model, cfg.learning_rate, cfg.weight_decay, betas, device, sharded=cfg.zero1)


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
