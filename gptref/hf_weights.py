"""Reading Hugging Face checkpoints (a save_pretrained folder, a state dict or a model) for
GPT.from_hf_gpt2 and Bert.from_hf_bert, without needing transformers at load time."""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import torch
import torch.nn as nn


def read_hf_source(source: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(config dict, possibly empty; state dict) from a folder path, a state dict or an nn.Module."""
    if isinstance(source, (str, os.PathLike)):
        return read_hf_dir(source)
    if isinstance(source, nn.Module):
        config = getattr(source, "config", None)
        return (config.to_dict() if config is not None else {}), source.state_dict()
    if isinstance(source, Mapping):
        return {}, dict(source)
    raise ValueError(f"source must be a path, a state dict or a model, got {type(source).__name__}")


def read_hf_dir(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """config.json (if any) and the weights of a save_pretrained directory."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise ValueError(f"path {path!r} is not a directory")
    config: dict[str, Any] = {}
    if os.path.exists(os.path.join(path, "config.json")):
        with open(os.path.join(path, "config.json")) as f:
            config = json.load(f)
    st = os.path.join(path, "model.safetensors")
    if os.path.exists(st):
        from safetensors.torch import load_file

        return config, load_file(st)
    bin_path = os.path.join(path, "pytorch_model.bin")
    if os.path.exists(bin_path):
        return config, torch.load(bin_path, map_location="cpu", weights_only=True)
    raise ValueError(f"path {path!r} holds neither model.safetensors nor pytorch_model.bin")
