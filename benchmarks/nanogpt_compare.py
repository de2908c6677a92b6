"""gptref's training loop against nanoGPT's own train.py: same data, model shape, settings and machine, one run.

    python benchmarks/nanogpt_compare.py --nanogpt-dir PATH/TO/nanoGPT [--preset cpu|gpu] [--repeats N]
                                         [--modern-iters N] [--modern-batch-size B]

nanoGPT is not vendored here: clone it yourself (`git clone https://github.com/karpathy/nanoGPT`) and pass the
folder holding its train.py, model.py and configurator.py. Nothing in that folder is changed.

What runs, per repeat (alternating, each in a fresh process, nothing else of ours in it):
  1. nanoGPT: `python <nanoGPT>/train.py --key=value ...` in a work folder whose data/gptref_shakespeare_char/ holds
     our character-level Shakespeare split in nanoGPT's format (train.bin, val.bin as uint16, meta.pkl);
  2. gptref: `python -m gptref train --key value ...` with the same settings on the same split;
  3. gptref modern (with --modern-iters N > 0): the same, with the modern recipe's options
     (gptref.commands.homework.recipe_options("modern"): Muon, QK-norm, ReLU^2, ...) for N iterations,
     evaluated every --modern-eval-interval, at the preset's batch size or --modern-batch-size (the recipe's
     homework_modern.toml uses 24).
Presets (the issue's): cpu = nanoGPT's README CPU run (4 layers, 4 heads, 128 wide, block 64, batch 12,
2000 iterations, no dropout, eval_iters 20, no compile); gpu = config/train_shakespeare_char.py (6/6/384, block 256,
batch 64, 5000 iterations, dropout 0.2, bf16 autocast, torch.compile).

Measured: ms per iteration in steady state (mean over the logged iterations after the first five, leaving out those
that ran an evaluation), wall time of each process, each side's own printed val loss at the last iteration, and both
final models' val loss on one common set of fixed val windows (the fair comparison: the printed ones use 20 random
batches and differ by noise). Time to loss: each process's output is read as it comes and time-stamped, so every
printed "step N: ... val loss X" line has the wall time (from the process's launch) at which it appeared; a side's
time to loss is that of its first line with val loss <= nanoGPT's final printed val loss (the median over repeats;
with --vary-seed, that of nanoGPT's run with the same seed), or none. Targets (issue 20): our ms/iter <= 0.8x
nanoGPT's and our common val loss <= nanoGPT's + 0.02; the modern recipe's time to loss <= 0.5x nanoGPT's.
`--threads N` sets OMP_NUM_THREADS=N for both sides (0: torch's default, all cores); the load average before and
after each run is recorded with it, since a busy machine slows both. `--vary-seed` gives repeat r the seed 1337 + r
on both sides (nanoGPT's train.py fixes 1337, so its run goes through a launcher that moves that seed and changes
nothing else), so the repeats also measure each side's seed spread: the common val loss is then reported as mean +-
std per side. Results: results.json, compare.png (val loss curves) and the logs in --out.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pickle
import re
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from gptref.bench import record

DATASET = "gptref_shakespeare_char"
COMMON = dict(learning_rate=1e-3, min_lr=1e-4, beta2=0.99, warmup_iters=100, weight_decay=0.1, grad_clip=1.0,
              eval_interval=250)
PRESETS = {
    "cpu": dict(COMMON, device="cpu", compile=False, n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12,
                max_iters=2000, dropout=0.0, eval_iters=20),
    "gpu": dict(COMMON, device="cuda", compile=True, n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64,
                max_iters=5000, dropout=0.2, eval_iters=200),
}
SPEED_TARGET = 0.8  # issue 20: at most this fraction of nanoGPT's time per iteration
QUALITY_MARGIN = 0.02  # nats of common val loss above nanoGPT's still counted as the same quality
SPEED_WARMUP = 5  # iterations left out of ms/iter on both sides (torch.compile, allocator warm-up)
ITER_LINE = re.compile(r"^iter (\d+): loss ([\d.naninf]+), time ([\d.]+)ms", re.M)
STEP_LINE = re.compile(r"^step (\d+): train loss ([\d.]+), val loss ([\d.]+)", re.M)
OURS_FINAL = re.compile(r"final train loss ([\d.]+), val loss ([\d.]+), ([\d.]+) it/s")


def export_dataset(work: Path) -> tuple[Path, int]:
    """Write our character-level Shakespeare split as nanoGPT's data/<name>/{train,val}.bin + meta.pkl."""
    from gptref.tokenizers import get_tokenizer
    from gptref.train.prepare import token_file

    tok = get_tokenizer("char")
    folder = work / "data" / DATASET
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        np.asarray(token_file("shakespeare", split, tok), dtype=np.uint16).tofile(folder / f"{split}.bin")
    meta = {"vocab_size": len(tok), "itos": dict(enumerate(tok.chars)), "stoi": dict(tok.stoi)}
    with open(folder / "meta.pkl", "wb") as f:
        pickle.dump(meta, f)
    return folder, len(tok)


SEED = 1337  # nanoGPT's train.py: torch.manual_seed(1337 + seed_offset), and gptref's TrainConfig default
# Runs nanoGPT's train.py as `python train.py ...` would, with the seed it fixes moved by argv[1]; train.py is read
# from its folder unchanged (nanoGPT has no seed option: its seed_offset is the DDP rank)
SEEDED_LAUNCHER = """import runpy, sys
import torch
offset, train_py = int(sys.argv[1]), sys.argv[2]
manual_seed = torch.manual_seed
torch.manual_seed = lambda seed: manual_seed(seed + offset)
sys.argv = sys.argv[2:]
sys.path.insert(0, train_py.rsplit("/", 1)[0])  # where `from model import GPT` finds nanoGPT's model.py
runpy.run_path(train_py, run_name="__main__")
"""


def nanogpt_command(nanogpt: Path, settings: dict, out_dir: Path, seed: int = SEED) -> list[str]:
    """nanoGPT's train.py with the preset's settings; seed != 1337 goes through SEEDED_LAUNCHER."""
    opts = dict(settings, dataset=DATASET, out_dir=str(out_dir), gradient_accumulation_steps=1,
                lr_decay_iters=settings["max_iters"], bias=False, beta1=0.9, decay_lr=True,
                always_save_checkpoint=True, log_interval=1 if settings["device"] == "cpu" else 10,
                wandb_log=False, init_from="scratch")
    args = [str(nanogpt / "train.py"), *(f"--{k}={v}" for k, v in opts.items())]
    if seed == SEED:
        return [sys.executable, *args]
    return [sys.executable, "-c", SEEDED_LAUNCHER, str(seed - SEED), *args]


def gptref_command(settings: dict, out_dir: Path, extra: dict | None = None, seed: int = SEED) -> list[str]:
    opts = dict(settings, **(extra or {}), lr_decay_iters=settings["max_iters"], bias=False, beta1=0.9,
                out_dir=str(out_dir), overwrite=True, progress=False, log_interval=10, dataset="shakespeare",
                tokenizer="char", seed=seed,
                compile="true" if settings["compile"] else "false")
    return [sys.executable, "-m", "gptref", "train", *(f"--{k}={v}" for k, v in opts.items())]


def side_environment(threads: int) -> dict[str, str]:
    """The environment of both sides' processes: ours, with OMP_NUM_THREADS=threads when threads > 0."""
    env = dict(os.environ)
    if threads > 0:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def run_logged(cmd: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None
               ) -> tuple[str, float, list[tuple[float, str]]]:
    """Run cmd, tee its output to log; return (output, wall seconds, (seconds since launch, line) per line).
    Exit with the log's tail if it fails."""
    t0 = time.perf_counter()
    env = dict(env or os.environ, PYTHONUNBUFFERED="1")  # lines arrive when printed, so their time stamps are right
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    # readline, not `for line in proc.stdout`: iteration reads ahead in chunks and would stamp lines late
    stamped = [(time.perf_counter() - t0, line) for line in iter(proc.stdout.readline, "")]
    proc.wait()
    wall = time.perf_counter() - t0
    output = "".join(line for _, line in stamped)
    log.write_text(output)
    if proc.returncode != 0:
        sys.exit(f"error: {' '.join(cmd[:3])} ... failed (exit {proc.returncode}); see {log}\n" + output[-3000:])
    return output, wall, stamped


def timed_evals(stamped: list[tuple[float, str]]) -> list[tuple[float, int, float]]:
    """(seconds since launch, step, printed val loss) of every "step N: train loss X, val loss Y" line."""
    out = []
    for seconds, line in stamped:
        match = STEP_LINE.match(line)
        if match:
            out.append((seconds, int(match.group(1)), float(match.group(3))))
    return out


def time_to_loss(evals: list[tuple[float, int, float]], target: float) -> float | None:
    """Wall time of the first evaluation whose val loss is <= target; None if none is."""
    return next((seconds for seconds, _, val in evals if val <= target), None)


def race_targets(nanogpt_finals: list[float], vary_seed: bool) -> list[float]:
    """The loss each repeat races to: nanoGPT's final printed val loss, the median over repeats when every repeat
    has the same seed, and the one of nanoGPT's run with that repeat's seed under --vary-seed."""
    if vary_seed:
        return list(nanogpt_finals)
    return [statistics.median(nanogpt_finals)] * len(nanogpt_finals)


def nanogpt_ms_per_iter(output: str, eval_interval: int) -> float:
    times = [(int(i), float(ms)) for i, _, ms in ITER_LINE.findall(output)]
    steady = [ms for i, ms in times if i >= SPEED_WARMUP and i % eval_interval != 0]
    if not steady:
        sys.exit("error: no 'iter N: loss X, time Yms' lines in nanoGPT's output; is --nanogpt-dir nanoGPT?")
    return statistics.fmean(steady)


def load_nanogpt_model(nanogpt: Path, ckpt: Path):
    spec = importlib.util.spec_from_file_location("nanogpt_model", nanogpt / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)  # written by the run we just made
    model = module.GPT(module.GPTConfig(**state["model_args"]))
    model.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in state["model"].items()})
    return model, state["iter_num"]


def load_gptref_model(ckpt: Path):
    from gptref.gpt import GPT, GPTConfig
    from gptref.train.checkpoint import load_checkpoint

    state = load_checkpoint(ckpt)
    model = GPT(GPTConfig(**state["model_args"]))
    model.load_state_dict(state["model"])
    return model, state["iter"], state["history"]


@torch.no_grad()
def common_val_loss(model, val: np.ndarray, block_size: int, device: str, batches: int, rows: int = 64) -> float:
    """Mean next-token loss over the same fixed val windows for every model (seeded, independent of training)."""
    model.to(device).eval()
    rng = np.random.default_rng(0)
    offsets = np.arange(block_size + 1)
    losses = []
    for _ in range(batches):
        ix = rng.integers(0, len(val) - block_size - 1, size=rows)
        xy = torch.from_numpy(val[ix[:, None] + offsets].astype(np.int64)).to(device)  # (rows, T+1)
        _, loss = model(xy[:, :-1].contiguous(), xy[:, 1:].contiguous())
        losses.append(loss.float().item())
    model.to("cpu")
    return float(np.mean(losses))


def plot(curves: dict[str, list[tuple[int, float]]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, points in curves.items():
        ax.plot([s for s, _ in points], [v for _, v in points], marker="o", ms=3, label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel("val loss (nats/char)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nanogpt-dir", type=Path, required=True, help="a nanoGPT checkout (holds train.py, model.py)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    p.add_argument("--iters", type=int, default=None, help="override the preset's max_iters (a quick look)")
    p.add_argument("--repeats", type=int, default=1, help="alternating runs of each; medians are reported")
    p.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS of both sides (0: torch's default)")
    p.add_argument("--eval-batches", type=int, default=100, help="64-row batches in the common val set")
    p.add_argument("--out", type=Path, default=None, help="results folder (default runs/nanogpt-compare-<time>)")
    p.add_argument("--modern-iters", type=int, default=0, help="also run gptref's modern recipe this many iterations")
    p.add_argument("--modern-eval-interval", type=int, default=100)
    p.add_argument("--modern-batch-size", type=int, default=0,
                   help="the modern recipe's batch size (0: the preset's); its time to loss counts whatever it costs")
    p.add_argument("--skip-gptref", action="store_true", help="only nanoGPT and gptref modern (needs --modern-iters)")
    p.add_argument("--vary-seed", action="store_true",
                   help="repeat r runs seed 1337 + r on every side (the seed spread); otherwise every repeat is 1337")
    args = p.parse_args()

    nanogpt = args.nanogpt_dir.resolve()
    missing = [f for f in ("train.py", "model.py", "configurator.py") if not (nanogpt / f).exists()]
    if missing:
        print(f"error: {nanogpt} lacks {', '.join(missing)}; pass a nanoGPT checkout "
              "(git clone https://github.com/karpathy/nanoGPT) with --nanogpt-dir", file=sys.stderr)
        return 2
    settings = dict(PRESETS[args.preset])
    if args.iters:
        if args.iters % settings["eval_interval"]:
            print(f"error: --iters must be a multiple of eval_interval={settings['eval_interval']} (nanoGPT only "
                  "evaluates and saves there)", file=sys.stderr)
            return 2
        settings["max_iters"] = args.iters
    if settings["device"] == "cuda" and not torch.cuda.is_available():
        print("error: the gpu preset needs CUDA; this machine has none", file=sys.stderr)
        return 2
    out = (args.out or Path(f"runs/nanogpt-compare-{datetime.now():%Y%m%d-%H%M%S}")).resolve()
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(nanogpt / "configurator.py", work / "configurator.py")  # train.py exec's it from the cwd
    folder, vocab = export_dataset(work)
    val = np.memmap(folder / "val.bin", dtype=np.uint16, mode="r")
    print(f"[compare] preset {args.preset}: {settings}")
    print(f"[compare] data: our Shakespeare split, vocab {vocab}, train {os.path.getsize(folder / 'train.bin') // 2:,} "
          f"tokens, val {len(val):,} tokens -> {folder}")

    if args.skip_gptref and not args.modern_iters:
        print("error: --skip-gptref leaves nanoGPT alone: give --modern-iters too", file=sys.stderr)
        return 2
    sides = ["nanoGPT"] + ([] if args.skip_gptref else ["gptref"]) + (["gptref modern"] if args.modern_iters else [])
    runs: dict[str, list[dict]] = {name: [] for name in sides}
    modern_settings = dict(settings, max_iters=args.modern_iters, eval_interval=args.modern_eval_interval,
                           batch_size=args.modern_batch_size or settings["batch_size"])
    if args.modern_iters:
        from gptref.commands.homework import recipe_options

        print(f"[compare] gptref modern: {args.modern_iters} iterations with {recipe_options('modern')}")
    curves = {}
    for r in range(args.repeats):
        seed = SEED + r if args.vary_seed else SEED
        for name in sides:
            run_dir = out / f"{name.replace(' ', '-')}-{r}"
            if name == "nanoGPT":
                cmd = nanogpt_command(nanogpt, settings, run_dir, seed)
            elif name == "gptref":
                cmd = gptref_command(settings, run_dir, seed=seed)
            else:
                cmd = gptref_command(modern_settings, run_dir, recipe_options("modern"), seed)
            print(f"[compare] repeat {r + 1}/{args.repeats}: {name}, seed {seed} ...", flush=True)
            load_before = os.getloadavg()[0]
            text, wall, stamped = run_logged(cmd, work, out / f"{name.replace(' ', '-')}-{r}.log",
                                             side_environment(args.threads))
            load = [round(load_before, 2), round(os.getloadavg()[0], 2)]
            if name == "nanoGPT":
                model, steps = load_nanogpt_model(nanogpt, run_dir / "ckpt.pt")
                ms = nanogpt_ms_per_iter(text, settings["eval_interval"])
                evals = [(int(s), float(v)) for s, _, v in STEP_LINE.findall(text)]
            else:
                model, steps, history = load_gptref_model(run_dir / "ckpt.pt")
                final = OURS_FINAL.search(text)
                ms = 1000 / float(final.group(3))
                evals = [(int(s), float(v)) for s, _, v in history["eval"]]
            common = common_val_loss(model, val, settings["block_size"], settings["device"], args.eval_batches)
            runs[name].append({"seed": seed, "ms_per_iter": ms, "wall_s": wall, "updates": steps,
                               "printed_val": evals[-1][1], "common_val": common, "timed_evals": timed_evals(stamped),
                               "load_average_1min_before_after": load})
            curves.setdefault(name, evals)
            print(f"[compare]   {ms:.2f} ms/iter, wall {wall:.0f} s, printed val {evals[-1][1]:.4f} "
                  f"(iter {evals[-1][0]}), common val {common:.4f} after {steps} updates, load {load}", flush=True)

    numeric = ("ms_per_iter", "wall_s", "updates", "printed_val", "common_val")
    med = {name: {k: statistics.median(run[k] for run in rs) for k in numeric} for name, rs in runs.items()}
    target = med["nanoGPT"]["printed_val"]  # the loss every side races to: nanoGPT's own final printed val loss
    targets = race_targets([run["printed_val"] for run in runs["nanoGPT"]], args.vary_seed)
    for name, rs in runs.items():
        for run, goal in zip(rs, targets):
            run["time_to_loss_s"] = time_to_loss(run["timed_evals"], goal)
        reached = [run["time_to_loss_s"] for run in rs if run["time_to_loss_s"] is not None]
        med[name]["time_to_loss_s"] = statistics.median(reached) if len(reached) == len(rs) else None
    theirs = med["nanoGPT"]
    ours = med.get("gptref")
    speed_ok = ours is None or ours["ms_per_iter"] <= SPEED_TARGET * theirs["ms_per_iter"]
    loss_ok = ours is None or ours["common_val"] <= theirs["common_val"] + QUALITY_MARGIN
    pair_ratios = [round(a["ms_per_iter"] / b["ms_per_iter"], 3)
                   for a, b in zip(runs.get("gptref", []), runs["nanoGPT"])]
    batch_of = {name: (modern_settings if name == "gptref modern" else settings)["batch_size"] for name in med}
    print(f"\n{'':14}{'ms/iter':>10}{'tokens/s':>12}{'wall s':>9}{'printed val':>13}{'common val':>12}"
          f"{'s to ' + ('its seed' if args.vary_seed else format(target, '.4f')):>14}")
    for name, m in med.items():
        reach = "not reached" if m["time_to_loss_s"] is None else f"{m['time_to_loss_s']:.0f}"
        tokens_per_iter = batch_of[name] * settings["block_size"]
        print(f"{name:14}{m['ms_per_iter']:10.2f}{tokens_per_iter / m['ms_per_iter'] * 1000:12,.0f}"
              f"{m['wall_s']:9.0f}{m['printed_val']:13.4f}{m['common_val']:12.4f}{reach:>14}")
    modern_ratio = None
    if "gptref modern" in med and med["gptref modern"]["time_to_loss_s"] and theirs["time_to_loss_s"]:
        modern_ratio = med["gptref modern"]["time_to_loss_s"] / theirs["time_to_loss_s"]
        print(f"time to nanoGPT's final val loss: gptref modern / nanoGPT = {modern_ratio:.3f}x "
              f"({'PASS' if modern_ratio <= 0.5 else 'FAIL'}: <= 0.5)")
    spread = {name: {"seeds": [run["seed"] for run in rs], "common_val": [run["common_val"] for run in rs],
                     "mean": statistics.fmean(run["common_val"] for run in rs),
                     "std": statistics.stdev(run["common_val"] for run in rs) if len(rs) > 1 else 0.0}
              for name, rs in runs.items()} if args.vary_seed else None
    modern_common = None
    if spread:
        for name, sp in spread.items():
            print(f"seed spread: {name} common val {sp['mean']:.4f} +- {sp['std']:.4f} over seeds {sp['seeds']}")
        if "gptref modern" in runs and theirs["time_to_loss_s"]:
            # the modern side's final model against nanoGPT's final ones, seed for seed, at the modern side's last
            # printed evaluation (its final model) over nanoGPT's time to its final printed loss
            last_eval = statistics.median(run["timed_evals"][-1][0] for run in runs["gptref modern"])
            modern_common = {"time_ratio": last_eval / theirs["time_to_loss_s"],
                             "mean_difference": spread["gptref modern"]["mean"] - spread["nanoGPT"]["mean"]}
            reached = modern_common["mean_difference"] <= 0 and modern_common["time_ratio"] <= 0.5
            print(f"common val set, mean over seeds: gptref modern - nanoGPT = {modern_common['mean_difference']:+.4f} "
                  f"at {modern_common['time_ratio']:.3f}x nanoGPT's time ({'PASS' if reached else 'FAIL'}: <= 0 "
                  "at <= 0.5x)")
    if ours is not None:
        print(f"speed: gptref/nanoGPT time per iteration {ours['ms_per_iter'] / theirs['ms_per_iter']:.3f}x "
              f"({'PASS' if speed_ok else 'FAIL'}: <= {SPEED_TARGET}; single pairs {pair_ratios})")
        print(f"quality: common val loss gptref - nanoGPT = {ours['common_val'] - theirs['common_val']:+.4f} "
              f"({'PASS' if loss_ok else 'FAIL'}: <= +{QUALITY_MARGIN})")
    device_name = torch.cuda.get_device_name() if settings["device"] == "cuda" else f"CPU x{os.cpu_count()}"
    results = {"preset": args.preset, "settings": settings, "threads": args.threads or "torch default",
               "device": device_name, "torch": torch.__version__, "runs": runs, "median": med,
               "ratio_gptref_over_nanogpt": round(ours["ms_per_iter"] / theirs["ms_per_iter"], 3) if ours else None,
               "single_pair_ratios": pair_ratios, "speed_target": SPEED_TARGET, "speed_ok": speed_ok,
               "loss_ok": loss_ok, "target_val": target, "target_val_by_repeat": targets,
               "modern_settings": modern_settings if args.modern_iters else None,
               "modern_time_to_loss_ratio": modern_ratio, "vary_seed": args.vary_seed, "seed_spread": spread,
               "modern_common_val": modern_common}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    kept = record.save(f"nanogpt_compare-{args.preset}", results)
    plot(curves, out / "compare.png", f"{args.preset} preset, {device_name}: val loss (each side's own eval)")
    print(f"results: {out / 'results.json'} and {kept}, plot: {out / 'compare.png'}")
    modern_ok = not args.modern_iters or (modern_ratio is not None and modern_ratio <= 0.5)
    return 0 if speed_ok and loss_ok and modern_ok else 1


if __name__ == "__main__":
    sys.exit(main())
