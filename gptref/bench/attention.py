"""attention on a CUDA GPU: our Triton flash kernel against torch SDPA (flash, cuDNN) and naive.

For each T, head dim, causal or not: TFLOP/s (forward, or forward+backward with --backward) and
peak extra memory (torch.cuda.max_memory_allocated) of each implementation, same inputs, same
run. Shapes follow the FlashAttention-2 paper: B * T = --tokens, H * D = --d-model. Needs CUDA
(and triton for ours); on a machine without a GPU it says so and exits with status 2.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ts", default="1024,2048,4096,8192,16384", help="comma-separated sequence lengths")
    parser.add_argument("--head-dims", default="64,128")
    parser.add_argument("--tokens", type=int, default=16384, help="B * T (default 16384)")
    parser.add_argument("--d-model", type=int, default=2048, help="H * D (default 2048)")
    parser.add_argument("--dtype", choices=["bfloat16", "float16"], default="bfloat16")
    parser.add_argument("--backward", action="store_true", help="time forward + backward (FLOPs x 3.5)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--csv", default="benchmarks/attention_gpu.csv", help="where to save the table")


def _implementations():
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from gptref.attention import causal_mask, scaled_dot_product_attention
    from gptref.flash import flash_attention_triton

    def sdpa(backend):
        def f(q, k, v, causal):
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return f

    def naive(q, k, v, causal):
        mask = causal_mask(q.shape[-2], k.shape[-2], device=q.device) if causal else None
        return scaled_dot_product_attention(q, k, v, mask)[0]

    return {
        "ours (triton)": flash_attention_triton,
        "sdpa flash": sdpa(SDPBackend.FLASH_ATTENTION),
        "sdpa cudnn": sdpa(SDPBackend.CUDNN_ATTENTION),
        "naive": naive,
    }


def _measure(fn, q, k, v, causal, backward, repeats):
    """(milliseconds per call, peak extra bytes) of fn, or raise."""
    import torch

    def step():
        out = fn(q, k, v, causal)
        if backward:
            out.backward(torch.ones_like(out))
            q.grad = k.grad = v.grad = None

    step()  # compile / autotune / warm up
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        step()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / repeats, peak


def run(args: argparse.Namespace) -> int:
    import torch

    if not torch.cuda.is_available():
        print("bench attention needs a CUDA GPU; torch.cuda.is_available() is False on this machine. "
              "For the CPU comparison run `python -m gptref bench flash`.", file=sys.stderr)
        return 2
    from tqdm import tqdm

    dtype = getattr(torch, args.dtype)
    impls = _implementations()
    configs = [(T, D, c) for D in map(int, args.head_dims.split(",")) for c in (False, True)
               for T in map(int, args.ts.split(","))]
    rows = []
    print(f"{torch.cuda.get_device_name()}, {args.dtype}, {'forward+backward' if args.backward else 'forward'}, "
          f"B*T={args.tokens}, H*D={args.d_model}")
    for T, D, causal in tqdm(configs, desc="configs"):
        B, H = max(1, args.tokens // T), args.d_model // D
        g = torch.Generator(device="cuda").manual_seed(0)
        q, k, v = (torch.randn(B, H, T, D, device="cuda", dtype=dtype, generator=g, requires_grad=args.backward)
                   for _ in range(3))
        flops = 4 * B * H * T * T * D * (0.5 if causal else 1.0) * (3.5 if args.backward else 1.0)
        for name, fn in impls.items():
            try:
                ms, peak = _measure(fn, q, k, v, causal, args.backward, args.repeats)
                rows.append(dict(impl=name, T=T, D=D, causal=causal, B=B, H=H, ms=round(ms, 4),
                                 tflops=round(flops / ms / 1e9, 2), peak_mib=round(peak / 2**20, 1), note=""))
            except Exception as e:  # OOM for naive at long T, a backend that does not support the shape, ...
                torch.cuda.empty_cache()
                rows.append(dict(impl=name, T=T, D=D, causal=causal, B=B, H=H, ms=math.nan, tflops=math.nan,
                                 peak_mib=math.nan, note=f"{type(e).__name__}: {str(e).splitlines()[0][:60]}"))
        del q, k, v
        torch.cuda.empty_cache()

    print(f"{'impl':<14} {'T':>6} {'D':>4} {'causal':>6} {'ms':>9} {'TFLOP/s':>8} {'peak MiB':>9}  note")
    for r in rows:
        print(f"{r['impl']:<14} {r['T']:>6} {r['D']:>4} {str(r['causal']):>6} {r['ms']:>9.3f} {r['tflops']:>8.1f} "
              f"{r['peak_mib']:>9.1f}  {r['note']}")
    os.makedirs(os.path.dirname(os.path.abspath(args.csv)), exist_ok=True)
    with open(args.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"table saved to {args.csv}")
    return 0
