"""Speed and quality of gptref's training loop against nanoGPT's model, on the same data, shape and machine.

    python benchmarks/nanogpt_compare.py --nanogpt-dir PATH/TO/nanoGPT [--iters 2000]

nanoGPT is not vendored here (and cannot be downloaded from this project): clone it yourself, e.g.
`git clone https://github.com/karpathy/nanoGPT`, and pass the folder that holds its model.py. Both runs use
the CPU settings of nanoGPT's shakespeare_char README (4 layers, 4 heads, 128 wide, block 64, batch 12, no
dropout), our character-level Shakespeare token file, the same seed, schedule and clipping. The nanoGPT side
is a plain loop written here around nanoGPT's GPT and its configure_optimizers (nanoGPT's train.py is not run).
Target: our ms/iter <= nanoGPT's, and our val loss at the end no worse by more than 0.02.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import torch


def load_nanogpt(folder: Path):
    path = folder / "model.py"
    if not path.exists():
        sys.exit(f"error: {path} not found. Clone nanoGPT (git clone https://github.com/karpathy/nanoGPT) "
                 "and pass its folder with --nanogpt-dir.")
    spec = importlib.util.spec_from_file_location("nanogpt_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_nanogpt(module, cfg, vocab_size: int) -> tuple[float, float]:
    """(ms per iteration, final val loss) of nanoGPT's model in a loop with our sampler and schedule."""
    from gptref.train.loop import estimate_loss
    from gptref.train.prepare import token_file
    from gptref.train.schedule import lr_at
    from gptref.train.sft import LMBatches
    import contextlib

    torch.manual_seed(cfg.seed)
    model = module.GPT(module.GPTConfig(block_size=cfg.block_size, vocab_size=vocab_size, n_layer=cfg.n_layer,
                                        n_head=cfg.n_head, n_embd=cfg.n_embd, dropout=0.0, bias=cfg.bias))
    opt = model.configure_optimizers(cfg.weight_decay, cfg.learning_rate, (cfg.beta1, cfg.beta2), "cpu")
    train_src = LMBatches(token_file(cfg.dataset, "train"), cfg.block_size)
    val_src = LMBatches(token_file(cfg.dataset, "val"), cfg.block_size)
    rng = np.random.default_rng(cfg.seed)
    t0 = time.perf_counter()
    for it in range(cfg.max_iters):
        for g in opt.param_groups:
            g["lr"] = lr_at(it, cfg.learning_rate, cfg.min_lr, cfg.warmup_iters, cfg.decay_iters)
        x, y = train_src.sample(rng, cfg.batch_size)
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if it % cfg.log_interval == 0:
            loss.item()  # nanoGPT's loop syncs here too
    ms = (time.perf_counter() - t0) / cfg.max_iters * 1000
    val = estimate_loss(model, {"val": val_src}, cfg, "cpu", contextlib.nullcontext())["val"]
    return ms, val


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nanogpt-dir", type=Path, default=None)
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    if args.nanogpt_dir is None:
        print(__doc__)
        print("error: pass --nanogpt-dir PATH (a nanoGPT checkout holding model.py)", file=sys.stderr)
        return 2
    module = load_nanogpt(args.nanogpt_dir)
    from gptref.train import load_config, train

    torch.set_num_threads(args.threads)
    cfg = load_config(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, max_iters=args.iters,
                      dropout=0.0, eval_interval=args.iters, eval_iters=20, progress=False,
                      save_checkpoints=False, threads=args.threads, out_dir="/tmp/gptref-bench")
    ours = train(cfg)
    ours_ms = 1000 / ours.iters_per_s
    theirs_ms, theirs_val = run_nanogpt(module, cfg, len(ours.tokenizer))
    print(f"gptref : {ours_ms:.2f} ms/iter, val loss {ours.final_val_loss:.4f}")
    print(f"nanoGPT: {theirs_ms:.2f} ms/iter, val loss {theirs_val:.4f}")
    ok = ours_ms <= theirs_ms * 1.0 and ours.final_val_loss <= theirs_val + 0.02
    print("PASS" if ok else "FAIL", f"(speed ratio {theirs_ms / ours_ms:.2f}x)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
