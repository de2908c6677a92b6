"""One setting of the modern recipe swept over values, judged as benchmarks/nanogpt_compare.py judges the recipe.

    python benchmarks/recipe_sweep.py --option muon_lr --values 0.0025 0.005 0.01 0.02 [--iters 320]
                                      [--seeds 1337 1338 1339] [--workers 2] [--set warmup_iters=30 ...]

Each run is the modern side of nanogpt_compare.py (its cpu preset's settings, gptref.commands.homework's
recipe_options("modern"), batch 24, evaluated only at the start and the end) for --iters iterations, with --set's
options and then the swept option on top, in its own `python -m gptref train` process on one CPU thread. The
measure is the compare's: the final model's loss on its common val set (20 batches of 64 fixed windows), the same
windows for every run; each value runs under every seed, so the values are compared seed for seed. Speed is not
measured here (runs share the machine). Writes benchmarks/results/recipe_sweep-<time>.json (date, commit,
machine, command) and a plot of mean +- std against the value (--plot).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import nanogpt_compare as compare  # noqa: E402  (its settings, commands and common val set)
from gptref.bench import record  # noqa: E402

EVAL_BATCHES = 20  # what the recorded nanogpt_compare runs used (--eval-batches 20)


def parse_value(text: str):
    """'0.005' -> 0.005, '30' -> 30, 'true' -> True; anything else stays a string (TrainConfig checks it)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_sets(pairs: list[str]) -> dict:
    options = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"error: --set takes NAME=VALUE, got {pair!r}")
        options[name] = parse_value(value)
    return options


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--option", required=True, help="the TrainConfig option to sweep (e.g. muon_lr)")
    ap.add_argument("--values", nargs="+", required=True)
    ap.add_argument("--iters", type=int, default=320)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1337, 1338, 1339])
    ap.add_argument("--set", dest="sets", nargs="*", default=[], help="NAME=VALUE options on top of the recipe")
    ap.add_argument("--workers", type=int, default=2, help="runs at a time (one CPU thread each)")
    ap.add_argument("--plot", type=Path, default=None, help="default docs/img/recipe_sweep-<option>.png")
    args = ap.parse_args(argv)

    from gptref.commands.homework import recipe_options
    from gptref.train.config import TrainConfig

    known = TrainConfig.__dataclass_fields__
    sets = parse_sets(args.sets)
    unknown = [name for name in [args.option, *sets] if name not in known]
    if unknown:
        print(f"error: not TrainConfig options: {', '.join(unknown)}", file=sys.stderr)
        return 2
    if "seed" in [args.option, *sets]:
        print("error: the seeds come from --seeds, not --option or --set", file=sys.stderr)
        return 2
    values = [parse_value(v) for v in args.values]
    settings = dict(compare.PRESETS["cpu"], max_iters=args.iters, eval_interval=args.iters, batch_size=24)
    recipe = dict(recipe_options("modern"), **sets)
    work = Path(tempfile.mkdtemp(prefix="recipe-sweep-"))
    folder, _ = compare.export_dataset(work)
    val = np.memmap(folder / "val.bin", dtype=np.uint16, mode="r")

    def one(job: tuple) -> dict:
        value, seed = job
        options = dict(recipe, **{args.option: value})
        mine = {k: options.pop(k) for k in list(options) if k in settings}  # e.g. warmup_iters, learning_rate
        run_dir = work / f"{args.option}-{value}-{seed}"
        cmd = compare.gptref_command(dict(settings, **mine), run_dir, options, seed)
        done = subprocess.run(cmd, cwd=ROOT, env=compare.side_environment(1), capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"error: {' '.join(cmd[:4])} ... failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        model, steps, history = compare.load_gptref_model(run_dir / "ckpt.pt")
        common = compare.common_val_loss(model, val, settings["block_size"], "cpu", EVAL_BATCHES)
        print(f"[sweep] {args.option}={value} seed {seed}: common val {common:.4f} after {steps} iterations",
              flush=True)
        return {"value": value, "seed": seed, "common_val": common, "printed_val": history["eval"][-1][2]}

    jobs = [(value, seed) for seed in args.seeds for value in values]
    try:
        with ThreadPoolExecutor(args.workers) as pool:  # each job is its own process; threads only wait on them
            runs = list(pool.map(one, jobs))
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the runs' checkpoints (about 10 MB each); only losses are kept
    summary = {}
    for value in values:
        losses = [run["common_val"] for run in runs if run["value"] == value]
        summary[str(value)] = {"mean": statistics.fmean(losses),
                               "std": statistics.stdev(losses) if len(losses) > 1 else 0.0, "runs": losses}
        print(f"[sweep] {args.option}={value}: {summary[str(value)]['mean']:.4f} +- {summary[str(value)]['std']:.4f}")
    plot_path = args.plot or ROOT / "docs" / "img" / f"recipe_sweep-{args.option}.png"
    plot(summary, args.option, args.iters, len(args.seeds), plot_path)
    kept = record.save("recipe_sweep", {"option": args.option, "values": values, "iters": args.iters,
                                        "seeds": args.seeds, "sets": sets, "settings": settings,
                                        "recipe": recipe, "eval_batches": EVAL_BATCHES, "summary": summary,
                                        "runs": runs, "plot": str(plot_path.relative_to(ROOT))
                                        if plot_path.is_relative_to(ROOT) else str(plot_path)})
    print(f"[sweep] wrote {kept} and {plot_path}")
    return 0


def plot(summary: dict, option: str, iters: int, seeds: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(summary)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.errorbar(range(len(labels)), [summary[v]["mean"] for v in labels], yerr=[summary[v]["std"] for v in labels],
                marker="o", capsize=4)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel(option)
    ax.set_ylabel("common val loss (nats/char)")
    ax.set_title(f"modern recipe, {iters} iterations, mean +- std over {seeds} seeds")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
