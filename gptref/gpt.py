"""A GPT decoder in the style of nanoGPT's model.py, with a KV cache, RoPE/RMSNorm options and a GPT-2 loader.

KV-cache API (used by `GPT.generate` and by `gptref.decoding`):

    cache = model.new_cache()                    # empty KVCache holding up to config.block_size tokens
    logits, _ = model(prompt, cache=cache)       # (B, T0, V); keys/values of the prompt are stored
    logits, _ = model(next_ids, cache=cache)     # (B, T1, V); next_ids sit at absolute positions T0..T0+T1-1
    cache.length                                 # tokens held so far (the position of the next token)
    cache.max_len                                # capacity: config.block_size
    cache.reorder(index)                         # keep/duplicate batch rows, e.g. the surviving beams

With a cache, `forward` attends to the cached tokens plus the new ones (causally among the new ones), and
learned or rotary positions use the absolute position `cache.length + t`; the logits equal those of one
full forward over the whole sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from torch.nn import functional as F

from gptref.hf_weights import read_hf_source

POSITIONS = ("learned", "rope")
NORMS = ("layernorm", "rmsnorm")
ACTIVATIONS = ("gelu", "gelu_tanh")


@dataclass
class GPTConfig:
    """Shape and options of a GPT; the defaults are GPT-2 small with learned positions and LayerNorm."""

    vocab_size: int = 50304
    block_size: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True  # biases in Linear layers and LayerNorms, like GPT-2
    positions: str = "learned"  # "learned" (GPT-2's wpe table) or "rope" (rotary, applied to q and k)
    norm: str = "layernorm"  # "layernorm" or "rmsnorm"
    activation: str = "gelu"  # "gelu" (exact erf) or "gelu_tanh" (GPT-2's "gelu_new")
    norm_eps: float = 1e-5
    rope_base: float = 10000.0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"GPTConfig.{name} must be a positive int, got {value!r}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"GPTConfig.n_embd={self.n_embd} must be divisible by GPTConfig.n_head={self.n_head}"
            )
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"GPTConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if self.positions not in POSITIONS:
            raise ValueError(f"GPTConfig.positions must be one of {POSITIONS}, got {self.positions!r}")
        if self.norm not in NORMS:
            raise ValueError(f"GPTConfig.norm must be one of {NORMS}, got {self.norm!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"GPTConfig.activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.positions == "rope" and (self.n_embd // self.n_head) % 2 != 0:
            raise ValueError(
                f"GPTConfig.positions='rope' needs an even head size, got n_embd/n_head="
                f"{self.n_embd // self.n_head}"
            )
        if not self.norm_eps > 0:
            raise ValueError(f"GPTConfig.norm_eps must be > 0, got {self.norm_eps!r}")
        if not self.rope_base > 0:
            raise ValueError(f"GPTConfig.rope_base must be > 0, got {self.rope_base!r}")


class KVCache:
    """Keys and values of the tokens seen so far, one preallocated (B, H, max_len, D) buffer pair per layer.

    Buffers are created on the first write with that write's batch size, dtype and device, so the cache
    also works under autocast. `GPT.forward` writes every layer, then advances `length`.
    """

    def __init__(self, n_layer: int, max_len: int):
        self.n_layer = n_layer
        self.max_len = max_len
        self.length = 0
        self.k: list[torch.Tensor | None] = [None] * n_layer
        self.v: list[torch.Tensor | None] = [None] * n_layer

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, H, T, D) at positions length..length+T; return all keys/values (B, H, length+T, D)."""
        B, H, T, D = k.shape
        start, end = self.length, self.length + T
        if self.k[layer] is None:
            self.k[layer] = k.new_zeros(B, H, self.max_len, D)
            self.v[layer] = v.new_zeros(B, H, self.max_len, D)
        self.k[layer][:, :, start:end] = k
        self.v[layer][:, :, start:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def reorder(self, index: torch.Tensor) -> None:
        """Select batch rows (index is a 1-D LongTensor into the batch; repeats duplicate rows)."""
        for layer in range(self.n_layer):
            if self.k[layer] is not None:
                self.k[layer] = self.k[layer].index_select(0, index.to(self.k[layer].device))
                self.v[layer] = self.v[layer].index_select(0, index.to(self.v[layer].device))


def _rope_tables(block_size: int, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (block_size, head_dim/2) of angle pos * base^(-2i/head_dim)."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(torch.arange(block_size, dtype=torch.float64), inv_freq)
    return angles.cos().float(), angles.sin().float()


def _apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (2i, 2i+1) of x (B, H, T, D) by the angles in cos/sin (T, D/2)."""
    x_pairs = x.float().unflatten(-1, (-1, 2))  # (B, H, T, D/2, 2)
    x_even, x_odd = x_pairs.unbind(-1)  # each (B, H, T, D/2)
    rotated = torch.stack((x_even * cos - x_odd * sin, x_even * sin + x_odd * cos), dim=-1)
    return rotated.flatten(-2).type_as(x)  # (B, H, T, D)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with one fused qkv projection (GPT-2's c_attn)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: KVCache | None = None,
        layer: int = 0,
    ) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # each (B, T, C)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, D)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, D)
        if rope is not None:
            q, k = _apply_rope(q, *rope), _apply_rope(k, *rope)
        past = 0
        if cache is not None:
            past = cache.length
            k, v = cache.update(layer, k, v)  # (B, H, past + T, D)
        dropout_p = self.dropout if self.training else 0.0
        if past == 0:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        elif T == 1:  # one new token attends to every cached key
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
        else:  # new query t (absolute position past + t) may attend to keys 0..past + t
            key_pos = torch.arange(past + T, device=x.device)
            query_pos = torch.arange(past, past + T, device=x.device)
            mask = key_pos[None, :] <= query_pos[:, None]  # (T, past + T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, H, T, D) -> (B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Position-wise feed-forward: n_embd -> 4 n_embd -> GELU -> n_embd."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate="tanh" if config.activation == "gelu_tanh" else "none")
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


def _norm(config: GPTConfig) -> nn.Module:
    if config.norm == "rmsnorm":
        return nn.RMSNorm(config.n_embd, eps=config.norm_eps)
    return nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = _norm(config)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = _norm(config)
        self.mlp = MLP(config)

    def forward(self, x, rope=None, cache=None, layer=0):
        x = x + self.attn(self.ln_1(x), rope=rope, cache=cache, layer=layer)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Decoder-only transformer language model; module names follow nanoGPT/GPT-2 so checkpoints map 1:1."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise ValueError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.config = config
        modules: dict[str, nn.Module] = dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=_norm(config),
        )
        if config.positions == "learned":
            modules["wpe"] = nn.Embedding(config.block_size, config.n_embd)
        self.transformer = nn.ModuleDict(modules)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying (Press & Wolf, 2017)
        if config.positions == "rope":
            cos, sin = _rope_tables(config.block_size, config.n_embd // config.n_head, config.rope_base)
            self.register_buffer("rope_cos", cos, persistent=False)  # (block_size, D/2)
            self.register_buffer("rope_sin", sin, persistent=False)  # (block_size, D/2)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled by 1/sqrt(2 n_layer)
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    @property
    def block_size(self) -> int:
        """Longest context the model accepts (decoding crops to it)."""
        return self.config.block_size

    def num_params(self, non_embedding: bool = False) -> int:
        """Number of parameters (the tied wte/lm_head counted once); non_embedding drops wpe, as nanoGPT does."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and "wpe" in self.transformer:
            n -= self.transformer.wpe.weight.numel()
        return n

    def new_cache(self) -> KVCache:
        """An empty KV cache for `forward(..., cache=...)`, holding up to block_size tokens."""
        return KVCache(self.config.n_layer, self.config.block_size)

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) -> (logits (B, T, V), loss or None).

        loss is the mean cross entropy of logits against targets (B, T), positions with -100 ignored.
        With `cache`, idx holds only the new tokens; they sit at positions cache.length.. and the cache grows.
        """
        if idx.dim() != 2 or idx.dtype not in (torch.long, torch.int32, torch.int64):
            raise ValueError(f"idx must be a (B, T) integer tensor, got shape {tuple(idx.shape)} {idx.dtype}")
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        if start + T > self.config.block_size:
            raise ValueError(
                f"idx has shape {tuple(idx.shape)}: {start} cached + {T} new tokens exceed "
                f"block_size={self.config.block_size}"
            )
        if T == 0:
            raise ValueError(f"idx must hold at least one token, got shape {tuple(idx.shape)}")
        x = self.transformer.wte(idx)  # (B, T, C)
        rope = None
        if self.config.positions == "learned":
            pos = torch.arange(start, start + T, dtype=torch.long, device=idx.device)  # (T,)
            x = x + self.transformer.wpe(pos)  # (B, T, C) + (T, C)
        else:
            rope = (self.rope_cos[start : start + T], self.rope_sin[start : start + T])  # each (T, D/2)
        x = self.transformer.drop(x)
        for layer, block in enumerate(self.transformer.h):
            x = block(x, rope=rope, cache=cache, layer=layer)
        if cache is not None:
            cache.length += T
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x)  # (B, T, V)
        loss = None
        if targets is not None:
            if targets.shape != idx.shape:
                raise ValueError(
                    f"targets must have the shape of idx {tuple(idx.shape)}, got {tuple(targets.shape)}"
                )
            loss = F.cross_entropy(
                logits.view(B * T, -1), targets.reshape(B * T), ignore_index=-100
            )  # (B*T, V) against (B*T,)
        return logits, loss

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        top_p: float | None = None,
        eos_id: int | None = None,
    ) -> torch.Tensor:
        """Continue idx (B, T) by max_new_tokens sampled tokens using the KV cache; temperature 0 is greedy.

        Returns (B, T + max_new_tokens); see `gptref.decoding.sample` for the rules.
        """
        from gptref.decoding import sample

        was_training = self.training
        self.eval()
        try:
            return sample(
                self, idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                generator=generator, eos_id=eos_id,
            )
        finally:
            self.train(was_training)

    def configure_optimizers(
        self, weight_decay: float, learning_rate: float, betas: tuple[float, float] = (0.9, 0.95),
        device_type: str = "cpu",
    ) -> torch.optim.AdamW:
        """AdamW with weight decay on matrices (dim >= 2) only, as nanoGPT; fused on CUDA."""
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        extra = {"fused": True} if device_type == "cuda" else {}
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, **extra)

    def crop_block_size(self, block_size: int) -> None:
        """Shrink the context length (e.g. to fine-tune GPT-2 with a smaller block)."""
        if not 0 < block_size <= self.config.block_size:
            raise ValueError(f"block_size must be in 1..{self.config.block_size}, got {block_size}")
        self.config.block_size = block_size
        if "wpe" in self.transformer:
            self.transformer.wpe.weight = nn.Parameter(self.transformer.wpe.weight[:block_size])
        else:
            self.rope_cos = self.rope_cos[:block_size]
            self.rope_sin = self.rope_sin[:block_size]

    @classmethod
    def from_hf_gpt2(cls, source: Any, n_head: int | None = None, **overrides: Any) -> "GPT":
        """Load Hugging Face GPT-2 weights so the logits match transformers' GPT2LMHeadModel.

        source: a directory (config.json + model.safetensors or pytorch_model.bin), a state dict, or a
        GPT2LMHeadModel. The shapes come from the weights; n_head from config.json/the model's config or
        the argument (default for a bare state dict: n_embd // 64, as in every GPT-2 size). HF's Conv1D
        stores weights as (in, out), so c_attn, c_proj and c_fc are transposed into nn.Linear's (out, in).
        """
        hf_config, state = read_hf_source(source)
        state = {k.removeprefix("transformer."): v for k, v in state.items()}
        for key in ("wte.weight", "wpe.weight"):
            if key not in state:
                raise ValueError(f"source is not a GPT-2 state dict: no {key!r} among {sorted(state)[:5]}...")
        vocab_size, n_embd = state["wte.weight"].shape
        n_layer = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("h."))
        if n_head is None:
            n_head = hf_config.get("n_head")
        if n_head is None:
            if n_embd % 64:
                raise ValueError(f"n_head is needed: n_embd={n_embd} is not a multiple of GPT-2's head size 64")
            n_head = n_embd // 64
        activation = hf_config.get("activation_function", "gelu_new")
        if activation not in ("gelu_new", "gelu_pytorch_tanh", "gelu"):
            raise ValueError(f"activation_function {activation!r} is not supported")
        kwargs = dict(
            vocab_size=vocab_size, block_size=state["wpe.weight"].shape[0], n_layer=n_layer, n_head=n_head,
            n_embd=n_embd, dropout=0.0, bias=True, positions="learned", norm="layernorm",
            activation="gelu" if activation == "gelu" else "gelu_tanh",
            norm_eps=hf_config.get("layer_norm_epsilon", 1e-5),
        )
        kwargs.update(overrides)
        model = cls(GPTConfig(**kwargs))
        transposed = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
        ours = model.state_dict()
        with torch.no_grad():
            for key, target in ours.items():
                if key == "lm_head.weight":
                    continue  # tied to wte
                name = key.removeprefix("transformer.")
                if name not in state:
                    raise ValueError(f"source lacks the weight {name!r}")
                w = state[name]
                if name.endswith(transposed):
                    w = w.t()
                if w.shape != target.shape:
                    raise ValueError(f"weight {name!r} has shape {tuple(w.shape)}, expected {tuple(target.shape)}")
                target.copy_(w)
        return model


__all__ = ["GPTConfig", "GPT", "KVCache", "CausalSelfAttention", "MLP", "Block"]
