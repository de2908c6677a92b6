"""A GPT decoder in the style of nanoGPT's model.py, assembled from the course's pieces, with a GPT-2 loader.

Each block is gptref.norms (LayerNorm/RMSNorm) + gptref.attention.MultiHeadAttention (kernel "math",
"sdpa", "flash" or "triton"; RoPE through gptref.positions.rope) + gptref.mlp.MLP (GPT-2's GELU or SwiGLU).
Positions: learned (GPT-2's wpe), sinusoidal (gptref.positions), rotary, or ALiBi (a distance penalty added to
the attention scores, no table). Head: a tied linear layer or Baichuan 2's NormHead; `z_loss` adds Baichuan 2's
max-z loss.
KV-cache API (used by `GPT.generate` and by `gptref.decoding`):

    cache = model.new_cache()                    # gptref.attention.LayerCaches: one KVCache per layer
    logits, _ = model(prompt, cache=cache)       # (B, T0, V); keys/values of the prompt are stored
    logits, _ = model(next_ids, cache=cache)     # (B, T1, V); next_ids sit at absolute positions T0..T0+T1-1
    cache.length                                 # tokens held so far (the position of the next token)
    cache.max_len                                # capacity: config.block_size (ALiBi: new_cache(max_len=N))
    cache.reorder(index)                         # keep/duplicate batch rows, e.g. the surviving beams

With a cache, `forward` attends to the cached tokens plus the new ones (causally among the new ones), and
positions are the absolute ones `cache.length + t`; the logits equal those of one full forward over the
whole sequence. The public contract is docs/api.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from torch.nn import functional as F

from gptref.attention import KERNELS, KVCache, LayerCaches, MultiHeadAttention
from gptref.heads import NormHead
from gptref.hf_weights import read_hf_source
from gptref.losses import max_z_loss
from gptref.mlp import MLP as FeedForward
from gptref.norms import LayerNorm, RMSNorm
from gptref.positions import alibi_bias, sinusoidal_positions

POSITIONS = ("learned", "sinusoidal", "rope", "alibi")
NORMS = ("layernorm", "rmsnorm")
ACTIVATIONS = ("gelu", "gelu_tanh", "relu2")
HEADS = ("linear", "normhead")
MLPS = ("gelu", "swiglu")  # GPTConfig.mlp: gptref.mlp.MLP with GELU (GPT-2) or SwiGLU (Llama, Baichuan 2)


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
    positions: str = "learned"  # "learned" (GPT-2's wpe), "sinusoidal" (fixed), "rope" (rotary) or "alibi" (score bias)
    norm: str = "layernorm"  # "layernorm" or "rmsnorm"
    activation: str = "gelu"  # "gelu" (exact erf), "gelu_tanh" (GPT-2's "gelu_new") or "relu2" (Primer's ReLU^2)
    norm_eps: float = 1e-5
    rope_base: float = 10000.0
    kernel: str = "sdpa"  # attention kernel, one of gptref.attention.KERNELS; "math" also writes the norms out
    mlp: str = "gelu"  # gptref.mlp.MLP's "gelu" (GPT-2's 4x, `activation`) or "swiglu" (8/3 wide, Baichuan 2)
    mlp_multiple_of: int = 128  # SwiGLU's width: 8/3 n_embd rounded up to a multiple of this
    head: str = "linear"  # "linear" (tied to wte) or "normhead" (gptref.heads.NormHead: unit-norm rows, untied)
    z_loss: float = 0.0  # weight of Baichuan 2's max-z loss (gptref.losses.max_z_loss) added to the loss; 2e-4 there
    # the modern recipe's model options (docs/homework.md); the defaults are GPT-2's
    qk_norm: bool = False  # unit-RMS q and k per head before the scores (QK-norm)
    zero_init_proj: bool = False  # output projections (attn c_proj, MLP c_proj/down_proj) start at 0: blocks = identity
    tie_head: bool = True  # head="linear": share the weight with wte (False: the head has its own matrix)

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
        if self.kernel not in KERNELS:
            raise ValueError(f"GPTConfig.kernel must be one of {KERNELS}, got {self.kernel!r}")
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
        if self.mlp not in MLPS:
            raise ValueError(f"GPTConfig.mlp must be one of {MLPS}, got {self.mlp!r}")
        value = self.mlp_multiple_of
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"GPTConfig.mlp_multiple_of must be a positive int, got {value!r}")
        if self.head not in HEADS:
            raise ValueError(f"GPTConfig.head must be one of {HEADS}, got {self.head!r}")
        if isinstance(self.z_loss, bool) or not isinstance(self.z_loss, (int, float)) or not self.z_loss >= 0:
            raise ValueError(f"GPTConfig.z_loss must be a number >= 0, got {self.z_loss!r}")
        for name in ("qk_norm", "zero_init_proj", "tie_head"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"GPTConfig.{name} must be a bool, got {getattr(self, name)!r}")
        if self.positions == "alibi" and self.kernel not in ("math", "sdpa"):
            raise ValueError(f"GPTConfig.positions='alibi' adds a bias to the scores: kernel must be 'math' or "
                             f"'sdpa', got {self.kernel!r}")


ARCH_OPTIONS: dict[str, dict[str, Any]] = {  # model presets: GPTConfig/TrainConfig options of each architecture
    "gpt2": {},  # GPTConfig's defaults: learned positions, LayerNorm, GELU MLP, tied head
    "baichuan2": dict(positions="alibi", norm="rmsnorm", mlp="swiglu", mlp_multiple_of=16, head="normhead",
                      z_loss=2e-4),  # SwiGLU width rounded to 16 at the homework's size (128 at Baichuan 2's)
}


def _norm(config: GPTConfig) -> nn.Module:
    """gptref.norms' LayerNorm or RMSNorm; the "math" kernel runs the course's written-out norm too."""
    kernel = "math" if config.kernel == "math" else "torch"
    if config.norm == "rmsnorm":
        return RMSNorm(config.n_embd, eps=config.norm_eps, kernel=kernel)
    return LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias, kernel=kernel)


def _attention_args(config: GPTConfig) -> dict[str, Any]:
    """MultiHeadAttention's arguments for a GPT block: GPT-2's fused layout (attn.c_attn, attn.c_proj)."""
    return dict(d_model=config.n_embd, n_heads=config.n_head, bias=config.bias, dropout=config.dropout,
                kernel=config.kernel, fused_qkv=True, rope=config.positions == "rope", rope_base=config.rope_base,
                qk_norm=config.qk_norm)


def _mlp_args(config: GPTConfig) -> dict[str, Any]:
    """gptref.mlp.MLP's arguments for a GPT block: GELU (config.activation, 4x) or SwiGLU (8/3, mlp_multiple_of)."""
    activation = "swiglu" if config.mlp == "swiglu" else config.activation
    return dict(n_embd=config.n_embd, activation=activation, bias=config.bias, dropout=config.dropout,
                multiple_of=config.mlp_multiple_of)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = _norm(config)
        self.attn = MultiHeadAttention(**_attention_args(config))
        self.resid_dropout = nn.Dropout(config.dropout)
        self.ln_2 = _norm(config)
        self.mlp = FeedForward(**_mlp_args(config))

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C); `cache` is this layer's KVCache, `bias` an additive attention bias."""
        x = x + self.resid_dropout(self.attn(self.ln_1(x), cache=cache, causal=True, bias=bias))
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
        if config.head == "normhead":  # not tied: tying would make every embedding row unit-norm too
            self.lm_head = NormHead(config.n_embd, config.vocab_size)
        else:
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
            if config.tie_head:
                self.transformer.wte.weight = self.lm_head.weight  # weight tying (Press & Wolf, 2017)
        if config.positions == "sinusoidal":
            table = sinusoidal_positions(config.block_size, config.n_embd)  # (block_size, C), not learned
            self.register_buffer("pos_table", table, persistent=False)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled by 1/sqrt(2 n_layer)
            if name.endswith(("c_proj.weight", "down_proj.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))
                if config.zero_init_proj:  # each block adds 0 at step 0 and learns what to add (modded-nanogpt)
                    nn.init.zeros_(p)

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
        """Number of parameters (a tied wte/lm_head counted once, untied: both); non_embedding drops wpe, as
        nanoGPT does."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and "wpe" in self.transformer:
            n -= self.transformer.wpe.weight.numel()
        return n

    def new_cache(self, max_len: int | None = None) -> LayerCaches:
        """An empty KV cache for `forward(..., cache=...)`: one KVCache per layer, up to max_len tokens.

        max_len defaults to block_size; only ALiBi, which indexes nothing by position, may go beyond it.
        """
        max_len = self.config.block_size if max_len is None else max_len
        if max_len > self.config.block_size and self.config.positions != "alibi":
            raise ValueError(f"max_len={max_len} exceeds block_size={self.config.block_size}: only "
                             f"positions='alibi' runs past it, this model has {self.config.positions!r}")
        return LayerCaches(self.config.n_layer, max_len)

    def _attention_bias(self, start: int, T: int, device, dtype: torch.dtype) -> torch.Tensor | None:
        """Additive attention bias (1, H, T, start + T) shared by every layer: ALiBi's, or None."""
        if self.config.positions != "alibi":
            return None
        bias = alibi_bias(self.config.n_head, T, start + T, device=device, dtype=dtype)  # (H, T, start+T)
        return bias.unsqueeze(0)  # (1, H, T, start + T); the causal mask is added by attention

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        cache: LayerCaches | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) -> (logits (B, T, V), loss or None).

        loss is the mean cross entropy of logits against targets (B, T), positions with -100 ignored.
        With `cache`, idx holds only the new tokens; they sit at positions cache.length.. and the cache grows.
        """
        if idx.dim() != 2 or idx.dtype not in (torch.long, torch.int32, torch.int64):
            raise ValueError(f"idx must be a (B, T) integer tensor, got shape {tuple(idx.shape)} {idx.dtype}")
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        if start + T > self.config.block_size and self.config.positions != "alibi":
            raise ValueError(
                f"idx has shape {tuple(idx.shape)}: {start} cached + {T} new tokens exceed "
                f"block_size={self.config.block_size}"
            )
        if T == 0:
            raise ValueError(f"idx must hold at least one token, got shape {tuple(idx.shape)}")
        x = self.transformer.wte(idx)  # (B, T, C)
        if self.config.positions == "learned":
            pos = torch.arange(start, start + T, dtype=torch.long, device=idx.device)  # (T,)
            x = x + self.transformer.wpe(pos)  # (B, T, C) + (T, C)
        elif self.config.positions == "sinusoidal":
            x = x + self.pos_table[start : start + T]  # (B, T, C) + (T, C)
        # "rope": each attention rotates q and k by their absolute positions (cache.length + t)
        x = self.transformer.drop(x)
        bias = self._attention_bias(start, T, x.device, x.dtype)
        for layer, block in enumerate(self.transformer.h):
            x = block(x, cache=None if cache is None else cache[layer], bias=bias)
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
            if self.config.z_loss:
                loss = loss + max_z_loss(logits, self.config.z_loss, ignore_mask=targets == -100)
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


__all__ = ["GPTConfig", "ARCH_OPTIONS", "GPT", "Block", "MLPS", "POSITIONS", "NORMS", "HEADS"]
