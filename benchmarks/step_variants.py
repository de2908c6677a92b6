"""Time one training step of the nanogpt_compare cpu preset under each CPU option: threads, eager or compiled, bf16.

    python benchmarks/step_variants.py [--steps 60] [--repeats 3] [--variants eager-1,eager-2,compile-1,compile-2]

A variant is MODE-THREADS; MODE is eager, compile, maxautotune (torch.compile's max-autotune mode) or bf16 (eager
under bfloat16 autocast: other numerics, so not the default recipe's losses).

Each variant runs in a fresh process (thread count and inductor's kernels are fixed per process), the variants
alternate, repeat after repeat, and medians are reported with the load average around each run. A child builds
the model, optimizer and batches with gptref.train.loop's own functions and runs `_train_step`: warm-up steps
(their time, compile included, is reported as `startup_s`), then `--steps` timed steps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

from gptref.bench import record

WARMUP = 5  # steps before timing, as the loop's WARMUP_STEPS
MODES = {"eager": "float32, eager", "compile": "float32, torch.compile (default mode)",
         "maxautotune": "float32, torch.compile(mode='max-autotune')", "bf16": "eager under bfloat16 autocast"}


def child(variant: str, steps: int) -> dict:
    """Run one variant here; returns startup seconds and steady ms per step."""
    from gptref.train import ddp
    from gptref.train.config import TrainConfig
    from gptref.train.loop import _autocast, _batches, _model_and_tokenizer, _seed_everything, _train_step, _wrap
    from gptref.train.optim import make_optimizer

    mode, threads = variant.split("-")
    if mode not in MODES:
        raise SystemExit(f"unknown variant {variant!r}: the part before '-' is one of {sorted(MODES)}")
    cfg = TrainConfig(threads=int(threads), compile="true" if mode == "compile" else "false",
                      dtype="bfloat16" if mode == "bf16" else "float32", progress=False)
    torch.set_num_threads(cfg.threads)
    dist = ddp.setup("cpu")
    sampler = _seed_everything(cfg.seed)
    raw_model, tokenizer, _ = _model_and_tokenizer(cfg, None, None)
    optimizer = make_optimizer(raw_model, cfg.learning_rate, cfg.weight_decay, (cfg.beta1, cfg.beta2), "cpu")
    model = _wrap(raw_model, cfg, dist, "cpu")
    if mode == "maxautotune":  # inductor tries its C++ GEMM templates against the library's kernels per shape
        model = torch.compile(raw_model, mode="max-autotune")
    source = _batches(cfg, tokenizer, "train")
    autocast = _autocast(cfg, "cpu")
    t0 = time.perf_counter()
    for _ in range(WARMUP):
        _train_step(model, optimizer, source.sample(sampler, cfg.batch_size), cfg, dist, "cpu", autocast)
    startup = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        _train_step(model, optimizer, source.sample(sampler, cfg.batch_size), cfg, dist, "cpu", autocast)
    return {"startup_s": round(startup, 2), "ms_per_step": round((time.perf_counter() - t0) * 1000 / steps, 2)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--variants", default="eager-1,eager-2,compile-1,compile-2")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.steps)))
        return 0
    variants = args.variants.split(",")
    wrong = [v for v in variants if v.split("-")[0] not in MODES or not v.partition("-")[2].isdigit()]
    if wrong:
        p.error(f"variants must be MODE-THREADS with MODE one of {sorted(MODES)}; got {wrong}")
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for r in range(args.repeats):
        for variant in variants:
            load_before = os.getloadavg()[0]
            out = subprocess.run([sys.executable, __file__, "--child", variant, "--steps", str(args.steps)],
                                 capture_output=True, text=True, check=True).stdout
            run = json.loads(out.strip().splitlines()[-1])
            run["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
            runs[variant].append(run)
            print(f"repeat {r + 1}: {variant:10} {run}", flush=True)
    medians = {v: {k: statistics.median(run[k] for run in rs) for k in ("startup_s", "ms_per_step")}
               for v, rs in runs.items()}
    for variant, med in medians.items():
        print(f"{variant:10} median {med['ms_per_step']:8.2f} ms/step, startup {med['startup_s']:6.1f} s")
    results = {"settings": {"steps": args.steps, "warmup": WARMUP, "preset": "nanogpt_compare cpu (TrainConfig "
                            "defaults: 4/4/128, block 64, batch 12)", "modes": MODES}, "runs": runs, "median": medians}
    print(f"saved {record.save('step_variants', results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
