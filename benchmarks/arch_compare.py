"""GPT-2-style vs Baichuan-2-style baby model, side by side: same data, batches, shape and token budget.

    python benchmarks/arch_compare.py [--iters N] [--out DIR] [--device cpu|cuda] [--threads 1]

Each architecture is the homework's pretraining run (`./run homework [--arch baichuan2]`): its config file
(gptref/train/configs/homework.toml or homework_baichuan2.toml) with the preset gptref.gpt.ARCH_OPTIONS[arch]
on top, trained by gptref.train (its AdamW groups, cosine schedule and loop). Both runs use the same seed, so
they draw the very same training batches and are evaluated on the same fixed batches every eval_interval
steps: val loss is compared at equal tokens. Writes results.json (val curves, tokens/s, parameters) and
arch_compare.png to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gptref.commands.homework import arch_pretrain_file  # noqa: E402
from gptref.gpt import ARCH_OPTIONS  # noqa: E402
from gptref.train.config import load_config  # noqa: E402
from gptref.train.loop import train  # noqa: E402


def run(arch: str, iters: int | None, out: Path, device: str, threads: int) -> dict:
    """The homework's pretraining of `arch`, without checkpoints; its val curve, tokens/s and parameter count."""
    overrides = dict(out_dir=str(out / arch), device=device, threads=threads, save_checkpoints=False,
                     progress=False, tokenizer="char", **ARCH_OPTIONS[arch])
    if iters:
        base = load_config(arch_pretrain_file(arch, "cpu"))
        overrides.update(max_iters=iters, eval_interval=min(base.eval_interval, max(1, iters // 5)))
    cfg = load_config(arch_pretrain_file(arch, "cpu"), **overrides)
    print(f"[arch_compare] {arch}: {cfg.max_iters} iterations of {cfg.batch_size} x {cfg.block_size} tokens")
    result = train(cfg, log=lambda *a: None)
    tokens_per_step = cfg.batch_size * cfg.grad_accum * cfg.block_size
    curve = [(step, step * tokens_per_step, val) for step, _, val in result.history["eval"]]
    return {"arch": arch, "params": result.model.num_params(), "curve": curve, "tokens_per_s": result.tokens_per_s,
            "final_val_ce": result.final_val_loss, "config": cfg.to_dict()}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for arch, r in results.items():
        tokens, losses = [c[1] for c in r["curve"]], [c[2] for c in r["curve"]]
        ax.plot(tokens, losses, "o-", label=f"{arch}: {r['params']:,} params, {r['tokens_per_s']:,.0f} tok/s")
    ax.set(xlabel="training tokens", ylabel="val cross-entropy (fixed batches)", title="GPT-2 vs Baichuan 2 style")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=None, help="iterations for both (default: the configs' max_iters)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    out = Path(args.out or f"runs/arch-compare-{datetime.now():%Y%m%d-%H%M%S}")
    out.mkdir(parents=True, exist_ok=True)
    results = {arch: run(arch, args.iters, out, args.device, args.threads) for arch in ("gpt2", "baichuan2")}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    plot(results, out / "arch_compare.png")
    for arch, r in results.items():
        print(f"[arch_compare] {arch:9s}: {r['params']:,} params, val CE {r['final_val_ce']:.4f}, "
              f"{r['tokens_per_s']:,.0f} tokens/s")
    print(f"[arch_compare] wrote {out / 'results.json'} and {out / 'arch_compare.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
