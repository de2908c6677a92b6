"""`python -m gptref train [CONFIG] [--key=value ...]`: pretrain a baby GPT with the nanoGPT-style loop."""

from __future__ import annotations

import sys

from gptref.train.config import add_config_arguments, config_from_args


def add_arguments(parser) -> None:
    add_config_arguments(parser)


def run(args) -> int:
    from gptref.train.loop import TrainingError, train

    try:
        cfg = config_from_args(args)
        result = train(cfg)
    except (ValueError, FileExistsError, FileNotFoundError, TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"final train loss {result.final_train_loss:.4f}, val loss {result.final_val_loss:.4f}, "
          f"{result.iters_per_s:.2f} it/s, {result.tokens_per_s:.0f} tokens/s; checkpoint {result.checkpoint}; "
          f"optimizer state here {result.optimizer_state_bytes / 2**20:.3f} MiB")
    return 0
