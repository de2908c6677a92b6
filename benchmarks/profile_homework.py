"""Where one training iteration's time goes: torch.profiler over the loop's own pieces, saved as JSON.

    python benchmarks/profile_homework.py [--steps 200] [--threads 0] [--batch_size 12] [--compile false]
                                          [--nanogpt-dir PATH]

Builds the model, optimizer and batches exactly as `gptref.train.loop.train` does (nanogpt_compare's cpu preset:
4 layers, 4 heads, 128 wide, block 64, batch 12), runs warm-up steps, then profiles `--steps` steps with one
labelled range per phase: batch sampling, forward, backward, gradient clipping, optimizer step, zero_grad,
logging (the loop's flush to the host, every log_interval steps) and evaluation (one `estimate_loss`, spread over
the iterations as the loop runs it: every eval_interval steps). With --nanogpt-dir (a nanoGPT checkout, as for
nanogpt_compare.py) it also counts the aten calls of one forward+backward of nanoGPT's model.py and of ours, same
shape and batch: the per-op dispatch cost both sides pay. Prints the table and saves it in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from gptref.bench import record
from gptref.train.config import TrainConfig
from gptref.train.loop import _batches, _model_and_tokenizer, _seed_everything, estimate_loss
from gptref.train.optim import make_optimizer

PHASES = ("sample batch", "forward", "backward", "clip grad", "optimizer step", "zero_grad", "logging")
WARMUP = 20  # steps before profiling (allocator, torch.compile)


def one_step(model, optimizer, source, sampler, cfg: TrainConfig, pending: list, step: int) -> None:
    """One iteration of the loop (single process, no accumulation), each phase in a labelled range."""
    with record_function("sample batch"):
        x, y = source.sample(sampler, cfg.batch_size)
    with record_function("forward"):
        _, loss = model(x, y)
    with record_function("backward"):
        loss.backward()
    with record_function("clip grad"):
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    with record_function("optimizer step"):
        optimizer.step()
    with record_function("zero_grad"):
        optimizer.zero_grad(set_to_none=True)
    pending.append(loss.detach())
    if (step + 1) % cfg.log_interval == 0:
        with record_function("logging"):
            torch.stack(pending).tolist()
            pending.clear()


def aten_calls_per_forward_backward(model, x: torch.Tensor, y: torch.Tensor) -> int:
    """Number of aten operator calls in one forward+backward of model on (x, y), after one warm-up pass."""
    _, loss = model(x, y)
    loss.backward()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        _, loss = model(x, y)
        loss.backward()
    return sum(e.count for e in prof.key_averages() if e.key.startswith("aten::"))


def compare_op_counts(nanogpt: Path, raw_model, cfg: TrainConfig, source, sampler) -> dict[str, int]:
    """aten calls of one forward+backward: nanoGPT's model.py against ours, same shape, same batch."""
    spec = importlib.util.spec_from_file_location("nanogpt_model", nanogpt / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shape = {k: getattr(raw_model.config, k) for k in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd",
                                                         "bias", "dropout")}
    theirs = module.GPT(module.GPTConfig(**shape))
    x, y = (t.contiguous() for t in source.sample(sampler, cfg.batch_size))  # nanoGPT .view()s its targets
    return {"gptref": aten_calls_per_forward_backward(raw_model, x, y),
            "nanoGPT": aten_calls_per_forward_backward(theirs, x, y)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--batch_size", type=int, default=12)
    p.add_argument("--compile", default="false", choices=("true", "false"))
    p.add_argument("--nanogpt-dir", type=Path, default=None, help="also count nanoGPT's model.py aten calls")
    args = p.parse_args()
    cfg = TrainConfig(batch_size=args.batch_size, threads=args.threads, compile=args.compile, progress=False)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    sampler = _seed_everything(cfg.seed)
    raw_model, tokenizer, _ = _model_and_tokenizer(cfg, None, None)
    optimizer = make_optimizer(raw_model, cfg.learning_rate, cfg.weight_decay, (cfg.beta1, cfg.beta2), "cpu")
    model = torch.compile(raw_model) if cfg.compile == "true" else raw_model
    train_src, val_src = _batches(cfg, tokenizer, "train"), _batches(cfg, tokenizer, "val")
    pending: list = []
    model.train()
    for step in range(WARMUP):
        one_step(model, optimizer, train_src, sampler, cfg, pending, step)

    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for step in range(args.steps):
            one_step(model, optimizer, train_src, sampler, cfg, pending, step)
    wall_ms = (time.perf_counter() - t0) * 1000 / args.steps
    t0 = time.perf_counter()
    estimate_loss(raw_model, {"train": train_src, "val": val_src}, cfg, "cpu", torch.autocast("cpu", enabled=False))
    eval_ms = (time.perf_counter() - t0) * 1000

    totals = {e.key: e.cpu_time_total / 1000 / args.steps for e in prof.key_averages() if e.key in PHASES}
    per_iter = {phase: round(totals.get(phase, 0.0), 3) for phase in PHASES}
    per_iter["evaluation (amortised)"] = round(eval_ms * (cfg.max_iters // cfg.eval_interval + 1) / cfg.max_iters, 3)
    ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    top_ops = [{"op": e.key, "self_ms_per_iter": round(e.self_cpu_time_total / 1000 / args.steps, 3),
                "calls_per_iter": round(e.count / args.steps, 1)} for e in ops if e.key not in PHASES][:15]
    aten_calls = sum(e.count for e in prof.key_averages() if e.key.startswith("aten::")) / args.steps
    print(f"{'phase':28}{'ms/iter':>10}")
    for phase, ms in per_iter.items():
        print(f"{phase:28}{ms:10.3f}")
    print(f"{'wall time per step (profiled)':28}{wall_ms:10.3f}")
    print(f"aten calls per step: {aten_calls:.0f}; one evaluation: {eval_ms:.0f} ms")
    for op in top_ops:
        print(f"  {op['op'][:60]:60}{op['self_ms_per_iter']:8.3f} ms{op['calls_per_iter']:8.1f} calls")
    results = {"settings": {"steps": args.steps, "threads": torch.get_num_threads(), "batch_size": cfg.batch_size,
                            "block_size": cfg.block_size, "compile": cfg.compile, "eval_interval": cfg.eval_interval,
                            "eval_iters": cfg.eval_iters, "log_interval": cfg.log_interval},
               "phase_ms_per_iter": per_iter, "wall_ms_per_step_profiled": round(wall_ms, 3),
               "one_evaluation_ms": round(eval_ms, 1), "aten_calls_per_step": round(aten_calls, 1),
               "top_ops_self_time": top_ops}
    if args.nanogpt_dir:
        results["aten_calls_per_forward_backward"] = compare_op_counts(args.nanogpt_dir, raw_model, cfg, train_src,
                                                                       sampler)
        print(f"aten calls per forward+backward: {results['aten_calls_per_forward_backward']}")
    print(f"saved {record.save('profile_homework', results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
