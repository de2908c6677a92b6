"""`python -m gptref finetune --init_from CKPT [--mode sft|continue] ...`: fine-tune a checkpoint on Milton."""

from __future__ import annotations

import sys

from gptref.train.config import add_config_arguments, config_from_args

FINETUNE_DEFAULTS = dict(dataset="milton", learning_rate=3e-4, min_lr=3e-5, warmup_iters=20, max_iters=500,
                         eval_interval=100)


def add_arguments(parser) -> None:
    parser.add_argument("--mode", choices=("continue", "sft"), default="continue",
                        help="continue: plain next-token training on Milton; sft: loss on the next line only")
    add_config_arguments(parser, FINETUNE_DEFAULTS)


def run(args) -> int:
    from gptref.train.loop import TrainingError, train

    try:
        cfg = config_from_args(args, dict(FINETUNE_DEFAULTS, task="sft" if args.mode == "sft" else "lm"))
        if cfg.init_from == "scratch" and not cfg.resume:
            raise ValueError("finetune needs --init_from PATH_TO_CHECKPOINT (e.g. one written by `train`)")
        result = train(cfg)
    except (ValueError, FileExistsError, FileNotFoundError, TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"final train loss {result.final_train_loss:.4f}, val loss {result.final_val_loss:.4f}; "
          f"checkpoint {result.checkpoint}")
    return 0
