"""GPT-2-style vs Baichuan-2-style baby model, side by side: same data, batches, shape and token budget.

    python benchmarks/arch_compare.py [--iters N] [--out DIR] [--device cpu|cuda] [--threads 1]

Both read their shape and schedule from gptref/train/configs/homework.toml (GPT-2 style: learned positions,
LayerNorm, GELU MLP, tied head) and homework_baichuan2.toml (ALiBi, RMSNorm, SwiGLU, NormHead, max-z loss,
beta2 0.95, clip 0.5). They see the very same training batches (one seeded stream) and are evaluated on one
common set of fixed validation windows every eval_interval steps, so val loss is compared at equal tokens.
Writes results.json (val curves, tokens/s, parameters) and arch_compare.png to --out.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import tomllib
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gptref.commands.homework import ARCH_OPTIONS  # noqa: E402
from gptref.gpt import GPT, GPTConfig  # noqa: E402
from gptref.train.prepare import get_tokenizer, token_file  # noqa: E402

CONFIGS = ROOT / "gptref" / "train" / "configs"


def load(name: str) -> dict:
    return tomllib.loads((CONFIGS / name).read_text())


def build(arch: str, cfg: dict, vocab: int) -> GPT:
    """gptref's one GPT; for baichuan2 cfg carries ARCH_OPTIONS["baichuan2"] (alibi, rmsnorm, swiglu, normhead, z)."""
    options = {k: cfg[k] for k in ARCH_OPTIONS["baichuan2"] if k in cfg}
    return GPT(GPTConfig(vocab_size=vocab, block_size=cfg["block_size"], n_layer=cfg["n_layer"], n_head=cfg["n_head"],
                         n_embd=cfg["n_embd"], dropout=cfg["dropout"], bias=cfg.get("bias", False), **options))


def lr_at(it: int, cfg: dict, iters: int) -> float:
    """Linear warm-up, then cosine decay to min_lr (the report's schedule and the homework's)."""
    if it < cfg["warmup_iters"]:
        return cfg["learning_rate"] * (it + 1) / cfg["warmup_iters"]
    ratio = min(1.0, (it - cfg["warmup_iters"]) / max(1, iters - cfg["warmup_iters"]))
    return cfg["min_lr"] + 0.5 * (1 + math.cos(math.pi * ratio)) * (cfg["learning_rate"] - cfg["min_lr"])


@torch.no_grad()
def val_ce(model, windows: torch.Tensor, device) -> float:
    model.eval()
    total = 0.0
    for w in windows.split(32):
        logits = model(w[:, :-1].to(device))[0]
        total += torch.nn.functional.cross_entropy(logits.flatten(0, 1), w[:, 1:].reshape(-1).to(device)).item() * len(w)
    model.train()
    return total / len(windows)


def run(arch: str, cfg: dict, iters: int, train_tokens, windows, vocab: int, device: str) -> dict:
    torch.manual_seed(1337)
    model = build(arch, cfg, vocab).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.get("weight_decay", 0.1)},
                             {"params": rest, "weight_decay": 0.0}],
                            lr=cfg["learning_rate"], betas=(cfg.get("beta1", 0.9), cfg.get("beta2", 0.99)))
    rng = np.random.default_rng(0)  # the same batch stream for both architectures
    T, B = cfg["block_size"], cfg["batch_size"]
    curve, train_s, n_params = [], 0.0, sum(p.numel() for p in model.parameters())
    for it in range(iters + 1):
        if it % cfg["eval_interval"] == 0 or it == iters:
            curve.append((it, it * B * T, val_ce(model, windows, device)))
            print(f"  {arch:9s} iter {it:5d}  val CE {curve[-1][2]:.4f}", flush=True)
        if it == iters:
            break
        ix = rng.integers(0, len(train_tokens) - T - 1, size=B)
        rows = torch.from_numpy(train_tokens[ix[:, None] + np.arange(T + 1)].astype(np.int64)).to(device)
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = lr_at(it, cfg, iters)
        _, loss = model(rows[:, :-1], rows[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.get("grad_clip", 1.0):
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.get("grad_clip", 1.0))
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if it >= 5:  # leave the warm-up steps out of tokens/s
            train_s += time.perf_counter() - t0
    return {"arch": arch, "params": n_params, "curve": curve, "tokens_per_s": max(0, iters - 5) * B * T / max(train_s, 1e-9),
            "final_val_ce": curve[-1][2]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=None, help="iterations for both (default: the configs' max_iters)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    gpt2_cfg = load("homework.toml")
    bc_cfg = {**gpt2_cfg, **load("homework_baichuan2.toml"), **ARCH_OPTIONS["baichuan2"]}
    iters = args.iters or gpt2_cfg["max_iters"]
    for c in (gpt2_cfg, bc_cfg):
        c["eval_interval"] = min(c["eval_interval"], max(1, iters // 5))
    out = Path(args.out or f"runs/arch-compare-{datetime.now():%Y%m%d-%H%M%S}")
    out.mkdir(parents=True, exist_ok=True)
    tok = get_tokenizer("char")
    train_tokens, val_tokens = token_file("shakespeare", "train", tok), token_file("shakespeare", "val", tok)
    T = gpt2_cfg["block_size"]
    starts = np.random.default_rng(1).integers(0, len(val_tokens) - T - 1, size=256)
    windows = torch.from_numpy(val_tokens[starts[:, None] + np.arange(T + 1)].astype(np.int64))  # fixed, shared
    results = {}
    for arch, cfg in (("gpt2", gpt2_cfg), ("baichuan2", bc_cfg)):
        print(f"[arch_compare] {arch}: {iters} iterations of {cfg['batch_size']} x {T} tokens")
        results[arch] = run(arch, cfg, iters, train_tokens, windows, len(tok), args.device)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for arch, r in results.items():
        toks, ces = [c[1] for c in r["curve"]], [c[2] for c in r["curve"]]
        ax.plot(toks, ces, "o-", label=f"{arch}: {r['params']:,} params, {r['tokens_per_s']:,.0f} tok/s")
    ax.set(xlabel="training tokens", ylabel="val cross-entropy (fixed windows)", title="GPT-2 vs Baichuan 2 style")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "arch_compare.png", dpi=100)
    for arch, r in results.items():
        print(f"[arch_compare] {arch:9s}: {r['params']:,} params, val CE {r['final_val_ce']:.4f}, {r['tokens_per_s']:,.0f} tokens/s")
    print(f"[arch_compare] wrote {out / 'results.json'} and {out / 'arch_compare.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
