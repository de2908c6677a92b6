"""Ablation of the modern recipe on the CPU homework: each change alone on top of homework.toml, and all together.

    python benchmarks/recipe_ablation.py [--iters 300] [--seeds 1337 1338 1339] [--workers 2] [--plot PATH]

Every variant trains the homework's pretraining run (gptref/train/configs/homework.toml: 4 layers, 128 wide,
batch 24 x 64 characters of Shakespeare) for the same number of iterations (its schedule fitted to them: warmup
a tenth of the run, decay to its end), on one
CPU thread per run, once per seed; a seed fixes the initial weights, the batches and the fixed val batches, the
same for every variant, so differences are paired. Measured per run: val cross-entropy every --iters/2
iterations (eval_iters fixed batches), wall time of the whole run and iterations per second. Runs are interleaved
(seed by seed) so that the machine's load falls on every variant alike. Writes benchmarks/results/
recipe_ablation-<time>.json (with date, commit, machine, load average, command) and the plot (mean +- std).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gptref.bench import record  # noqa: E402

BASE = ROOT / "gptref" / "train" / "configs" / "homework.toml"
CHANGES = {  # each change of the modern recipe, as TrainConfig options on top of homework.toml
    "muon": dict(optimizer="muon", muon_lr=0.02),
    "qk_norm": dict(qk_norm=True),
    "relu2": dict(activation="relu2"),
    "zero_init_proj": dict(zero_init_proj=True),
    "untied_head": dict(tie_head=False),
    "wsd": dict(schedule="wsd", cooldown_frac=0.3),
}


def variants() -> dict[str, dict]:
    """baseline (homework.toml), each change alone, and all of them."""
    every = {k: v for change in CHANGES.values() for k, v in change.items()}
    return {"baseline": {}, **{f"+{name}": change for name, change in CHANGES.items()}, "all": every}


def train_one(name: str, options: dict, seed: int, iters: int, eval_iters: int) -> dict:
    """One run in this (worker) process; its val curve, wall time and speed."""
    from gptref.train.config import load_config
    from gptref.train.loop import train

    cfg = load_config(BASE, **options, seed=seed, max_iters=iters, eval_interval=max(1, iters // 2),
                      warmup_iters=max(1, iters // 10),
                      eval_iters=eval_iters, threads=1, save_checkpoints=False, progress=False,
                      out_dir=f"/tmp/recipe-ablation-{name}-{seed}", tokenizer="char")
    t0 = time.perf_counter()
    result = train(cfg, log=lambda *a: None)
    wall = time.perf_counter() - t0
    curve = [(step, val) for step, _, val in result.history["eval"]]
    return {"variant": name, "seed": seed, "options": options, "curve": curve, "final_val": curve[-1][1],
            "wall_s": wall, "iters_per_s": result.iters_per_s}


def summarise(runs: list[dict]) -> dict[str, dict]:
    """Per variant: mean and std of final val loss and wall time, and the mean paired change against baseline."""
    base = {r["seed"]: r["final_val"] for r in runs if r["variant"] == "baseline"}
    out = {}
    for name in dict.fromkeys(r["variant"] for r in runs):
        mine = [r for r in runs if r["variant"] == name]
        vals, walls = [r["final_val"] for r in mine], [r["wall_s"] for r in mine]
        deltas = [r["final_val"] - base[r["seed"]] for r in mine if r["seed"] in base]
        out[name] = {"val_mean": statistics.fmean(vals), "val_std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                     "wall_mean": statistics.fmean(walls), "wall_std": statistics.stdev(walls) if len(walls) > 1
                     else 0.0, "iters_per_s_mean": statistics.fmean(r["iters_per_s"] for r in mine),
                     "delta_vs_baseline_mean": statistics.fmean(deltas) if deltas else None,
                     "delta_vs_baseline_std": statistics.stdev(deltas) if len(deltas) > 1 else 0.0}
    return out


def plot(summary: dict[str, dict], iters: int, path: Path) -> None:
    """Bars: mean final val loss +- std per variant, with the mean wall time written under each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary)
    means = [summary[n]["val_mean"] for n in names]
    stds = [summary[n]["val_std"] for n in names]
    fig, ax = plt.subplots(figsize=(8, 4))
    colors = ["grey"] + ["tab:blue"] * (len(names) - 2) + ["tab:green"]
    ax.bar(range(len(names)), means, yerr=stds, capsize=4, color=colors)
    ax.axhline(summary["baseline"]["val_mean"], color="grey", ls="--", lw=1)
    ax.set_xticks(range(len(names)),
                  [f"{n}\n{summary[n]['wall_mean']:.0f} s" for n in names], fontsize=8)
    low = min(m - s for m, s in zip(means, stds))
    high = max(m + s for m, s in zip(means, stds))
    ax.set_ylim(low - 0.05, high + 0.05)
    ax.set_ylabel("val loss after the run (nats/char)")
    ax.set_title(f"CPU homework, {iters} iterations, mean +- std over seeds (wall time under each)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=150)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1337, 1338, 1339])
    ap.add_argument("--eval-iters", type=int, default=20, help="fixed val batches of 24 rows at each evaluation")
    ap.add_argument("--workers", type=int, default=2, help="runs at a time (one CPU thread each)")
    ap.add_argument("--partial", type=Path, default=Path("/tmp/recipe_ablation-partial.json"),
                    help="the runs finished so far, rewritten after each")
    ap.add_argument("--plot", type=Path, default=ROOT / "docs" / "img" / "recipe_ablation.png")
    args = ap.parse_args(argv)
    jobs = [(name, options, seed) for seed in args.seeds for name, options in variants().items()]
    print(f"[ablation] {len(jobs)} runs of {args.iters} iterations, {args.workers} at a time", flush=True)
    runs = []
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(train_one, name, options, seed, args.iters, args.eval_iters)
                   for name, options, seed in jobs]
        for future in as_completed(futures):
            run = future.result()
            runs.append(run)
            args.partial.write_text(json.dumps(runs))  # an interrupted run keeps what it finished
            print(f"[ablation] {run['variant']:16s} seed {run['seed']}: val {run['final_val']:.4f}, "
                  f"{run['wall_s']:.0f} s, {run['iters_per_s']:.2f} it/s", flush=True)
    order = {(name, seed): k for k, (name, _, seed) in enumerate(jobs)}
    runs.sort(key=lambda run: order[run["variant"], run["seed"]])
    summary = summarise(runs)
    for name, s in summary.items():
        print(f"[ablation] {name:16s} val {s['val_mean']:.4f} +- {s['val_std']:.4f}  "
              f"(vs baseline {s['delta_vs_baseline_mean']:+.4f} +- {s['delta_vs_baseline_std']:.4f})  "
              f"wall {s['wall_mean']:.0f} +- {s['wall_std']:.0f} s")
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    plot(summary, args.iters, args.plot)
    kept = record.save("recipe_ablation", {"iters": args.iters, "seeds": args.seeds, "eval_iters": args.eval_iters,
                                           "workers": args.workers, "threads_per_run": 1, "base_config":
                                           str(BASE.relative_to(ROOT)), "summary": summary, "runs": runs,
                                           "plot": str(args.plot.relative_to(ROOT))
                                           if args.plot.is_relative_to(ROOT) else str(args.plot)})
    print(f"[ablation] wrote {kept} and {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
