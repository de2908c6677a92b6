"""`leaderboard`: every student's homework config, re-run in the sandbox on a fixed budget and ranked.

A student hands in `<student>.toml` (or `.json`): options of `python -m gptref train` that shape the model
and its optimisation (LEADERBOARD_OPTIONS). Everything that makes runs comparable is fixed here: the data
(Shakespeare, characters), the seed, the CPU threads, the wall-clock budget and the evaluation windows.
A config with any other option, or a bad value, is refused with the reason. Each accepted config trains in
the sandbox (no network, its own uid and limits) until it finishes or its budget is spent; it is scored by
the validation loss of its last checkpoint (one is written at every evaluation) on fixed windows. The
ranking goes to leaderboard.csv, and each student's run (its answer and training log) to reports/.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from dataclasses import fields
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from .atomic import write_atomic
from .course import Course
from .sandbox import Sandbox, SandboxUnavailable
from .settings import Autograder

# what a student may choose: the model's shape and architecture, and its optimisation
LEADERBOARD_OPTIONS = (
    "n_layer", "n_head", "n_embd", "block_size", "dropout", "bias", "positions", "norm", "mlp", "mlp_multiple_of",
    "head", "z_loss", "batch_size", "grad_accum", "max_iters", "learning_rate", "min_lr", "warmup_iters",
    "lr_decay_iters", "weight_decay", "beta1", "beta2", "grad_clip", "eval_interval", "log_interval",
)
SCRATCH_OUT = "/sandbox/work/run"  # the run's folder inside the sandbox
EVAL_WINDOWS, EVAL_SEED = 256, 20261202
START_UP_S = 120.0  # at most this long for Python and torch to start before training begins (not in the budget)


class RefusedConfig(ValueError):
    """A config that asks for something the leaderboard does not allow; the message says what."""


def read_config(path: Path, threads: int) -> dict:
    """The TrainConfig options of one hand-in: the student's allowed options over the fixed ones."""
    from gptref.train.config import TrainConfig

    try:
        chosen = tomllib.loads(path.read_text()) if path.suffix == ".toml" else json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise RefusedConfig(f"{path.name} is not valid {path.suffix[1:].upper()}: {e}") from None
    if not isinstance(chosen, dict):
        raise RefusedConfig(f"{path.name} must hold option = value pairs")
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(chosen) - known)
    if unknown:
        raise RefusedConfig(f"unknown option(s) {unknown}; the leaderboard takes {', '.join(LEADERBOARD_OPTIONS)}")
    fixed = sorted(set(chosen) - set(LEADERBOARD_OPTIONS))
    if fixed:
        raise RefusedConfig(f"option(s) {fixed} are fixed by the leaderboard (data, seed, threads, budget and "
                            f"evaluation are the same for everyone); choose only {', '.join(LEADERBOARD_OPTIONS)}")
    config = {**chosen, "dataset": "shakespeare", "tokenizer": "char", "task": "lm", "seed": 1337, "device": "cpu",
              "dtype": "float32", "compile": "false", "threads": threads, "progress": False, "init_from": "scratch",
              "out_dir": SCRATCH_OUT, "overwrite": True, "save_checkpoints": True, "eval_iters": 10}
    try:
        TrainConfig(**config)
    except (TypeError, ValueError) as e:
        raise RefusedConfig(f"bad value: {e}") from None
    return config


def hand_ins(src: Path) -> list[tuple[str, Path]]:
    """(student, config path) for every <student>.toml / <student>.json in src."""
    found = sorted(p for p in src.iterdir() if p.suffix in (".toml", ".json") and p.is_file())
    students = [p.stem for p in found]
    twice = sorted({s for s in students if students.count(s) > 1})
    if twice:
        raise SystemExit(f"error: {src} holds two configs for {twice} (.toml and .json): keep one")
    return [(p.stem, p) for p in found]


def _sandbox_settings(course: Course, budget_s: float, threads: int) -> Autograder:
    """The course's sandbox settings, with the data cache readable and CPU time for the budget."""
    from gptref import data

    settings = Autograder(config=course.config)
    cache = str(data.cache_dir().resolve())
    settings.extra_ro_binds = list(settings.extra_ro_binds) + [cache]
    settings.env = {**settings.env, "GPTREF_CACHE": cache}
    settings.cpu_seconds = int(budget_s * max(1, threads) + START_UP_S + 300)  # training, start-up and scoring
    return settings


def _prepare_data() -> None:
    """Encode the corpus once on the trusted side, so the sandbox only reads the cache."""
    from gptref.tokenizers import get_tokenizer
    from gptref.train.prepare import token_file

    tokenizer = get_tokenizer("char")
    for split in ("train", "val"):
        token_file("shakespeare", split, tokenizer)


def run_one(sandbox: Sandbox, config: dict, budget_s: float) -> dict:
    """Train and score one config in a fresh sandbox; the runner's signed answer, or why there is none."""
    scratch = sandbox.new_scratch()
    try:
        job = {"config": config, "budget_s": budget_s, "start_up_s": START_UP_S, "eval_windows": EVAL_WINDOWS,
               "eval_seed": EVAL_SEED}
        result = sandbox.run("run_training.py", [], scratch, json.dumps(job).encode(), budget_s + START_UP_S + 180)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if result.forged:
        return {"state": "forged", "val_loss": None, "why": "the run's answer was not signed by the runner"}
    try:
        return json.loads(result.payload.decode())
    except ValueError:
        why = "timed out" if result.timed_out else f"exited with {result.rc}"
        return {"state": "failed", "val_loss": None, "why": f"the sandboxed run {why}", "log_tail": result.log[-2000:]}


def leaderboard(course: Course, src: str, budget_s: float = 60.0, threads: int = 1, out: str | None = None,
                unsafe: bool = False) -> int:
    src_dir, out_dir = Path(src), Path(out or os.path.join(course.work, "leaderboard"))
    if not src_dir.is_dir():
        print(f"error: {src} is not a folder of <student>.toml configs", file=sys.stderr)
        return 2
    if budget_s <= 0 or threads < 1:
        print("error: --budget must be positive and --threads at least 1", file=sys.stderr)
        return 2
    try:
        sandbox = Sandbox(_sandbox_settings(course, budget_s, threads), slot=0, unsafe=unsafe)
    except SandboxUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    _prepare_data()
    (out_dir / "reports").mkdir(parents=True, exist_ok=True)
    rows = []
    for student, path in hand_ins(src_dir):
        try:
            config = read_config(path, threads)
        except RefusedConfig as e:
            answer = {"state": "refused", "val_loss": None, "why": str(e)}
        else:
            print(f"[leaderboard] {student}: training for at most {budget_s:g} s on {threads} thread(s)", flush=True)
            answer = run_one(sandbox, config, budget_s)
        write_atomic(str(out_dir / "reports" / f"{student}.json"), json.dumps(answer, indent=1))
        rows.append({"student": student, "val_loss": answer.get("val_loss"), "state": answer.get("state"),
                     "iters": answer.get("iters", 0), "train_seconds": answer.get("train_seconds", ""),
                     "why": answer.get("why", "")})
    scored = sorted((r for r in rows if r["val_loss"] is not None), key=lambda r: r["val_loss"])
    for rank, row in enumerate(scored, 1):
        row["rank"] = rank
    table = scored + sorted((r for r in rows if r["val_loss"] is None), key=lambda r: r["student"])
    columns = ["rank", "student", "val_loss", "state", "iters", "train_seconds", "why"]

    def write(f) -> None:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in table:
            writer.writerow({**row, "val_loss": "" if row["val_loss"] is None else f"{row['val_loss']:.4f}"})

    write_atomic(str(out_dir / "leaderboard.csv"), write, newline="")
    for row in table:
        loss = "-" if row["val_loss"] is None else f"{row['val_loss']:.4f}"
        print(f"{row.get('rank', '-')!s:>4} {row['student']:20s} {loss:>8s} {row['state']}"
              + (f": {row['why']}" if row["why"] else ""))
    print(f"[leaderboard] {out_dir / 'leaderboard.csv'}; each run's answer and log in {out_dir / 'reports'}")
    return 0
