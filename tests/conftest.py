"""Shared test set-up: deterministic seeds, and skipping CUDA tests on machines without a GPU."""

import os

import pytest

os.environ.setdefault("PYTHONHASHSEED", "0")


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # torch missing or broken: CUDA tests cannot run either
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none on this machine)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
