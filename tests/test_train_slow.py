"""End-to-end tests of gptref.train (slow): bit-identical resume, DDP vs one process, the tiny homework."""

import json
import socket
import subprocess
import sys

import pytest
import torch

from gptref.train import load_config, train
from gptref.train.checkpoint import load_checkpoint

TINY = dict(n_layer=1, n_head=2, n_embd=32, block_size=16, batch_size=4, max_iters=12, warmup_iters=2,
            eval_interval=4, eval_iters=2, log_interval=3, progress=False)


@pytest.mark.slow
def test_resume_is_bit_identical(tmp_path):
    opts = dict(TINY, dropout=0.1)  # dropout draws from torch's RNG, so its state must be restored too
    full = train(load_config(out_dir=str(tmp_path / "full"), **opts))
    part = train(load_config(out_dir=str(tmp_path / "part"), stop_at=7, **opts))
    assert part.iters_done == 7 and len(part.history["train"]) == 7
    resumed = train(load_config(out_dir=str(tmp_path / "part"), resume=True, **opts))
    assert resumed.history["train"] == full.history["train"]  # exact float equality, every step
    assert resumed.history["eval"] == full.history["eval"]
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["torch", "gptref"])
def test_ddp_two_processes_match_one(tmp_path, impl):
    """torchrun, 2 ranks x 2 rows = one process x 4 rows; with gptref's DataParallel both also accumulate 2
    micro-steps, in small buckets (no_sync and the hooks)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    opts = dict(TINY, max_iters=6, eval_interval=3)
    if impl == "gptref":
        opts["grad_accum"] = 2
    args = [f"--{k}={v}" for k, v in dict(opts, batch_size=2, ddp_impl=impl, ddp_bucket_mb=0.01).items()]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
           "-m", "gptref", "train", f"--out_dir={tmp_path / 'ddp'}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = train(load_config(out_dir=str(tmp_path / "one"), **opts))  # global batch 4 = 2 ranks x 2
    ddp = load_checkpoint(tmp_path / "ddp" / "ckpt.pt")
    for (s1, t1, v1), (s2, t2, v2) in zip(single.history["eval"], ddp["history"]["eval"]):
        assert s1 == s2 and t1 == pytest.approx(t2, abs=1e-5) and v1 == pytest.approx(v2, abs=1e-5)
    assert len(ddp["history"]["eval"]) == len(single.history["eval"]) == 3
    ref = single.model.state_dict()
    for k, v in ddp["model"].items():
        torch.testing.assert_close(v, ref[k], atol=1e-5, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["gpt2", "baichuan2"])
def test_tiny_homework_writes_the_report(tmp_path, arch):
    out = tmp_path / "hw"
    proc = subprocess.run([sys.executable, "-m", "gptref", "homework", "--tiny", "--no_progress", "--out", str(out),
                           "--arch", arch], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("report.md", "metrics.json", "samples.txt", "config.json", "loss_curves.png"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    pre = metrics["phases"]["pretrain (Shakespeare)"]
    assert pre["final_val_loss"] < metrics["chance_loss"]  # even 20 steps beat the uniform guess
    assert metrics["milton_val_after"] < metrics["milton_val_before"]
    assert (out / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert metrics["arch"] == arch
    model_args = torch.load(out / "finetune" / "ckpt.pt", weights_only=False)["model_args"]
    if arch == "baichuan2":  # the fine-tuned checkpoint rebuilds Baichuan 2's architecture
        assert {k: model_args[k] for k in ("positions", "norm", "mlp", "head", "z_loss")} == dict(
            positions="alibi", norm="rmsnorm", mlp="swiglu", head="normhead", z_loss=2e-4)
    else:
        assert model_args.get("positions", "learned") == "learned" and model_args.get("head", "linear") == "linear"


@pytest.mark.slow
def test_compiled_bf16_path_tracks_eager_float32(tmp_path, monkeypatch):
    """The --device cuda recipe (torch.compile + bf16 autocast), run on the CPU: same losses within bf16 noise."""
    entered = []

    class RecordingAutocast(torch.autocast):
        def __enter__(self):
            entered.append(self.fast_dtype)
            return super().__enter__()

    opts = dict(TINY, max_iters=8, eval_interval=4)
    eager = train(load_config(out_dir=str(tmp_path / "eager"), compile="false", dtype="float32", **opts))
    compiled = []
    real_compile = torch.compile

    def recording_compile(model, *args, **kwargs):
        compiled.append(type(model).__name__)
        return real_compile(model, *args, **kwargs)

    monkeypatch.setattr(torch, "autocast", RecordingAutocast)
    monkeypatch.setattr(torch, "compile", recording_compile)
    fast = train(load_config(out_dir=str(tmp_path / "fast"), compile="true", dtype="bfloat16", **opts))
    monkeypatch.undo()
    assert len(entered) >= 8 and set(entered) == {torch.bfloat16}  # every step ran under bf16 autocast
    assert compiled == ["GPT"]  # the model went through torch.compile
    assert not any(k.startswith("_orig_mod.") for k in load_checkpoint(fast.checkpoint)["model"])
    for (s1, t1, v1), (s2, t2, v2) in zip(eager.history["eval"], fast.history["eval"]):
        assert s1 == s2 and t2 == pytest.approx(t1, abs=0.05) and v2 == pytest.approx(v1, abs=0.05)
    assert fast.history["eval"][-1][2] < fast.history["eval"][0][2]
