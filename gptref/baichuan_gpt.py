"""A Baichuan-2-style GPT that works before GPTConfig gains the options (see WIRING.md).

Pre-norm RMSNorm blocks, ALiBi instead of a position table, SwiGLU feed-forward, no biases,
NormHead (untied) and the max-z loss; forward/generate/new_cache like gptref.gpt.GPT, so the
homework's training and decoding code can drive it. ALiBi has no position table, so the model
runs on contexts longer than block_size (give new_cache a larger max_len for that).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from gptref.heads import NormHead
from gptref.losses import max_z_loss
from gptref.mlp import SwiGLU
from gptref.norms import RMSNorm
from gptref.positions import alibi_bias

__all__ = ["Baichuan2Config", "Baichuan2GPT", "KVCache"]


class KVCache:
    """Keys and values seen so far, per layer, grown by concatenation (no length limit: ALiBi needs none)."""

    def __init__(self, n_layer: int, max_len: int | None = None):
        self.n_layer, self.max_len, self.length = n_layer, max_len, 0
        self.k: list[torch.Tensor | None] = [None] * n_layer
        self.v: list[torch.Tensor | None] = [None] * n_layer

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append k, v (B, H, T, D); return all keys and values of this layer (B, H, length + T, D)."""
        if self.k[layer] is not None:
            k, v = torch.cat([self.k[layer], k], dim=2), torch.cat([self.v[layer], v], dim=2)
        self.k[layer], self.v[layer] = k, v
        return k, v


@dataclass
class Baichuan2Config:
    vocab_size: int = 65
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    multiple_of: int = 16  # SwiGLU width: 8/3 n_embd rounded up to this (128 in Baichuan 2; 16 keeps baby sizes close to GPT-2's)
    z_loss: float = 2e-4  # weight of the max-z loss added to the training loss
    norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "multiple_of"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"Baichuan2Config.{name} must be a positive int, got {v!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"Baichuan2Config.n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if not 0.0 <= self.dropout < 1.0 or self.z_loss < 0:
            raise ValueError(f"Baichuan2Config: dropout must be in [0, 1) and z_loss >= 0, got {self.dropout}, {self.z_loss}")


class AlibiSelfAttention(nn.Module):
    """Causal self-attention whose scores get ALiBi's -slope * distance; no position embedding."""

    def __init__(self, c: Baichuan2Config):
        super().__init__()
        self.n_head, self.dropout = c.n_head, c.dropout
        self.W_pack = nn.Linear(c.n_embd, 3 * c.n_embd, bias=False)  # Baichuan's name for the fused qkv
        self.o_proj = nn.Linear(c.n_embd, c.n_embd, bias=False)

    def forward(self, x, cache: KVCache | None = None, layer: int = 0):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, D)
                   for t in self.W_pack(x).split(C, dim=-1))
        if cache is not None:
            k, v = cache.update(layer, k, v)  # (B, H, past + T, D)
        t_k = k.shape[2]
        causal = torch.ones(T, t_k, dtype=torch.bool, device=x.device).tril(t_k - T)  # queries are the last T
        bias = alibi_bias(self.n_head, T, t_k, device=x.device, dtype=q.dtype)  # (H, T, t_k)
        mask = bias.masked_fill(~causal, float("-inf"))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, C))  # (B, T, C)


class Baichuan2Block(nn.Module):
    def __init__(self, c: Baichuan2Config):
        super().__init__()
        self.input_layernorm = RMSNorm(c.n_embd, c.norm_eps)
        self.self_attn = AlibiSelfAttention(c)
        self.post_attention_layernorm = RMSNorm(c.n_embd, c.norm_eps)
        self.mlp = SwiGLU(c.n_embd, multiple_of=c.multiple_of, dropout=c.dropout)

    def forward(self, x, cache=None, layer=0):
        x = x + self.self_attn(self.input_layernorm(x), cache, layer)
        return x + self.mlp(self.post_attention_layernorm(x))


class Baichuan2GPT(nn.Module):
    def __init__(self, config: Baichuan2Config):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(Baichuan2Block(config) for _ in range(config.n_layer))
        self.norm = RMSNorm(config.n_embd, config.norm_eps)
        self.apply(self._init_weights)
        self.lm_head = NormHead(config.n_embd, config.vocab_size)
        for name, p in self.named_parameters():  # residual projections scaled as in GPT-2
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    @property
    def block_size(self) -> int:
        return self.config.block_size

    def model_args(self) -> dict:
        return asdict(self.config)

    def num_params(self, non_embedding: bool = False) -> int:
        return sum(p.numel() for p in self.parameters())

    def new_cache(self, max_len: int | None = None) -> KVCache:
        return KVCache(self.config.n_layer, max_len or self.config.block_size)

    def forward(self, idx, targets=None, cache: KVCache | None = None):
        """idx (B, T) -> (logits (B, T, V), loss or None); loss = cross-entropy + z_loss * mean(max logit^2)."""
        if idx.dim() != 2 or idx.shape[1] == 0:
            raise ValueError(f"idx must be a non-empty (B, T) integer tensor, got shape {tuple(idx.shape)}")
        x = self.drop(self.embed_tokens(idx))
        for layer, block in enumerate(self.layers):
            x = block(x, cache, layer)
        if cache is not None:
            cache.length += idx.shape[1]
        logits = self.lm_head(self.norm(x))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.reshape(-1), ignore_index=-100)
            if self.config.z_loss:
                loss = loss + max_z_loss(logits, self.config.z_loss, ignore_mask=targets == -100)
        return logits, loss

    @torch.no_grad()
    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None, generator=None):
        """Sample with a KV cache; ALiBi needs no position table, so the cache may outgrow block_size."""
        cache = self.new_cache(idx.shape[1] + max_new_tokens)
        logits, _ = self(idx, cache=cache)
        for _ in range(max_new_tokens):
            last = logits[:, -1, :] / max(temperature, 1e-8)
            if top_k is not None:
                kth = torch.topk(last, min(top_k, last.shape[-1])).values[:, -1:]
                last = last.masked_fill(last < kth, float("-inf"))
            nxt = torch.multinomial(last.softmax(-1), 1, generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
            logits, _ = self(nxt, cache=cache)
        return idx
