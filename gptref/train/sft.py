"""Supervised fine-tuning set: prompt = lines of verse, response = the next line; loss only on the response."""

from __future__ import annotations

import numpy as np
import torch

IGNORE = -100


def next_line_examples(text: str, context_lines: int = 2) -> list[tuple[str, str]]:
    """(prompt, response) pairs: `context_lines` consecutive non-empty lines, then the line that follows."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(".")]
    return [
        ("\n".join(lines[i - context_lines : i]) + "\n", lines[i] + "\n")
        for i in range(context_lines, len(lines))
    ]


def encode_example(prompt_ids: list[int], response_ids: list[int], block_size: int, pad_id: int = 0):
    """x, y of length block_size: the sequence prompt+response (prompt cut from the left to fit), y = -100
    on prompt and padding positions, so the loss counts response tokens only."""
    response_ids = response_ids[: block_size]
    keep = block_size + 1 - len(response_ids)
    prompt_ids = prompt_ids[-keep:] if keep > 0 else []
    seq = list(prompt_ids) + list(response_ids)
    x = seq[:-1]
    y = seq[1:]
    first_response = len(prompt_ids) - 1  # y[t] predicts seq[t+1]; seq[len(prompt)] is the first response token
    y = [IGNORE if t < first_response else tok for t, tok in enumerate(y)]
    pad = block_size - len(x)
    return x + [pad_id] * pad, y + [IGNORE] * pad


class SFTBatches:
    """Random batches of encoded (prompt, response) examples."""

    def __init__(self, examples: list[tuple[str, str]], tokenizer, block_size: int):
        if not examples:
            raise ValueError("examples is empty")
        self.block_size = block_size
        self.encoded = [(tokenizer.encode(p), tokenizer.encode(r)) for p, r in examples]

    def sample(self, rng: np.random.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        ix = rng.integers(0, len(self.encoded), size=n)
        pairs = [encode_example(*self.encoded[i], self.block_size) for i in ix]
        x = torch.tensor([p[0] for p in pairs], dtype=torch.long)  # (n, T)
        y = torch.tensor([p[1] for p in pairs], dtype=torch.long)  # (n, T)
        return x, y


class LMBatches:
    """Random windows of a token memmap: x = tokens[i:i+T], y = tokens[i+1:i+T+1]."""

    def __init__(self, tokens: np.ndarray, block_size: int):
        if len(tokens) <= block_size + 1:
            raise ValueError(f"tokens has {len(tokens)} entries, need more than block_size + 1 = {block_size + 1}")
        self.tokens, self.block_size = tokens, block_size
        self.offsets = np.arange(block_size + 1)

    def sample(self, rng: np.random.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        ix = rng.integers(0, len(self.tokens) - self.block_size - 1, size=n)
        rows = torch.from_numpy(self.tokens[ix[:, None] + self.offsets].astype(np.int64))  # (n, T+1)
        return rows[:, :-1], rows[:, 1:]
