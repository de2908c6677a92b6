"""BERT: a bidirectional post-LN transformer encoder with a masked-language-model head, and BERT's masking rule.

Built from the course's pieces: gptref.attention.MultiHeadAttention (padding mask, kernel "math" or "sdpa"),
gptref.norms.LayerNorm and gptref.mlp.MLP (exact GELU). `Bert.from_hf_bert` loads a Hugging Face
BertForMaskedLM (directory, state dict or model) with the same logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import torch
import torch.nn as nn
from torch.nn import functional as F

from gptref.attention import KERNELS, MultiHeadAttention, padding_mask
from gptref.hf_weights import read_hf_source
from gptref.mlp import MLP
from gptref.norms import LayerNorm


@dataclass
class BertConfig:
    """Shape of a BERT; the defaults are BERT-base. n_inner defaults to 4 * n_embd."""

    vocab_size: int = 30522
    block_size: int = 512  # max_position_embeddings
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    n_inner: int | None = None
    type_vocab_size: int = 2
    dropout: float = 0.0
    norm_eps: float = 1e-12
    kernel: str = "sdpa"  # attention kernel: "math" (also writes the norms out) or "sdpa" (padding masks)

    def __post_init__(self) -> None:
        if self.n_inner is None:
            self.n_inner = 4 * self.n_embd
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "n_inner", "type_vocab_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"BertConfig.{name} must be a positive int, got {value!r}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"BertConfig.n_embd={self.n_embd} must be divisible by BertConfig.n_head={self.n_head}"
            )
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"BertConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if self.kernel not in KERNELS[:2]:
            raise ValueError(f"BertConfig.kernel must be 'math' or 'sdpa' (padding needs a mask), got {self.kernel!r}")
        if not self.norm_eps > 0:
            raise ValueError(f"BertConfig.norm_eps must be > 0, got {self.norm_eps!r}")


def _norm(config: BertConfig) -> LayerNorm:
    return LayerNorm(config.n_embd, eps=config.norm_eps, kernel="math" if config.kernel == "math" else "torch")


class BertEmbeddings(nn.Module):
    """token + absolute position + token type (segment A/B) embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.tok = nn.Embedding(config.vocab_size, config.n_embd)
        self.pos = nn.Embedding(config.block_size, config.n_embd)
        self.typ = nn.Embedding(config.type_vocab_size, config.n_embd)
        self.ln = _norm(config)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)  # (T,)
        x = self.tok(ids) + self.pos(pos) + self.typ(token_type_ids)  # (B, T, C)
        return self.drop(self.ln(x))


class BertLayer(nn.Module):
    """Post-LN block, as in the original BERT: x = LN(x + attn(x)), then x = LN(x + mlp(x))."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attn = MultiHeadAttention(config.n_embd, config.n_head, dropout=config.dropout, kernel=config.kernel)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.ln_1 = _norm(config)
        self.mlp = MLP(config.n_embd, hidden=config.n_inner, activation="gelu", dropout=config.dropout)
        self.ln_2 = _norm(config)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x (B, T, C); mask (B, 1, 1, T) bool, True where a key is a real token (bidirectional otherwise)."""
        x = self.ln_1(x + self.attn_dropout(self.attn(x, mask=mask)))
        return self.ln_2(x + self.mlp(x))


class MLMHead(nn.Module):
    """dense -> GELU -> LayerNorm -> vocabulary logits with the (tied) token embedding and its own bias."""

    def __init__(self, config: BertConfig, token_embedding: nn.Embedding):
        super().__init__()
        self.dense = nn.Linear(config.n_embd, config.n_embd)
        self.ln = _norm(config)
        self.token_embedding = [token_embedding]  # a list so the tied weight is not registered twice
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln(F.gelu(self.dense(x)))
        return F.linear(x, self.token_embedding[0].weight, self.bias)  # (B, T, V)


class Bert(nn.Module):
    """BERT encoder + MLM head.

    forward(ids, token_type_ids=None, attention_mask=None, labels=None) -> (logits, loss).
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        if not isinstance(config, BertConfig):
            raise ValueError(f"config must be a BertConfig, got {type(config).__name__}")
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList([BertLayer(config) for _ in range(config.n_layer)])
        self.head = MLMHead(config, self.embeddings.tok)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(
        self,
        ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ids (B, T) -> (logits (B, T, V), loss); attention_mask (B, T) is 1/True for real tokens, 0 for padding.

        loss is the cross entropy at the positions whose label is not -100 (see `mask_tokens`).
        """
        if ids.dim() != 2 or ids.dtype.is_floating_point:
            raise ValueError(f"ids must be a (B, T) integer tensor, got shape {tuple(ids.shape)} {ids.dtype}")
        B, T = ids.shape
        if T > self.config.block_size:
            raise ValueError(f"ids has shape {tuple(ids.shape)}: T exceeds block_size={self.config.block_size}")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(ids)
        elif token_type_ids.shape != ids.shape:
            raise ValueError(f"token_type_ids must have shape {tuple(ids.shape)}, got {tuple(token_type_ids.shape)}")
        mask = None
        if attention_mask is not None:
            if attention_mask.shape != ids.shape:
                raise ValueError(
                    f"attention_mask must have shape {tuple(ids.shape)}, got {tuple(attention_mask.shape)}"
                )
            mask = padding_mask(attention_mask.bool())  # (B, 1, 1, T): True where a key may be attended
        x = self.embeddings(ids, token_type_ids)  # (B, T, C)
        for layer in self.layers:
            x = layer(x, mask)
        logits = self.head(x)  # (B, T, V)
        loss = None
        if labels is not None:
            if labels.shape != ids.shape:
                raise ValueError(f"labels must have shape {tuple(ids.shape)}, got {tuple(labels.shape)}")
            loss = F.cross_entropy(logits.view(B * T, -1), labels.reshape(B * T), ignore_index=-100)
        return logits, loss

    @classmethod
    def from_hf_bert(cls, source: Any, n_head: int | None = None, **overrides: Any) -> "Bert":
        """Load a Hugging Face BertForMaskedLM: a save_pretrained directory, its state dict, or the model.

        Shapes come from the weights; n_head from config.json/the model's config or the argument
        (a bare state dict defaults to n_embd // 64, BERT's head size). nn.Linear weights need no transpose.
        """
        hf_config, state = read_hf_source(source)
        key = "bert.embeddings.word_embeddings.weight"
        if key not in state:
            raise ValueError(f"source is not a BertForMaskedLM state dict: no {key!r}")
        if hf_config.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"hidden_act {hf_config['hidden_act']!r} is not supported (only 'gelu')")
        if hf_config.get("position_embedding_type", "absolute") not in (None, "absolute"):
            raise ValueError(f"position_embedding_type {hf_config['position_embedding_type']!r} is not supported")
        vocab_size, n_embd = state[key].shape
        n_layer = 1 + max(int(k.split(".")[3]) for k in state if k.startswith("bert.encoder.layer."))
        n_head = n_head or hf_config.get("num_attention_heads")
        if n_head is None:
            if n_embd % 64:
                raise ValueError(f"n_head is needed: n_embd={n_embd} is not a multiple of BERT's head size 64")
            n_head = n_embd // 64
        kwargs = dict(
            vocab_size=vocab_size,
            block_size=state["bert.embeddings.position_embeddings.weight"].shape[0],
            n_layer=n_layer,
            n_head=n_head,
            n_embd=n_embd,
            n_inner=state["bert.encoder.layer.0.intermediate.dense.weight"].shape[0],
            type_vocab_size=state["bert.embeddings.token_type_embeddings.weight"].shape[0],
            dropout=0.0,
            norm_eps=hf_config.get("layer_norm_eps", 1e-12),
        )
        kwargs.update(overrides)
        model = cls(BertConfig(**kwargs))
        ours = model.state_dict()
        with torch.no_grad():
            for name, target in ours.items():
                hf_name = _hf_name(name)
                if hf_name not in state:
                    raise ValueError(f"source lacks the weight {hf_name!r} (for {name!r})")
                w = state[hf_name]
                if w.shape != target.shape:
                    raise ValueError(f"weight {hf_name!r} has shape {tuple(w.shape)}, expected {tuple(target.shape)}")
                target.copy_(w)
        return model


_EMBEDDING_NAMES = {
    "embeddings.tok.weight": "bert.embeddings.word_embeddings.weight",
    "embeddings.pos.weight": "bert.embeddings.position_embeddings.weight",
    "embeddings.typ.weight": "bert.embeddings.token_type_embeddings.weight",
    "embeddings.ln.weight": "bert.embeddings.LayerNorm.weight",
    "embeddings.ln.bias": "bert.embeddings.LayerNorm.bias",
    "head.dense.weight": "cls.predictions.transform.dense.weight",
    "head.dense.bias": "cls.predictions.transform.dense.bias",
    "head.ln.weight": "cls.predictions.transform.LayerNorm.weight",
    "head.ln.bias": "cls.predictions.transform.LayerNorm.bias",
    "head.bias": "cls.predictions.bias",
}
_LAYER_NAMES = {
    "attn.q_proj": "attention.self.query",
    "attn.k_proj": "attention.self.key",
    "attn.v_proj": "attention.self.value",
    "attn.out_proj": "attention.output.dense",
    "ln_1": "attention.output.LayerNorm",
    "mlp.c_fc": "intermediate.dense",
    "mlp.c_proj": "output.dense",
    "ln_2": "output.LayerNorm",
}


def _hf_name(name: str) -> str:
    """Our parameter name -> the BertForMaskedLM one."""
    if name in _EMBEDDING_NAMES:
        return _EMBEDDING_NAMES[name]
    _, index, rest = name.split(".", 2)  # layers.{i}.{module}.{weight|bias}
    module, param = rest.rsplit(".", 1)
    return f"bert.encoder.layer.{index}.{_LAYER_NAMES[module]}.{param}"


def mask_tokens(
    ids: torch.Tensor,
    mask_id: int,
    vocab_size: int,
    p: float = 0.15,
    special_ids: Iterable[int] = (),
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: select each non-special position with probability p; of those, 80% become mask_id,
    10% a token drawn uniformly from [0, vocab_size) and 10% stay as they are.

    Returns new tensors (inputs, labels): labels hold the original id where selected and -100 elsewhere.
    """
    if not isinstance(ids, torch.Tensor) or ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(f"ids must be an integer tensor, got {getattr(ids, 'dtype', type(ids).__name__)}")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
        raise ValueError(f"vocab_size must be an int >= 1, got {vocab_size!r}")
    if isinstance(mask_id, bool) or not isinstance(mask_id, int) or not 0 <= mask_id < vocab_size:
        raise ValueError(f"mask_id must be an int in [0, vocab_size={vocab_size}), got {mask_id!r}")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(
            f"ids of shape {tuple(ids.shape)} must lie in [0, vocab_size={vocab_size}), "
            f"got values in [{int(ids.min())}, {int(ids.max())}]"
        )
    special = torch.tensor(sorted(set(int(s) for s in special_ids)), dtype=ids.dtype, device=ids.device)
    selectable = ~torch.isin(ids, special)
    selected = (torch.rand(ids.shape, generator=generator, device=ids.device) < p) & selectable
    action = torch.rand(ids.shape, generator=generator, device=ids.device)  # which of 80/10/10
    random_tokens = torch.randint(0, vocab_size, ids.shape, generator=generator, device=ids.device, dtype=ids.dtype)
    inputs = ids.clone()
    inputs[selected & (action < 0.8)] = mask_id
    replace = selected & (action >= 0.8) & (action < 0.9)
    inputs[replace] = random_tokens[replace]
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    return inputs, labels


__all__ = ["BertConfig", "Bert", "mask_tokens", "BertEmbeddings", "BertLayer", "MLMHead"]
