"""Greedy decoding with and without the KV cache: time, speed-up and a check that the tokens agree."""

from __future__ import annotations

import argparse
import time

import torch

from gptref.decoding import greedy
from gptref.gpt import GPT, GPTConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n-layer", type=int, default=6)
    parser.add_argument("--n-head", type=int, default=6)
    parser.add_argument("--n-embd", type=int, default=384)
    parser.add_argument("--block-size", type=int, default=512)
    parser.add_argument("--vocab-size", type=int, default=65, help="65: a character-level Shakespeare model")
    parser.add_argument("--positions", choices=("learned", "rope"), default="learned")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--prompt-len", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's); 1 avoids thread-spinning on a busy machine")
    parser.add_argument("--min-speedup", type=float, default=5.0, help="exit 1 when the speed-up is below this")


def _timed(device: torch.device, fn):
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def run(args: argparse.Namespace) -> int:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    config = GPTConfig(
        vocab_size=args.vocab_size, block_size=args.block_size, n_layer=args.n_layer, n_head=args.n_head,
        n_embd=args.n_embd, positions=args.positions,
    )
    model = GPT(config).to(device).eval()
    prompt = torch.randint(0, args.vocab_size, (args.batch, args.prompt_len), device=device)
    print(f"GPT {args.n_layer} layers x {args.n_embd} wide, {args.n_head} heads, block {args.block_size}, "
          f"vocab {args.vocab_size}, {model.num_params() / 1e6:.1f}M parameters, on {device} "
          f"({torch.get_num_threads()} threads); "
          f"greedy, batch {args.batch}, prompt {args.prompt_len}, {args.new_tokens} new tokens")
    with torch.inference_mode():
        greedy(model, prompt, 4)  # warm-up (allocator, kernels)
        cached, t_cache = _timed(device, lambda: greedy(model, prompt, args.new_tokens, use_cache=True))
        print(f"with KV cache:    {t_cache:8.3f} s  ({args.new_tokens * args.batch / t_cache:8.1f} tokens/s)")
        plain, t_plain = _timed(device, lambda: greedy(model, prompt, args.new_tokens, use_cache=False))
        print(f"without KV cache: {t_plain:8.3f} s  ({args.new_tokens * args.batch / t_plain:8.1f} tokens/s)")
    ratio = t_plain / t_cache
    same = torch.equal(cached, plain)
    print(f"speed-up: {ratio:.1f}x; identical tokens: {same}")
    if not same:
        print("error: the cached and uncached decodings differ")
        return 1
    if ratio < args.min_speedup:
        print(f"error: speed-up {ratio:.1f}x is below --min-speedup {args.min_speedup}")
        return 1
    return 0
