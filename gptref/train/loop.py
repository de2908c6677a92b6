"""The training loop: AdamW with decay groups, cosine schedule, clipping, accumulation, eval, checkpoints,
resume, DDP."""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from gptref.gpt import GPT, GPTConfig
from gptref.tokenizers import get_tokenizer, tokenizer_from_spec
from gptref.train import ddp
from gptref.train.checkpoint import load_checkpoint, save_checkpoint
from gptref.train.config import TrainConfig
from gptref.train.optim import make_optimizer_for, optimizer_state_bytes, optimizer_state_for_checkpoint
from gptref.train.prepare import token_file
from gptref.train.schedule import schedule_lr
from gptref.train.sft import LMBatches, SFTBatches, next_line_examples

WARMUP_STEPS = 5  # the first steps (torch.compile, first allocations) are not counted in tokens/s


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN/inf)."""


@dataclass
class TrainResult:
    out_dir: Path
    checkpoint: Path | None
    history: dict[str, list]
    final_train_loss: float
    final_val_loss: float
    tokens_per_s: float
    iters_per_s: float
    iters_done: int
    model: Any = field(repr=False, default=None)
    tokenizer: Any = field(repr=False, default=None)
    optimizer_state_bytes: int = 0  # held by this process (with zero1: its shard only)


def _resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"option device={name!r} but CUDA is not available on this machine")
    return name


def _rng_state(sampler: np.random.Generator) -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)
    np_state["state"] = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in np_state["state"].items()}
    state = {"torch": torch.get_rng_state(), "numpy": np_state, "python": random.getstate(),
             "sampler": sampler.bit_generator.state}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], sampler: np.random.Generator) -> None:
    torch.set_rng_state(state["torch"])
    np_state = dict(state["numpy"])
    np_state["state"] = {k: (np.array(v, dtype=np.uint32) if isinstance(v, list) else v)
                         for k, v in np_state["state"].items()}
    np.random.set_state(np_state)
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    sampler.bit_generator.state = state["sampler"]
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _batches(cfg: TrainConfig, tokenizer, split: str, cache=None):
    if cfg.task == "sft":
        from gptref import data

        return SFTBatches(next_line_examples(data.corpus(cfg.dataset, split)), tokenizer, cfg.block_size)
    return LMBatches(token_file(cfg.dataset, split, tokenizer, cache), cfg.block_size)


@torch.no_grad()
def estimate_loss(model, batches: dict[str, Any], cfg: TrainConfig, device: str, autocast,
                  rows: int | None = None) -> dict[str, float]:
    """Mean cross-entropy over eval_iters fixed batches of `rows` (default batch_size) per split, the same every time.

    Cross-entropy alone, without an auxiliary loss such as max-z, so runs with and without one compare.
    """
    model.eval()
    out = {}
    for split, source in batches.items():
        rng = np.random.default_rng([cfg.seed, 7])
        losses = torch.zeros(cfg.eval_iters)
        for k in range(cfg.eval_iters):
            x, y = source.sample(rng, rows or cfg.batch_size)
            with autocast:
                logits, _ = model(x.to(device))
            y = y.to(device)
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)
            losses[k] = loss.cpu()
        out[split] = losses.mean().item()
    model.train()
    return out


def _setup_run(cfg: TrainConfig) -> tuple[str, Any, Path, Path]:
    """Device, DDP, threads and the checkpoint path, refusing to overwrite or to resume nothing."""
    device = _resolve_device(cfg.device)
    dist = ddp.setup(device)
    if dist.enabled and device.startswith("cuda"):
        device = f"cuda:{dist.local_rank}"
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out_dir = Path(cfg.out_dir or f"runs/train-{datetime.now():%Y%m%d-%H%M%S}")
    ckpt_path = out_dir / "ckpt.pt"
    if ckpt_path.exists() and not cfg.resume and not cfg.overwrite and cfg.save_checkpoints:
        raise FileExistsError(
            f"{ckpt_path} already exists; pass --resume to continue it, --overwrite to replace it, "
            "or choose another --out_dir")
    if cfg.resume and not ckpt_path.exists():
        raise FileNotFoundError(f"--resume given but there is no checkpoint at {ckpt_path}")
    if cfg.zero1 and not dist.enabled:
        raise ValueError("option zero1=True shards the optimizer state over data-parallel processes: launch with "
                         "torchrun --nproc_per_node=N (N >= 2), or leave zero1 off")
    return device, dist, out_dir, ckpt_path


def _seed_everything(seed: int) -> np.random.Generator:
    """Seed torch, numpy and random; return the batch sampler's own generator."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    return np.random.default_rng(seed)


def _model_and_tokenizer(cfg: TrainConfig, source: dict | None, cache) -> tuple[GPT, Any, dict[str, Any]]:
    """A fresh GPT and tokenizer from cfg, or the checkpoint's (which keeps its own tokenizer)."""
    if source is not None:
        tokenizer = tokenizer_from_spec(source["tokenizer"])
        kind = source["tokenizer"]["kind"]
        if cfg.tokenizer not in ("auto", kind):
            raise ValueError(f"option tokenizer={cfg.tokenizer!r} but the checkpoint was trained with a {kind!r} "
                             "tokenizer; leave tokenizer at 'auto' when starting from a checkpoint")
        model_args = dict(source["model_args"], dropout=cfg.dropout)
        if cfg.block_size > model_args["block_size"]:
            raise ValueError(f"option block_size={cfg.block_size} exceeds the checkpoint's {model_args['block_size']}")
    else:
        tokenizer = get_tokenizer("char" if cfg.tokenizer == "auto" else cfg.tokenizer, cfg.bpe_vocab_size, cache)
        model_args = dict(vocab_size=len(tokenizer), block_size=cfg.block_size, n_layer=cfg.n_layer,
                          n_head=cfg.n_head, n_embd=cfg.n_embd, dropout=cfg.dropout, bias=cfg.bias,
                          positions=cfg.positions, norm=cfg.norm, mlp=cfg.mlp, mlp_multiple_of=cfg.mlp_multiple_of,
                          head=cfg.head, z_loss=cfg.z_loss, activation=cfg.activation, qk_norm=cfg.qk_norm,
                          zero_init_proj=cfg.zero_init_proj, tie_head=cfg.tie_head)
    model = GPT(GPTConfig(**model_args))
    if source is not None:
        model.load_state_dict(source["model"])
    return model, tokenizer, model_args


def _autocast(cfg: TrainConfig, device: str):
    """bfloat16 autocast where cfg.dtype asks for it (auto: on CUDA), with TF32 matmuls on CUDA; else a no-op."""
    is_cuda = device.startswith("cuda")
    if is_cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if cfg.dtype == "bfloat16" or (cfg.dtype == "auto" and is_cuda):
        return torch.autocast(device_type="cuda" if is_cuda else "cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _wrap(model: GPT, cfg: TrainConfig, dist, device: str) -> torch.nn.Module:
    """torch.compile (cfg.compile; auto: on CUDA) and data parallelism (cfg.ddp_impl) around the model."""
    is_cuda = device.startswith("cuda")
    if cfg.compile == "true" or (cfg.compile == "auto" and is_cuda):
        model = torch.compile(model)
    if dist.enabled and cfg.ddp_impl == "gptref":  # the course's own: overlapped buckets (day 11)
        from gptref.distributed import DataParallel

        model = DataParallel(model, mode="bucketed", bucket_mb=cfg.ddp_bucket_mb)
    elif dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model, device_ids=[dist.local_rank] if is_cuda else None)
    return model


class _Record:
    """The run's history, its losses still on the device, and its checkpoint (saved by the main process)."""

    def __init__(self, cfg: TrainConfig, dist, ckpt_path: Path, state: dict | None, sampler: np.random.Generator):
        self.cfg, self.dist, self.ckpt_path, self.sampler = cfg, dist, ckpt_path, sampler
        self.history: dict[str, list] = state["history"] if state is not None else {"train": [], "eval": [], "lr": []}
        self.last_good: Path | None = ckpt_path if state is not None else None
        self.pending: list[tuple[int, torch.Tensor]] = []

    def flush(self) -> None:
        """Move the per-step losses to the host (one sync) and stop on the first NaN/inf."""
        if not self.pending:
            return
        values = torch.stack([t for _, t in self.pending]).tolist()
        for (step, _), value in zip(self.pending, values):
            if not math.isfinite(value):
                where = self.last_good or "none saved yet"
                raise TrainingError(f"loss is {value} at step {step}; last good checkpoint: {where}")
            self.history["train"].append([step, value])
        self.pending.clear()

    def save(self, it: int, model, optimizer, model_args: dict, tokenizer) -> None:
        """Every rank calls it (a sharded optimizer gathers its state on rank 0); rank 0 writes."""
        self.flush()
        if not self.cfg.save_checkpoints:
            return
        optimizer_state = optimizer_state_for_checkpoint(optimizer)
        if not self.dist.is_main:
            return
        save_checkpoint({
            "model": model.state_dict(), "optimizer": optimizer_state, "model_args": model_args,
            "config": self.cfg.to_dict(), "tokenizer": tokenizer.spec(), "iter": it, "history": self.history,
            "rng": _rng_state(self.sampler),
        }, self.ckpt_path)
        self.last_good = self.ckpt_path


def _train_step(model, optimizer, batch: tuple[torch.Tensor, torch.Tensor], cfg: TrainConfig, dist, device: str,
                autocast) -> torch.Tensor:
    """One optimizer step over grad_accum micro-batches of this rank's rows; returns the loss on the device."""
    x_all, y_all = batch  # (accum*world*B, T), the same on every rank
    x_all = x_all.view(cfg.grad_accum, dist.world_size, cfg.batch_size, -1)[:, dist.rank]  # (accum, B, T)
    y_all = y_all.view(cfg.grad_accum, dist.world_size, cfg.batch_size, -1)[:, dist.rank]
    if device.startswith("cuda"):  # page-locked host memory: the copies below do not stall the host
        x_all, y_all = x_all.pin_memory(), y_all.pin_memory()
    step_loss = torch.zeros((), device=device)
    for micro in range(cfg.grad_accum):
        sync = (not dist.enabled) or micro == cfg.grad_accum - 1
        with (contextlib.nullcontext() if sync else model.no_sync()):
            with autocast:
                _, loss = model(x_all[micro].to(device, non_blocking=True), y_all[micro].to(device, non_blocking=True))
                loss = loss / cfg.grad_accum
            loss.backward()
        step_loss += loss.detach()
    if hasattr(model, "finish_gradient_synchronization"):  # gptref.distributed.DataParallel: wait for the buckets
        model.finish_gradient_synchronization()
    if cfg.grad_clip > 0:  # every rank holds every averaged gradient (ZeRO-1 shards only the state): global norm
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return step_loss


def train(cfg: TrainConfig, cache=None, log=print) -> TrainResult:
    """Train (or fine-tune, or resume) as cfg says; returns the history and where the checkpoint is."""
    cfg.validate()
    device, dist, out_dir, ckpt_path = _setup_run(cfg)
    sampler = _seed_everything(cfg.seed)
    state = load_checkpoint(ckpt_path) if cfg.resume else None
    init = load_checkpoint(cfg.init_from) if (state is None and cfg.init_from != "scratch") else None
    raw_model, tokenizer, model_args = _model_and_tokenizer(cfg, state or init, cache)
    raw_model.to(device)
    optimizer = make_optimizer_for(cfg, raw_model, device)
    start = 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"], sampler)
        start = state["iter"]
    record = _Record(cfg, dist, ckpt_path, state, sampler)
    history = record.history
    autocast = _autocast(cfg, device)
    model = _wrap(raw_model, cfg, dist, device)

    saved_at = None  # the iteration of this run's last checkpoint, the same on every rank

    def save(it: int) -> None:
        nonlocal saved_at
        record.save(it, raw_model, optimizer, model_args, tokenizer)
        saved_at = it

    train_src, val_src = _batches(cfg, tokenizer, "train", cache), _batches(cfg, tokenizer, "val", cache)
    rows_per_step = cfg.batch_size * cfg.grad_accum * dist.world_size  # the global batch
    end = min(cfg.max_iters, cfg.stop_at) if cfg.stop_at else cfg.max_iters
    bar = tqdm(total=end, initial=start, desc=f"{cfg.task} {cfg.dataset}", unit="it",
               disable=not (cfg.progress and dist.is_main), dynamic_ncols=True)
    train_time, steps_timed = 0.0, 0
    model.train()
    it = start
    while True:
        evaluated = any(e[0] == it for e in history["eval"])  # only a resumed run's first step: same on every rank
        if (it % cfg.eval_interval == 0 or it == cfg.max_iters) and not evaluated:
            if dist.is_main:
                record.flush()
                losses = estimate_loss(raw_model, {"train": train_src, "val": val_src}, cfg, device, autocast,
                                       rows=cfg.batch_size * dist.world_size)  # DDP: as many rows as 1 process
                history["eval"].append([it, losses["train"], losses["val"]])
                bar.write(f"step {it}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
            if it > start:
                save(it)
        if it >= end:
            break
        t0 = time.perf_counter()
        lr = schedule_lr(cfg, it)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)  # Muon's groups run at muon_lr / learning_rate times it
        step_loss = _train_step(model, optimizer, train_src.sample(sampler, rows_per_step), cfg, dist, device, autocast)
        record.pending.append((it, step_loss))
        history["lr"].append([it, lr])
        it += 1
        if it % cfg.log_interval == 0 or it == end:
            record.flush()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            bar.set_postfix(loss=f"{history['train'][-1][1]:.4f}", lr=f"{lr:.2e}")
        if it - start > WARMUP_STEPS or end - start <= WARMUP_STEPS:  # leave out torch.compile and allocator warm-up
            train_time += time.perf_counter() - t0
            steps_timed += 1
        bar.update(1)
    bar.close()
    record.flush()
    if saved_at != it:  # not saved after the last step's evaluation (save() does nothing without save_checkpoints)
        save(it)
    state_bytes = optimizer_state_bytes(optimizer)
    ddp.cleanup(dist)
    iters_per_s = steps_timed / train_time if train_time > 0 else 0.0
    final_val = history["eval"][-1][2] if history["eval"] else float("nan")
    final_train = history["eval"][-1][1] if history["eval"] else float("nan")
    return TrainResult(out_dir, ckpt_path if cfg.save_checkpoints else None, history, final_train, final_val,
                       iters_per_s * rows_per_step * cfg.block_size, iters_per_s, it, raw_model, tokenizer,
                       state_bytes)
