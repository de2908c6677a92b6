"""flash attention (plain torch, CPU) against naive attention: time at one T, peak memory as T grows.

Time: best of --repeats forward passes of gptref.attention.scaled_dot_product_attention (naive,
builds the (T, T) weights) and gptref.flash.flash_attention, same inputs, same run.
Peak memory: gptref.flash.memory.track_allocations counts the bytes of every tensor allocated by
the call and still alive (a dispatch-mode allocation tracker; CPU torch has no
max_memory_allocated), so it is the extra memory beyond the inputs. With --rss the largest T is
also measured as the growth of the peak resident set size (VmHWM, reset through
/proc/self/clear_refs) of a fresh subprocess, which also sees memory outside tensors.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch

_RSS_SCRIPT = r"""
import json, sys, torch
from gptref.attention import scaled_dot_product_attention
from gptref.flash import flash_attention

def vm(field):  # from /proc/self/status, in bytes; VmHWM is this process's peak RSS since exec/reset
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

kind, B, H, T, D, bq, bk = sys.argv[1], *map(int, sys.argv[2:])
torch.manual_seed(0)
q, k, v = (torch.randn(B, H, T, D) for _ in range(3))
small = torch.randn(1, 1, 64, D)  # warm up the op kernels on a tiny input first
scaled_dot_product_attention(small, small, small); flash_attention(small, small, small)
try:  # writing 5 to clear_refs resets the peak (VmHWM) to the current RSS
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass
before = max(vm("VmRSS"), vm("VmHWM"))
if kind == "naive":
    out = scaled_dot_product_attention(q, k, v)[0]
else:
    out = flash_attention(q, k, v, block_q=bq, block_k=bk)
print(json.dumps({"growth": vm("VmHWM") - before}))
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--time-t", type=int, default=2048, help="sequence length of the timing (default 2048)")
    parser.add_argument("--memory-ts", default="512,1024,2048,4096,8192", help="comma-separated T for the memory curve")
    parser.add_argument("--block-q", type=int, default=64,
                        help="query tile (flash_attention's default 64; 256 is faster on a CPU)")
    parser.add_argument("--block-k", type=int, default=64,
                        help="key tile (flash_attention's default 64; 256 is faster on a CPU)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--plot", default="benchmarks/flash_memory.png", help="where to save the memory plot")
    parser.add_argument("--rss", action="store_true", help="cross-check the largest T with subprocess peak RSS")
    parser.add_argument("--no-show", action="store_true", help="save the plot without opening a window")


def _best_times(fns, repeats: int) -> list[float]:
    for fn in fns:
        fn()  # warm-up
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def _peak_bytes(fn) -> int:
    from gptref.flash.memory import track_allocations

    with track_allocations() as mem:
        out = fn()
        del out
    return mem.peak


def _rss_growth(kind: str, a: argparse.Namespace, T: int) -> int:
    argv = [sys.executable, "-c", _RSS_SCRIPT, kind,
            str(a.batch), str(a.heads), str(T), str(a.head_dim), str(a.block_q), str(a.block_k)]
    res = subprocess.run(argv, capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(res.stdout.strip().splitlines()[-1])["growth"]


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from gptref.attention import scaled_dot_product_attention
    from gptref.flash import flash_attention

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    B, H, D, bq, bk = args.batch, args.heads, args.head_dim, args.block_q, args.block_k
    naive = lambda q, k, v: scaled_dot_product_attention(q, k, v)[0]  # noqa: E731
    flash = lambda q, k, v: flash_attention(q, k, v, block_q=bq, block_k=bk)  # noqa: E731
    print(f"shape (B={B}, H={H}, T, D={D}), float32, blocks {bq}x{bk}, {torch.get_num_threads()} threads")

    T = args.time_t
    q, k, v = (torch.randn(B, H, T, D) for _ in range(3))
    # interleaved, so that both see the same load on a shared machine; best of --repeats each
    t_naive, t_flash = _best_times([lambda: naive(q, k, v), lambda: flash(q, k, v)], args.repeats)
    print(f"time at T={T}: naive {t_naive * 1e3:.1f} ms, flash {t_flash * 1e3:.1f} ms, "
          f"flash/naive = {t_flash / t_naive:.2f}x (target <= 3x)")

    Ts = [int(t) for t in args.memory_ts.split(",")]
    rows = []
    for T in tqdm(Ts, desc="peak memory", unit="T"):
        qkv = [torch.randn(B, H, T, D) for _ in range(3)]
        rows.append((T, _peak_bytes(lambda: naive(*qkv)), _peak_bytes(lambda: flash(*qkv))))
    print(f"{'T':>6} {'naive MiB':>10} {'flash MiB':>10} {'naive/flash':>12}")
    for T, mn, mf in rows:
        print(f"{T:>6} {mn / 2**20:>10.2f} {mf / 2**20:>10.2f} {mn / mf:>12.1f}")
    T, mn, mf = rows[-1]
    print(f"peak memory at T={T}: flash uses {mf / mn:.4f} of naive's (target <= 0.1), "
          f"ratio naive/flash = {mn / mf:.1f}")
    if args.rss:
        rn, rf = _rss_growth("naive", args, T), _rss_growth("flash", args, T)
        print(f"cross-check, peak RSS growth in a subprocess at T={T}: naive {rn / 2**20:.1f} MiB, "
              f"flash {rf / 2**20:.1f} MiB (includes allocator slack; small values are noisy)")

    import matplotlib
    import matplotlib.ticker

    if args.no_show:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [r[0] for r in rows]
    ax.loglog(xs, [r[1] / 2**20 for r in rows], "o-", label="naive (materializes T x T)")
    ax.loglog(xs, [r[2] / 2**20 for r in rows], "s-", label=f"flash, tiled {bq}x{bk}")
    ax.set_xticks(xs, [str(t) for t in xs])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("sequence length T")
    ax.set_ylabel("peak extra memory (MiB)")
    ax.set_title(f"attention forward, B={B} H={H} D={D}, float32")
    ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.plot)), exist_ok=True)
    fig.savefig(args.plot, dpi=120)
    print(f"plot saved to {args.plot}")
    if not args.no_show and matplotlib.get_backend().lower() != "agg":
        plt.show()
    return 0
