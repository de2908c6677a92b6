"""Data parallelism in `python -m gptref train` on 2 CPU processes: torch's DDP, gptref's DataParallel, and
gptref's with the ZeRO-1 optimizer (zero1), side by side on the same small run.

    python benchmarks/ddp_compare.py [--iters 60] [--repeats 3] [--n_layer 4 --n_embd 128 ...]

Each variant is `torchrun --nproc_per_node=2 -m gptref train` with the homework's model (4 layers, 4 heads, 128
wide, block 64) unless told otherwise, 6 rows per rank, one thread per rank, no checkpoints; the variants
alternate, `--repeats` times. It reports each run's it/s (the loop's own: first 5 steps and evaluation left out)
and each rank's optimizer state in MiB, and saves them with gptref.bench.record in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gptref.bench import record  # noqa: E402

VARIANTS = {
    "torch DDP": dict(ddp_impl="torch"),
    "gptref DataParallel": dict(ddp_impl="gptref"),
    "gptref DataParallel + zero1": dict(ddp_impl="gptref", zero1=True),
    "torch DDP + zero1": dict(ddp_impl="torch", zero1=True),
}
RESULT = re.compile(r"([\d.]+) it/s, .*optimizer state here ([\d.]+) MiB")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_variant(options: dict, out_dir: Path) -> dict:
    """One torchrun of 2 ranks: {"it_per_s": rank 0's, "state_mib": [per rank]}."""
    args = [f"--{k}={v}" for k, v in options.items()]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
           "-m", "gptref", "train", f"--out_dir={out_dir}", *args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    found = RESULT.findall(proc.stdout)
    if len(found) != 2:
        raise RuntimeError(f"expected one result line per rank, got:\n{proc.stdout[-2000:]}")
    return {"it_per_s": float(found[0][0]), "state_mib": [float(mib) for _, mib in found]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n_layer", type=int, default=4)
    parser.add_argument("--n_head", type=int, default=4)
    parser.add_argument("--n_embd", type=int, default=128)
    parser.add_argument("--block_size", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=6, help="rows per rank and step")
    args = parser.parse_args()
    base = dict(n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd, block_size=args.block_size,
                batch_size=args.batch_size, max_iters=args.iters, eval_interval=args.iters, eval_iters=1,
                log_interval=args.iters, warmup_iters=10, threads=1, save_checkpoints=False, progress=False)
    runs: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as work:
        for repeat in range(args.repeats):
            for name, options in VARIANTS.items():
                result = run_variant({**base, **options}, Path(work) / f"{repeat}-{len(runs[name])}")
                runs[name].append(result)
                print(f"[{repeat + 1}/{args.repeats}] {name:<28} {result['it_per_s']:7.2f} it/s, "
                      f"optimizer state per rank {result['state_mib']} MiB", flush=True)
    summary = {}
    for name, results in runs.items():
        speeds = [r["it_per_s"] for r in results]
        summary[name] = {"median_it_per_s": statistics.median(speeds),
                         "median_ms_per_iter": 1000 / statistics.median(speeds), "it_per_s": speeds,
                         "state_mib_per_rank": results[0]["state_mib"], "options": VARIANTS[name]}
        print(f"{name:<28} median {summary[name]['median_ms_per_iter']:6.1f} ms/iter "
              f"({speeds}), optimizer state per rank {results[0]['state_mib']} MiB")
    kept = record.save("ddp_compare", {"settings": base, "variants": summary})
    print(f"saved {kept}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
