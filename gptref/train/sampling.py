"""Text from a model: encode a prompt, sample with the model's KV-cache generate, decode."""

from __future__ import annotations

import torch


def sample_text(model, tokenizer, prompt: str = "\n", max_new_tokens: int = 300, temperature: float = 0.8,
                top_k: int | None = 40, seed: int = 0, device: str = "cpu") -> str:
    """One sample continuing prompt (the prompt included), seeded so reports are reproducible."""
    ids = tokenizer.encode(prompt) or [0]
    ids = ids[-model.config.block_size :]
    idx = torch.tensor([ids], dtype=torch.long, device=device)  # (1, T)
    gen = torch.Generator(device=device).manual_seed(seed)
    out = idx
    while max_new_tokens > 0:  # generate in windows of at most block_size tokens
        ctx = out[:, -(model.config.block_size // 2):] if out.shape[1] >= model.config.block_size else out
        n = min(max_new_tokens, model.config.block_size - ctx.shape[1])
        new = model.generate(ctx, n, temperature=temperature, top_k=top_k, generator=gen)[:, ctx.shape[1]:]
        out = torch.cat([out, new], dim=1)
        max_new_tokens -= n
    return tokenizer.decode(out[0].tolist())
