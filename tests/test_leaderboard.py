"""`python -m autograder leaderboard`: three students' homework configs re-run in the sandbox and ranked.

An honest config that finishes inside its budget, one that would run far past it (stopped, and scored at
its last evaluation), and one that sets an option the leaderboard fixes (refused, with the reason, and
never run). The honest student's score is checked against training the same config here, outside the
sandbox, and scoring it with an independent computation on the same windows.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograder.leaderboard import EVAL_SEED, EVAL_WINDOWS, read_config
from autograder.sandbox import bwrap_problem

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PROBLEM = bwrap_problem()
HONEST = {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 32, "batch_size": 8, "max_iters": 30,
          "eval_interval": 15, "warmup_iters": 5}
GREEDY = {"n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 32, "batch_size": 8, "max_iters": 1_000_000,
          "eval_interval": 10}
BUDGET = 8


def _toml(options: dict) -> str:
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in options.items())


def _independent_score(config: dict, out_dir: str) -> float:
    """Train the config here and compute its loss on the leaderboard's windows with plain torch."""
    from gptref.gpt import GPT, GPTConfig
    from gptref.tokenizers import get_tokenizer
    from gptref.train.checkpoint import load_checkpoint
    from gptref.train.prepare import token_file

    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "cfg.json")
    with open(path, "w") as f:
        json.dump({**config, "out_dir": out_dir}, f)
    r = subprocess.run([sys.executable, "-m", "gptref", "train", path], cwd=REPO, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    state = load_checkpoint(os.path.join(out_dir, "ckpt.pt"))
    model = GPT(GPTConfig(**state["model_args"]))
    model.load_state_dict(state["model"])
    model.eval()
    tokens = np.asarray(token_file("shakespeare", "val", get_tokenizer("char")), dtype=np.int64)
    block = config["block_size"]
    starts = np.random.default_rng(EVAL_SEED).integers(0, len(tokens) - block - 1, size=EVAL_WINDOWS)
    total = 0.0
    with torch.no_grad():
        for start in starts:
            window = torch.from_numpy(tokens[start:start + block + 1])[None]  # (1, block + 1)
            logits, _ = model(window[:, :-1])
            total += F.cross_entropy(logits[0], window[0, 1:], reduction="sum").item()
    return total / (EVAL_WINDOWS * block)


def test_configs_with_fixed_or_unknown_options_are_refused_with_the_reason(tmp_path):
    for options, words in (({"seed": 3}, "fixed by the leaderboard"), ({"learning_rat": 0.1}, "unknown option"),
                           ({"n_layer": 0}, "bad value"), ({"device": "cuda"}, "fixed by the leaderboard")):
        path = tmp_path / "x.toml"
        path.write_text(_toml(options))
        with pytest.raises(ValueError, match=words):
            read_config(path, threads=1)
    (tmp_path / "y.toml").write_text("n_layer = [")
    with pytest.raises(ValueError, match="not valid TOML"):
        read_config(tmp_path / "y.toml", threads=1)


@pytest.mark.slow
@pytest.mark.skipif(_PROBLEM is not None, reason=f"needs bubblewrap: {_PROBLEM}")
def test_three_students_are_rerun_in_the_sandbox_and_ranked(tmp_path):
    src, out = tmp_path / "configs", tmp_path / "board"
    src.mkdir()
    (src / "honest.toml").write_text(_toml(HONEST))
    (src / "greedy.toml").write_text(_toml(GREEDY))
    (src / "cheat.toml").write_text(_toml({**HONEST, "seed": 7}))
    r = subprocess.run([sys.executable, "-m", "autograder", "leaderboard", str(src), "--budget", str(BUDGET),
                        "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = {row["student"]: row for row in csv.DictReader(open(out / "leaderboard.csv", newline=""))}
    assert set(rows) == {"honest", "greedy", "cheat"}
    reports = {s: json.loads((out / "reports" / f"{s}.json").read_text()) for s in rows}

    assert rows["cheat"]["state"] == "refused" and rows["cheat"]["rank"] == "" and "seed" in rows["cheat"]["why"]
    assert "train_seconds" not in reports["cheat"], "a refused config must never run"

    honest = reports["honest"]
    assert honest["state"] == "finished" and honest["iters"] == HONEST["max_iters"], honest
    expected = _independent_score(read_config(src / "honest.toml", threads=1), str(tmp_path / "here"))
    assert math.isclose(honest["val_loss"], expected, rel_tol=1e-4), (honest["val_loss"], expected)

    greedy = reports["greedy"]
    assert greedy["state"] == "over budget", greedy
    assert BUDGET <= greedy["train_seconds"] < BUDGET + 30, greedy["train_seconds"]
    assert 0 < greedy["iters"] < GREEDY["max_iters"] and greedy["iters"] == greedy["evals"][-1][0], (
        "an over-budget run is scored at its last evaluation")
    assert math.isfinite(greedy["val_loss"]) and greedy["val_loss"] < math.log(85)

    ranked = sorted((row for row in rows.values() if row["rank"]), key=lambda row: int(row["rank"]))
    assert [row["student"] for row in ranked] == sorted(["honest", "greedy"], key=lambda s: reports[s]["val_loss"])
