"""BPE: gptref.tokenizers.bpe training time vs Hugging Face tokenizers (same text, same run), and encode MB/s.

Prints both training times and their ratio (the target: gptref within 5x of tokenizers), then
how fast gptref encodes the corpus, with tiktoken's speed on the same merges for scale.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", default="shakespeare", help="gptref.data corpus name (default: shakespeare)")
    parser.add_argument("--text", nargs="+", type=Path, default=None,
                        help="train on these text files (concatenated) instead of --corpus")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--special", nargs="*", default=["<|endoftext|>"], help="special tokens")
    parser.add_argument("--repeats", type=int, default=1, help="time each trainer this many times, keep the best")


def _load_text(args: argparse.Namespace) -> str:
    if args.text:
        return "".join(p.read_text(encoding="utf-8") for p in args.text)
    from gptref.data import corpus

    return corpus(args.corpus)


def _time_gptref(text: str, vocab_size: int, special: list[str]):
    from gptref.tokenizers.bpe import train_bpe

    start = time.perf_counter()
    vocab, merges = train_bpe(text, vocab_size, special, progress=True)
    return time.perf_counter() - start, (vocab, merges)


def _time_tokenizers(text: str, vocab_size: int, special: list[str]) -> float:
    """tokenizers' ByteLevel BPE fed line by line (its fastest way in, measured: ~1.5x faster than one string)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=special, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    lines = text.splitlines(keepends=True)
    start = time.perf_counter()
    tok.train_from_iterator(lines, trainer)
    return time.perf_counter() - start


def _encode_speed(text: str, vocab, merges, special: list[str]) -> tuple[float, float | None]:
    """MB/s of gptref's encode from a cold cache, and tiktoken's on the same merges (None if missing)."""
    from gptref.tokenizers.bpe import GPT2_SPLIT_PATTERN, Tokenizer

    n_bytes = len(text.encode("utf-8"))
    tok = Tokenizer(vocab, merges, special)
    start = time.perf_counter()
    ids = tok.encode(text)
    ours = n_bytes / (time.perf_counter() - start) / 1e6
    try:
        import tiktoken
    except ImportError:
        return ours, None
    enc = tiktoken.Encoding(
        "gptref-bench", pat_str=GPT2_SPLIT_PATTERN,
        mergeable_ranks={b: i for i, b in vocab.items() if i not in tok.special_ids.values()},
        special_tokens=tok.special_ids,
    )
    start = time.perf_counter()
    theirs_ids = enc.encode(text, allowed_special="all")
    theirs = n_bytes / (time.perf_counter() - start) / 1e6
    if theirs_ids != ids:
        print("WARNING: tiktoken's ids differ from gptref's on this text")
    return ours, theirs


def run(args: argparse.Namespace) -> int:
    text = _load_text(args)
    print(f"text: {len(text):,} characters, {len(text.encode('utf-8')) / 1e6:.2f} MB; vocab_size {args.vocab_size}")
    ours = theirs = float("inf")
    for _ in range(args.repeats):
        seconds, (vocab, merges) = _time_gptref(text, args.vocab_size, args.special)
        ours = min(ours, seconds)
        theirs = min(theirs, _time_tokenizers(text, args.vocab_size, args.special))
    print(f"train gptref.tokenizers.bpe.train_bpe : {ours:7.2f} s")
    print(f"train tokenizers (HF, Rust): {theirs:7.2f} s")
    print(f"ratio gptref / tokenizers  : {ours / theirs:7.2f}x  (target: <= 5x)")
    mb_ours, mb_tiktoken = _encode_speed(text, vocab, merges, args.special)
    print(f"encode gptref              : {mb_ours:7.2f} MB/s  (target: >= 2 MB/s)")
    if mb_tiktoken is not None:
        print(f"encode tiktoken (Rust)     : {mb_tiktoken:7.2f} MB/s")
    return 0
