"""TrainConfig: every option of the loop; defaults < config file (TOML/JSON) < `--key=value` on the command line."""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


@dataclass
class TrainConfig:
    """Defaults are nanoGPT's CPU shakespeare_char baby GPT (4 layers, 4 heads, 128 wide, block 64, batch 12)."""

    # where and what
    out_dir: str = ""  # "" -> runs/train-<timestamp>
    init_from: str = "scratch"  # "scratch" or the path of a checkpoint to start from (fine-tuning)
    resume: bool = False  # continue the checkpoint in out_dir exactly where it stopped
    overwrite: bool = False  # allow replacing a checkpoint already in out_dir
    dataset: str = "shakespeare"  # "shakespeare" or "milton"
    # "char", "bpe" (gptref's own BPE) or "spm" (SentencePiece, Baichuan 2 options);
    # "auto": char, or the checkpoint's when fine-tuning
    tokenizer: str = "auto"
    bpe_vocab_size: int = 512  # for tokenizer="bpe" or "spm": trained once on Shakespeare's training split and cached
    task: str = "lm"  # "lm" (next-token prediction on the corpus) or "sft" (next line of verse, loss on the response)
    # model
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    bias: bool = False
    positions: str = "learned"  # GPTConfig.positions: "learned", "sinusoidal", "rope" or "alibi"
    norm: str = "layernorm"  # "layernorm" or "rmsnorm"
    mlp: str = "gelu"  # "gelu" or "swiglu"
    mlp_multiple_of: int = 128  # SwiGLU width: 8/3 n_embd rounded up to a multiple of this
    head: str = "linear"  # "linear" (tied to the embedding) or "normhead" (Baichuan 2)
    z_loss: float = 0.0  # weight of Baichuan 2's max-z loss (2e-4 there); val loss reports cross-entropy alone
    # the modern recipe (configs/homework_modern.toml, docs/homework.md); each option on its own
    activation: str = "gelu"  # "gelu", "gelu_tanh" or "relu2" (Primer's squared ReLU)
    qk_norm: bool = False  # unit-RMS q and k per head
    zero_init_proj: bool = False  # output projections start at zero: every block is the identity at step 0
    tie_head: bool = True  # False: the output head has its own matrix instead of the embedding's
    # optimisation
    batch_size: int = 12  # per process and micro-step
    grad_accum: int = 1
    max_iters: int = 2000
    stop_at: int = 0  # stop (with a checkpoint) after this many iterations; 0 = run to max_iters
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 0  # 0 -> max_iters
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # 0 = off
    optimizer: str = "adamw"  # "adamw", or "muon": Muon on the blocks' 2-D matrices at muon_lr, AdamW on the rest
    muon_lr: float = 0.02  # optimizer="muon": Muon's peak lr (the schedule scales it like learning_rate)
    muon_ns_steps: int = 5  # optimizer="muon": Newton-Schulz iterations per orthogonalisation (Muon's cost per step)
    schedule: str = "cosine"  # "cosine" (warmup, cosine to min_lr) or "wsd" (warmup, constant, linear cooldown)
    cooldown_frac: float = 0.2  # schedule="wsd": the last fraction of lr_decay_iters spent cooling down
    # evaluation, logging, checkpoints
    eval_interval: int = 250
    eval_iters: int = 20
    log_interval: int = 10
    save_checkpoints: bool = True
    # machine
    seed: int = 1337
    device: str = "cpu"  # "cpu", "cuda", "cuda:N" or "auto"
    dtype: str = "auto"  # "auto" (bfloat16 autocast on CUDA, float32 on CPU), "float32", "bfloat16"
    compile: str = "auto"  # "auto" (on CUDA only), "true", "false"
    # CPU threads for torch; 0 = torch's default (all cores, or $OMP_NUM_THREADS).
    # Use 1 on a busy machine: oversubscribed cores slow a baby GPT 10x+
    threads: int = 0
    progress: bool = True  # tqdm progress bar
    # under torchrun: "torch" (DistributedDataParallel) or "gptref" (gptref.distributed, day 11)
    ddp_impl: str = "torch"
    ddp_bucket_mb: float = 25.0  # ddp_impl="gptref": gradient bucket size in MB (all_reduce overlapped with backward)
    # under torchrun: shard AdamW's state over the ranks (ZeRO-1, gptref.distributed.ShardedAdamW), with either
    # ddp_impl; checkpoints still hold the full state, so they resume with or without it, on any number of ranks
    zero1: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad option and its value."""
        choices = {
            "dataset": ("shakespeare", "milton"), "tokenizer": ("auto", "char", "bpe", "spm"), "task": ("lm", "sft"),
            "dtype": ("auto", "float32", "bfloat16"), "compile": ("auto", "true", "false"),
            "ddp_impl": ("torch", "gptref"), "optimizer": ("adamw", "muon"),
        }
        from gptref.gpt import ACTIVATIONS, HEADS, MLPS, NORMS, POSITIONS
        from gptref.train.schedule import SCHEDULES

        choices.update(positions=POSITIONS, norm=NORMS, mlp=tuple(MLPS), head=HEADS, activation=ACTIVATIONS,
                       schedule=SCHEDULES)
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"option {name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not (self.device in ("cpu", "cuda", "auto") or self.device.startswith("cuda:")):
            raise ValueError(f"option device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {self.device!r}")
        for name in ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "grad_accum", "max_iters",
                     "eval_interval", "eval_iters", "log_interval", "bpe_vocab_size", "mlp_multiple_of"):
            if getattr(self, name) <= 0:
                raise ValueError(f"option {name} must be > 0, got {getattr(self, name)!r}")
        for name in ("stop_at", "warmup_iters", "lr_decay_iters", "threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"option {name} must be >= 0, got {getattr(self, name)!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"option n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"option dropout must be in [0, 1), got {self.dropout!r}")
        for name in ("learning_rate", "min_lr", "weight_decay", "grad_clip", "z_loss", "ddp_bucket_mb", "muon_lr"):
            if not getattr(self, name) >= 0:  # also catches NaN
                raise ValueError(f"option {name} must be >= 0, got {getattr(self, name)!r}")
        if not 0.0 < self.cooldown_frac <= 1.0:
            raise ValueError(f"option cooldown_frac must be in (0, 1], got {self.cooldown_frac!r}")
        if self.muon_ns_steps < 1:
            raise ValueError(f"option muon_ns_steps must be >= 1, got {self.muon_ns_steps!r}")
        if self.optimizer == "muon" and self.zero1:
            raise ValueError("option optimizer='muon' has no sharded (zero1) version here; leave zero1 off")
        if self.optimizer == "muon" and self.learning_rate == 0:
            raise ValueError("option optimizer='muon' needs learning_rate > 0 (Muon's lr is a multiple of it)")
        if self.min_lr > self.learning_rate:
            raise ValueError(f"option min_lr={self.min_lr} must not exceed learning_rate={self.learning_rate}")

    @property
    def decay_iters(self) -> int:
        return self.lr_decay_iters or self.max_iters

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_bool(text: str | bool) -> bool:
    if isinstance(text, bool):
        return text
    low = str(text).strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _coerce(name: str, kind: type, value: Any, where: str) -> Any:
    """Check a config-file value against the field's type (ints are accepted where floats are expected)."""
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is str:
        if isinstance(value, str):
            return value
    raise ValueError(f"option {name} in {where} must be a {kind.__name__}, got {value!r}")


def _field_types() -> dict[str, type]:
    return {f.name: {"int": int, "float": float, "bool": bool, "str": str}[str(f.type)] for f in fields(TrainConfig)}


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Options from a TOML (.toml) or JSON (.json) file, checked for unknown names and wrong types."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"config file {path} does not exist")
    if path.suffix == ".json":
        raw = json.loads(path.read_text())
    elif path.suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        raw = tomllib.loads(path.read_text())
    else:
        raise ValueError(f"config file {path} must end in .toml or .json")
    if not isinstance(raw, dict):
        raise ValueError(f"config file {path} must hold a table of options")
    types = _field_types()
    out = {}
    for name, value in raw.items():
        if name not in types:
            close = difflib.get_close_matches(name, types, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown option {name!r} in config file {path}{hint}")
        out[name] = _coerce(name, types[name], value, f"config file {path}")
    return out


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """TrainConfig from defaults, then the file at path (if any), then overrides."""
    values = read_config_file(path) if path else {}
    types = _field_types()
    for name, value in overrides.items():
        if name not in types:
            raise ValueError(f"unknown option {name!r}")
        values[name] = value
    return TrainConfig(**values)


def add_config_arguments(parser: argparse.ArgumentParser, defaults: dict[str, Any] | None = None) -> None:
    """One `--name VALUE` (or `--name=VALUE`) option per TrainConfig field; argparse rejects unknown ones."""
    parser.allow_abbrev = False  # `--lr` must not silently mean `--lr_decay_iters`
    parser.add_argument("config", nargs="?", default=None, help="a .toml or .json config file (optional)")
    group = parser.add_argument_group("training options (override the config file)")
    base = TrainConfig()
    for f in fields(TrainConfig):
        kind = _field_types()[f.name]
        shown = (defaults or {}).get(f.name, getattr(base, f.name))
        kwargs: dict[str, Any] = dict(default=argparse.SUPPRESS, help=f"default: {shown!r}")
        if kind is bool:
            kwargs.update(type=parse_bool, nargs="?", const=True, metavar="BOOL")
        else:
            kwargs.update(type=kind, metavar=kind.__name__.upper())
        group.add_argument(f"--{f.name}", **kwargs)


def config_from_args(args: argparse.Namespace, defaults: dict[str, Any] | None = None) -> TrainConfig:
    """defaults (the command's) < config file < options given on the command line."""
    types = _field_types()
    values = dict(defaults or {})
    if getattr(args, "config", None):
        values.update(read_config_file(args.config))
    values.update({k: v for k, v in vars(args).items() if k in types})
    return TrainConfig(**values)
