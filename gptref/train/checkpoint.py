"""Checkpoints written atomically (temp file + fsync + os.replace), the previous one kept as *.prev.pt."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def previous_path(path: str | os.PathLike) -> Path:
    """Where the checkpoint replaced by the last save is kept: ckpt.pt -> ckpt.prev.pt."""
    p = Path(path)
    return p.with_name(p.stem + ".prev" + p.suffix)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write state to path so that a crash at any moment leaves a complete checkpoint at path (or its .prev)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():  # keep the old one as .prev; path stays complete throughout
            prev_tmp = path.with_name(f".{path.name}.prev-tmp-{os.getpid()}")
            if prev_tmp.exists():
                prev_tmp.unlink()
            try:
                os.link(path, prev_tmp)
            except OSError:
                import shutil

                shutil.copy2(path, prev_tmp)
            os.replace(prev_tmp, previous_path(path))
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint onto the CPU; a missing or unreadable file names itself and its .prev fallback."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        prev = previous_path(path)
        hint = f"; the previous checkpoint {prev} may still be good" if prev.exists() else ""
        raise ValueError(f"checkpoint {path} cannot be read ({e.__class__.__name__}: {e}){hint}") from e
