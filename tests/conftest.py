"""Shared test set-up: one torch thread per process, test groups for pytest-xdist, CUDA skips.

`./run test` runs pytest with two xdist workers on a 2-core machine; each process (and every
Jupyter kernel it starts, which inherits the environment) then uses one thread, since two
processes with two threads each fight over the cores and run many times slower. Tests that
start Jupyter kernels over TCP run in one xdist group, so no two of them race for a port.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("PYTHONHASHSEED", "0")

import pytest  # noqa: E402

# module -> xdist group (tests in one group run one after another on the same worker)
GROUPS = {
    "test_notebooks": "kernels",
    "test_autograder": "autograder",
    "test_autograder_hostile": "autograder",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        group = GROUPS.get(item.module.__name__.rsplit(".", 1)[-1])
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
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
