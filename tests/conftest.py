"""Shared test set-up: one torch thread per process, a headless browser, and CUDA tests skipped without a GPU.

`./run test` runs pytest with two xdist workers on a 2-core machine; each process (and every
Jupyter kernel it starts, which inherits the environment) then uses one thread, since two
processes with two threads each fight over the cores and run many times slower. `--dist loadfile`
keeps each file on one worker: the notebook kernels (TCP ports) and the autograder's sandbox
uids are then never used by two workers at once. Files are handed out longest first (tests/schedule.py).
"""

import os
import shutil

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("PYTHONHASHSEED", "0")

import pytest  # noqa: E402
from schedule import longest_files_first  # noqa: E402


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one torch thread is faster, and avoids threads spinning on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by Playwright (pages the autograder writes are opened in it); skips without them."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        pytest.skip("Debian's chromium is not installed (`./run test` installs it as root: apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable,
                                              args=["--no-sandbox"] if os.geteuid() == 0 else [])
        yield chromium
        chromium.close()


def pytest_collection_modifyitems(config, items):
    longest_files_first(items)  # ./run test's two workers start on the two real-course halves (tests/schedule.py)
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
