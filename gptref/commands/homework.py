"""`python -m gptref homework`: pretrain on Shakespeare, fine-tune on Milton, sample before/after, write a report."""

from __future__ import annotations

import math
import sys
import time
from datetime import datetime
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[1] / "train" / "configs"
PROMPT = "Of Man's first disobedience, and the fruit\n"
CONFIG_FILES = {  # (pretraining, fine-tuning) config for each size of run
    "tiny": ("tiny.toml", "tiny.toml"),
    "cpu": ("homework.toml", "homework_finetune.toml"),
    "gpu": ("homework_gpu.toml", "homework_finetune_gpu.toml"),
}
# pretraining config per architecture
ARCH_CONFIG_FILES = {"gpt2": {}, "baichuan2": {"tiny": "tiny.toml", "cpu": "homework_baichuan2.toml"}}


RECIPE_FILES = {"nanogpt": "homework.toml", "modern": "homework_modern.toml"}  # --recipe: what homework.toml changes


def recipe_options(recipe: str) -> dict:
    """The TrainConfig options `recipe` sets on top of homework.toml: {} for nanogpt; for modern, every option
    homework_modern.toml gives another value (Muon, QK-norm, ReLU^2, zero-init projections, untied head, WSD)."""
    from gptref.train.config import read_config_file

    if recipe not in RECIPE_FILES:
        raise ValueError(f"--recipe must be one of {', '.join(RECIPE_FILES)}, got {recipe!r}")
    base, mine = read_config_file(CONFIGS / RECIPE_FILES["nanogpt"]), read_config_file(CONFIGS / RECIPE_FILES[recipe])
    return {name: value for name, value in mine.items() if base.get(name) != value}


def arch_pretrain_file(arch: str, size: str) -> Path:
    """The pretraining config of `arch` for this size of run; ValueError when that pairing has none."""
    if arch not in ARCH_CONFIG_FILES:
        raise ValueError(f"--arch must be one of {', '.join(ARCH_CONFIG_FILES)}, got {arch!r}")
    if arch == "gpt2":
        return CONFIGS / CONFIG_FILES[size][0]
    if size not in ARCH_CONFIG_FILES[arch]:
        raise ValueError(f"--arch {arch} has a config for {', '.join(ARCH_CONFIG_FILES[arch])} runs only, not {size}")
    return CONFIGS / ARCH_CONFIG_FILES[arch][size]


def add_arguments(parser) -> None:
    parser.add_argument("--out", default=None, help="report folder (default runs/homework-<timestamp>)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (cuda: bf16 autocast, torch.compile)")
    parser.add_argument("--finetune_mode", "--finetune-mode", choices=("continue", "sft"), default="continue")
    parser.add_argument("--arch", choices=tuple(ARCH_CONFIG_FILES), default="gpt2",
                        help="gpt2 (default) or baichuan2: ALiBi, RMSNorm, SwiGLU, NormHead, max-z loss, same budget")
    parser.add_argument("--recipe", choices=tuple(RECIPE_FILES), default="nanogpt",
                        help="nanogpt (default) or modern: Muon, QK-norm, ReLU^2, zero-init projections, untied head "
                             "and a WSD schedule (gptref/train/configs/homework_modern.toml)")
    parser.add_argument("--tokenizer", choices=("char", "bpe", "spm"), default="char",
                        help="char (default), bpe (gptref's byte-level BPE) or spm (SentencePiece with Baichuan 2's "
                             "options); both trained on Shakespeare's train split")
    parser.add_argument("--bpe_vocab_size", type=int, default=None, help="vocabulary of the BPE tokenizer (512)")
    parser.add_argument("--pretrain_iters", type=int, default=None)
    parser.add_argument("--finetune_iters", type=int, default=None)
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run (tiny model, few steps)")
    parser.add_argument("--no_progress", action="store_true", help="no tqdm bars")


def run(args) -> int:
    import contextlib

    from gptref.gpt import ARCH_OPTIONS  # each architecture's model options, given on top of its config file
    from gptref.train.config import load_config
    from gptref.train.loop import TrainingError, estimate_loss, train
    from gptref.train.prepare import token_file
    from gptref.train.report import write_report
    from gptref.train.sampling import sample_text
    from gptref.train.sft import LMBatches

    out = Path(args.out or f"runs/homework-{datetime.now():%Y%m%d-%H%M%S}")
    if (out / "report.md").exists():
        print(f"error: {out} already holds a report; choose another --out", file=sys.stderr)
        return 2
    common = dict(device=args.device, progress=not args.no_progress, overwrite=True)
    import torch

    on_gpu = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    size = "tiny" if args.tiny else ("gpu" if on_gpu else "cpu")  # the GPU run uses nanoGPT's shakespeare_char shape
    arch = getattr(args, "arch", "gpt2")
    t_start = time.perf_counter()
    try:
        pre_file, fine_file = arch_pretrain_file(arch, size), CONFIGS / CONFIG_FILES[size][1]
        if args.bpe_vocab_size is not None and args.tokenizer not in ("bpe", "spm"):
            raise ValueError("--bpe_vocab_size needs --tokenizer bpe or spm")
        pre_cfg = load_config(pre_file, out_dir=str(out / "pretrain"), tokenizer=args.tokenizer, **common,
                              **ARCH_OPTIONS[arch], **recipe_options(getattr(args, "recipe", "nanogpt")),
                              **({"max_iters": args.pretrain_iters} if args.pretrain_iters else {}),
                              **({"bpe_vocab_size": args.bpe_vocab_size} if args.bpe_vocab_size else {}))
        print(f"[homework] 1/3 pretraining on Shakespeare ({pre_cfg.max_iters} iterations) -> {out}")
        t0 = time.perf_counter()
        pre = train(pre_cfg)
        pre_s = time.perf_counter() - t0
        device = str(pre.model.lm_head.weight.device)  # where training put the model: cpu, cuda, cuda:N
        milton_val = LMBatches(token_file("milton", "val", pre.tokenizer), min(pre_cfg.block_size, 64))
        before = estimate_loss(pre.model, {"val": milton_val}, pre_cfg, device, contextlib.nullcontext())["val"]
        samples = {"before fine-tuning (pretrained on Shakespeare)":
                   sample_text(pre.model, pre.tokenizer, PROMPT, 300, seed=0, device=device)}
        fine_cfg = load_config(fine_file, out_dir=str(out / "finetune"), init_from=str(pre.checkpoint),
                               dataset="milton", task="sft" if args.finetune_mode == "sft" else "lm", **common,
                               **({"max_iters": args.finetune_iters} if args.finetune_iters else {}),
                               **({"block_size": pre_cfg.block_size} if args.tiny else {}))
        print(f"[homework] 2/3 fine-tuning on Milton ({args.finetune_mode}, {fine_cfg.max_iters} iterations)")
        t0 = time.perf_counter()
        fine = train(fine_cfg)
        fine_s = time.perf_counter() - t0
        after = estimate_loss(fine.model, {"val": milton_val}, pre_cfg, device, contextlib.nullcontext())["val"]
        samples["after fine-tuning on Milton"] = sample_text(fine.model, fine.tokenizer, PROMPT, 300, seed=0,
                                                             device=device)
    except (ValueError, FileExistsError, FileNotFoundError, TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    vocab = len(pre.tokenizer)
    metrics = {
        "arch": arch, "recipe": getattr(args, "recipe", "nanogpt"), "tokenizer": args.tokenizer, "vocab_size": vocab,
        "chance_loss": math.log(vocab),
        "device": device,
        "milton_val_before": before, "milton_val_after": after,
        "phases": {
            "pretrain (Shakespeare)": {"final_train_loss": pre.final_train_loss, "final_val_loss": pre.final_val_loss,
                                       "iters": pre.iters_done, "tokens_per_s": pre.tokens_per_s,
                                       "iters_per_s": pre.iters_per_s, "seconds": pre_s},
            f"finetune {args.finetune_mode} (Milton)": {
                "final_train_loss": fine.final_train_loss, "final_val_loss": fine.final_val_loss,
                "iters": fine.iters_done, "tokens_per_s": fine.tokens_per_s, "iters_per_s": fine.iters_per_s,
                "seconds": fine_s},
        },
        "total_seconds": time.perf_counter() - t_start,
    }
    print("[homework] 3/3 writing the report")
    histories = {"pretrain (Shakespeare)": pre.history, f"finetune {args.finetune_mode} (Milton)": fine.history}
    files = write_report(out, {"pretrain": pre_cfg.to_dict(), "finetune": fine_cfg.to_dict()}, metrics, samples,
                         histories)
    print(f"[homework] pretrain val loss {pre.final_val_loss:.4f} (chance {math.log(vocab):.2f}); Milton val loss "
          f"{before:.4f} -> {after:.4f}; {metrics['total_seconds']:.0f} s. Report: {files['report']}")
    return 0
