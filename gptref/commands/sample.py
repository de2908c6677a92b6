"""`python -m gptref sample CKPT [--prompt TEXT] ...`: print samples from a checkpoint."""

from __future__ import annotations

import sys


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", help="a ckpt.pt written by train/finetune")
    parser.add_argument("--prompt", default="\n")
    parser.add_argument("--num_samples", type=int, default=2)
    parser.add_argument("--max_new_tokens", type=int, default=300)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top_k", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")


def run(args) -> int:
    from gptref.gpt import GPT, GPTConfig
    from gptref.tokenizers import tokenizer_from_spec
    from gptref.train.checkpoint import load_checkpoint
    from gptref.train.sampling import sample_text

    try:
        state = load_checkpoint(args.checkpoint)
        tokenizer = tokenizer_from_spec(state["tokenizer"])
        model = GPT(GPTConfig(**dict(state["model_args"], dropout=0.0)))
        model.load_state_dict(state["model"])
        model.to(args.device).eval()
        for i in range(args.num_samples):
            text = sample_text(model, tokenizer, args.prompt, args.max_new_tokens, args.temperature,
                               args.top_k or None, args.seed + i, args.device)
            print(text)
            print("-" * 40)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
