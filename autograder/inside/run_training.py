"""Inside the sandbox: train one leaderboard config for at most its budget, then score its last checkpoint.

Job on stdin (JSON): {"config": TrainConfig options, "budget_s", "start_up_s", "eval_windows", "eval_seed"}.
Training runs as a child process (`python -m gptref train`) that is killed when the wall-clock budget, counted
from its first evaluation, is spent; the score is then the loss of the last checkpoint (written at each
evaluation) on fixed validation windows, the same for every student. The answer (JSON) goes back signed on the channel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import channel  # noqa: E402

CHANNEL = channel.take()


def _started(log_path: str) -> bool:
    """Training has begun once the loop printed its first evaluation ("step 0: ...")."""
    with open(log_path, errors="replace") as f:
        return "step 0:" in f.read()


def _train(config: dict, budget_s: float, start_up_s: float, log_path: str) -> tuple[str, float]:
    """Run the training child; 'finished' or 'over budget', and the seconds it trained.

    The budget counts from the first evaluation (step 0), so Python's and torch's start-up, slower on a busy
    machine, costs no student anything; start-up itself may take at most start_up_s.
    """
    with open("leaderboard.json", "w") as f:
        json.dump(config, f)
    launched = time.monotonic()
    started = None
    with open(log_path, "w") as log:
        child = subprocess.Popen([sys.executable, "-m", "gptref", "train", "leaderboard.json"], stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True,
                                 env={**os.environ, "PYTHONUNBUFFERED": "1"})
        state = "over budget"
        while True:
            if child.poll() is not None:
                state = "finished" if child.returncode == 0 else f"failed (exit {child.returncode})"
                break
            now = time.monotonic()
            if started is None and _started(log_path):
                started = now
            if (started is not None and now - started > budget_s) or (started is None and now - launched > start_up_s):
                os.killpg(child.pid, 9)
                child.wait()
                break
            time.sleep(0.2)
    return state, time.monotonic() - (started or time.monotonic())


def _score(out_dir: str, windows: int, seed: int) -> dict:
    """Cross-entropy of the last checkpoint on `windows` fixed Shakespeare validation windows."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from gptref.gpt import GPT, GPTConfig
    from gptref.tokenizers import tokenizer_from_spec
    from gptref.train.checkpoint import load_checkpoint
    from gptref.train.prepare import token_file

    path = os.path.join(out_dir, "ckpt.pt")
    if not os.path.exists(path):
        return {"val_loss": None, "iters": 0, "why": "no checkpoint: the run ended before its first evaluation"}
    state = load_checkpoint(path)
    model = GPT(GPTConfig(**state["model_args"]))
    model.load_state_dict(state["model"])
    model.eval()
    tokens = token_file("shakespeare", "val", tokenizer_from_spec(state["tokenizer"]))
    block = state["model_args"]["block_size"]
    starts = np.random.default_rng(seed).integers(0, len(tokens) - block - 1, size=windows)
    batch = torch.from_numpy(np.asarray(tokens[starts[:, None] + np.arange(block + 1)], dtype=np.int64))
    losses = []
    with torch.no_grad():
        for rows in batch.split(64):  # (rows, block + 1)
            logits, _ = model(rows[:, :-1])
            losses.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), rows[:, 1:].reshape(-1),
                                          reduction="sum").item())
    return {"val_loss": sum(losses) / (windows * block), "iters": int(state["iter"]),
            "evals": state.get("history", {}).get("eval", [])}


def main() -> int:
    job = json.loads(sys.stdin.read())
    log_path = os.path.abspath("train.log")
    state, seconds = _train(job["config"], job["budget_s"], job["start_up_s"], log_path)
    answer = {"state": state, "train_seconds": round(seconds, 2)}
    try:
        answer.update(_score(job["config"]["out_dir"], job["eval_windows"], job["eval_seed"]))
    except Exception as e:  # noqa: BLE001 (a broken checkpoint scores nothing, with the reason)
        answer.update(val_loss=None, why=f"scoring failed: {type(e).__name__}: {e}")
    with open(log_path, errors="replace") as f:
        answer["log_tail"] = f.read()[-2000:]
    if CHANNEL is not None:
        CHANNEL.send(json.dumps(answer).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
