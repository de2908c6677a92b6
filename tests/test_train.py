"""Fast tests of gptref.train: schedule, config, token files, checkpoints, NaN detection, SFT masking."""

import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gptref.train import TrainingError, load_config, train
from gptref.train.checkpoint import load_checkpoint, previous_path, save_checkpoint
from gptref.train.config import read_config_file
from gptref.train.schedule import lr_at
from gptref.train.sft import IGNORE, encode_example

TINY = dict(n_layer=1, n_head=2, n_embd=32, block_size=16, batch_size=4, max_iters=6, warmup_iters=2,
            eval_interval=3, eval_iters=2, log_interval=2, progress=False)


def test_schedule_matches_closed_form_and_torch_cosine():
    lr, lo, warm, decay = 1e-3, 1e-4, 10, 100
    for step in range(0, 120):
        if step < warm:
            want = lr * (step + 1) / warm
        elif step >= decay:
            want = lo
        else:
            want = lo + (lr - lo) * (1 + math.cos(math.pi * (step - warm) / (decay - warm))) / 2
        assert lr_at(step, lr, lo, warm, decay) == pytest.approx(want, rel=1e-12)
    # the cosine part against torch's own (recursive) CosineAnnealingLR
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=decay - warm, eta_min=lo)
    for step in range(warm, decay):
        assert lr_at(step, lr, lo, warm, decay) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        opt.step()
        sched.step()


def test_config_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("learning_rat = 1e-3\n")
    with pytest.raises(ValueError, match="unknown option 'learning_rat'.*did you mean 'learning_rate'"):
        read_config_file(bad)
    bad.write_text("n_layer = 'four'\n")
    with pytest.raises(ValueError, match="n_layer.*must be a int"):
        read_config_file(bad)
    with pytest.raises(ValueError, match="option n_head must be > 0, got 0"):
        load_config(n_head=0)
    with pytest.raises(ValueError, match="option dataset must be one of"):
        load_config(dataset="hamlet")
    with pytest.raises(ValueError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    good = tmp_path / "good.json"
    good.write_text('{"n_layer": 2, "learning_rate": 1}')
    cfg = load_config(good, n_head=2)
    assert (cfg.n_layer, cfg.learning_rate, cfg.n_head) == (2, 1.0, 2)


def test_cli_rejects_unknown_and_bad_options(capsys):
    from gptref.__main__ import main

    with pytest.raises(SystemExit) as e:
        main(["train", "--lr=3", "--max_iters=1", "--save_checkpoints=false", "--progress=false"])
    assert e.value.code == 2 and "unrecognized arguments: --lr=3" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--n_layer=x", "--max_iters=1"])
    assert "argument --n_layer: invalid int value" in capsys.readouterr().err
    assert main(["train", "--dropout=1.5", "--max_iters=1", "--save_checkpoints=false", "--progress=false"]) == 2
    assert "option dropout must be in [0, 1)" in capsys.readouterr().err


def test_token_files_are_uint16_memmaps_written_once(tmp_path):
    from gptref import data
    from gptref.tokenizers import get_tokenizer
    from gptref.train.prepare import token_file

    tokens = token_file("milton", "val", cache=tmp_path)
    assert isinstance(tokens, np.memmap) and tokens.dtype == np.uint16
    text = data.corpus("milton", "val")
    assert get_tokenizer("char").decode(tokens[:2000]) == text[:2000] and len(tokens) == len(text)
    from gptref.train.prepare import tokens_dir

    path = tokens_dir(get_tokenizer("char"), tmp_path) / "milton-val.bin"
    before = path.stat().st_mtime_ns
    os.utime(path, ns=(before - 10**9, before - 10**9))  # an older mtime: a rewrite would change it
    before = path.stat().st_mtime_ns
    again = token_file("milton", "val", cache=tmp_path)
    assert path.stat().st_mtime_ns == before
    assert np.array_equal(again, tokens)


def test_kill_during_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_checkpoint({"step": 1, "w": torch.arange(4.0)}, path)
    save_checkpoint({"step": 2, "w": torch.arange(4.0) * 2}, path)
    assert load_checkpoint(previous_path(path))["step"] == 1

    real_replace = os.replace

    def crash(src, dst):  # the process dies just before the new file takes the checkpoint's name
        if os.fspath(dst) == os.fspath(path):
            raise KeyboardInterrupt("killed")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"step": 3, "w": torch.zeros(4)}, path)
    monkeypatch.setattr(os, "replace", real_replace)
    state = load_checkpoint(path)
    assert state["step"] == 2 and torch.equal(state["w"], torch.arange(4.0) * 2)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] in (
        [], [".ckpt.pt.prev-tmp-%d" % os.getpid()])

    def die_mid_write(obj, f, *a, **k):  # a kill half-way through writing the temp file
        f.write(b"partial")
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(torch, "save", die_mid_write)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"step": 4}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 2


def test_refuses_to_overwrite_a_checkpoint(tmp_path):
    (tmp_path / "ckpt.pt").write_bytes(b"the user's model")
    with pytest.raises(FileExistsError, match="--resume.*--overwrite"):
        train(load_config(out_dir=str(tmp_path), **TINY))
    assert (tmp_path / "ckpt.pt").read_bytes() == b"the user's model"


def test_nan_loss_names_step_and_last_checkpoint(tmp_path, monkeypatch):
    real_ce = F.cross_entropy
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        out = real_ce(*args, **kwargs)
        if not torch.is_grad_enabled():  # evaluation
            return out
        calls["n"] += 1
        return out * float("nan") if calls["n"] > 25 else out  # training steps 0..24 are fine

    monkeypatch.setattr(F, "cross_entropy", poisoned)
    cfg = load_config(out_dir=str(tmp_path), **dict(TINY, max_iters=40, eval_interval=10))
    with pytest.raises(TrainingError) as e:
        train(cfg)
    msg = str(e.value)
    assert "loss is nan at step" in msg and str(tmp_path / "ckpt.pt") in msg
    step = int(msg.split("at step ")[1].split(";")[0])
    assert step == 25


def test_sft_loss_counts_only_response_tokens():
    from gptref.gpt import GPT, GPTConfig

    g = torch.Generator().manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=12, n_layer=1, n_head=2, n_embd=16))
    xs, ys, refs = [], [], []
    for prompt_len, resp_len in [(5, 3), (20, 4), (2, 2)]:
        prompt = torch.randint(1, 20, (prompt_len,), generator=g).tolist()
        resp = torch.randint(1, 20, (resp_len,), generator=g).tolist()
        x, y = encode_example(prompt, resp, block_size=12)
        seq = (prompt + resp)[-13:]
        assert x == (seq[:-1] + [0] * 12)[:12]
        xs.append(x)
        ys.append(y)
        refs.append((len(seq) - resp_len - 1, resp))  # response tokens are predicted from these positions on
    x, y = torch.tensor(xs), torch.tensor(ys)
    logits, loss = model(x, y)
    picked_logits = torch.cat([logits[b, start : start + len(r)] for b, (start, r) in enumerate(refs)])
    picked_targets = torch.tensor([t for _, r in refs for t in r])
    assert torch.allclose(loss, F.cross_entropy(picked_logits, picked_targets), atol=1e-6)
    assert (y != IGNORE).sum() == sum(len(r) for _, r in refs)


def test_bpe_option_trains_and_fine_tuning_keeps_the_checkpoints_tokenizer(tmp_path):
    """--tokenizer bpe end to end: the token files round-trip, and fine-tuning reuses the checkpoint's BPE."""
    import shutil

    from gptref import data
    from gptref.tokenizers import get_tokenizer
    from gptref.train.prepare import token_file

    cache = tmp_path / "cache"
    tok = get_tokenizer("bpe", 300, cache)
    assert len(tok) == 300
    ids = token_file("milton", "val", tok, cache)
    text = data.corpus("milton", "val")
    assert tok.decode(ids) == text and len(ids) < 0.8 * len(text)  # a lossless round trip that compresses
    opts = dict(n_layer=1, n_head=2, n_embd=32, block_size=16, batch_size=4, max_iters=6, warmup_iters=1,
                eval_interval=3, eval_iters=2, log_interval=3, progress=False)
    pre = train(load_config(out_dir=str(tmp_path / "pre"), tokenizer="bpe", bpe_vocab_size=300, **opts), cache=cache)
    assert pre.model.lm_head.weight.shape[0] == 300
    shutil.rmtree(cache / "tokens")  # the checkpoint must carry its tokenizer (portable to another machine)
    with pytest.raises(ValueError, match="checkpoint was trained with a 'bpe' tokenizer"):
        train(load_config(out_dir=str(tmp_path / "bad"), init_from=str(pre.checkpoint), dataset="milton",
                          tokenizer="char", **opts), cache=cache)
    fine = train(load_config(out_dir=str(tmp_path / "fine"), init_from=str(pre.checkpoint), dataset="milton",
                             **opts), cache=cache)
    assert fine.tokenizer.spec() == tok.spec()
    from gptref.train.prepare import tokens_dir

    # fine-tuning encoded Milton with the checkpoint's BPE, and nothing with characters
    assert sorted(d.name for d in (cache / "tokens").iterdir()) == [tokens_dir(tok, cache).name]
    assert (tokens_dir(tok, cache) / "milton-train.bin").exists()
    milton = token_file("milton", "train", fine.tokenizer, cache)
    assert data.corpus("milton", "train").startswith(fine.tokenizer.decode(milton[:500]))
    assert int(np.max(milton)) >= 256  # merged tokens, not the byte-level or character alphabet


def test_shipped_configs_are_valid_and_the_gpu_one_is_nanogpts_shakespeare_char():
    from pathlib import Path

    configs = Path(__file__).resolve().parents[1] / "gptref" / "train" / "configs"
    for path in configs.glob("*.toml"):
        if path.name.endswith("_expected.toml"):  # the table of measured results, not a training config
            continue
        load_config(path)  # every key known, every value of the right type and range
    gpu = load_config(configs / "homework_gpu.toml")
    # the GPU comparison: nanoGPT's config/train_shakespeare_char.py
    assert (gpu.n_layer, gpu.n_head, gpu.n_embd, gpu.block_size, gpu.batch_size, gpu.max_iters) == (
        6, 6, 384, 256, 64, 5000)
    assert (gpu.dropout, gpu.learning_rate, gpu.min_lr, gpu.beta2, gpu.warmup_iters) == (0.2, 1e-3, 1e-4, 0.99, 100)


def test_speed_leaves_out_the_warmup_steps(tmp_path, monkeypatch):
    """A slow first step (torch.compile, first allocations) must not count in it/s and tokens/s. The loop reads a
    virtual clock that only the model's forward moves (10 ms a call, 1 s more in the first training step), so the
    figure does not depend on how busy the machine is."""
    import types

    from gptref.gpt import GPT
    from gptref.train import loop

    real_forward, calls, clock = GPT.forward, [], [0.0]

    def forward(self, *args, **kwargs):
        calls.append(1)
        clock[0] += 0.01
        if len(calls) == 1 + 2 * TINY["eval_iters"]:  # the first training step, after the step-0 evaluation
            clock[0] += 1.0
        return real_forward(self, *args, **kwargs)

    monkeypatch.setattr(GPT, "forward", forward)
    monkeypatch.setattr(loop, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    result = train(load_config(out_dir=str(tmp_path / "run"), **dict(TINY, max_iters=12, eval_interval=12)))
    assert result.iters_per_s > 20, result.iters_per_s  # with the 1 s step counted it would be under 12
    assert result.tokens_per_s == pytest.approx(result.iters_per_s * TINY["batch_size"] * TINY["block_size"])


def test_make_optimizer_decays_matrices_only_and_steps_like_adamw():
    """One step of make_optimizer equals torch's plain AdamW with decay on the 2-D weights and none on the rest."""
    from gptref.gpt import GPT, GPTConfig
    from gptref.train.optim import make_optimizer

    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)))
    idx = torch.randint(0, 11, (2, 8), generator=torch.Generator().manual_seed(1))
    ours = make_optimizer(models[0], 1e-2, 0.5, (0.9, 0.95), "cpu")
    params = list(models[1].parameters())
    ref = torch.optim.AdamW([{"params": [p for p in params if p.dim() == 2], "weight_decay": 0.5},
                             {"params": [p for p in params if p.dim() != 2], "weight_decay": 0.0}],
                            lr=1e-2, betas=(0.9, 0.95), foreach=False)
    for model, opt in zip(models, (ours, ref)):
        model(idx, idx)[1].backward()
        opt.step()
    for (name, a), b in zip(models[0].named_parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b, msg=lambda m: f"{name}: {m}")


def test_validation_loss_is_cross_entropy_without_the_max_z_term():
    """estimate_loss reports cross-entropy alone, so a z_loss run's val loss compares with a GPT-2 run's."""
    import contextlib

    from gptref.gpt import GPT, GPTConfig
    from gptref.train.config import TrainConfig
    from gptref.train.loop import estimate_loss

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=13, block_size=8, n_layer=1, n_head=2, n_embd=16, head="normhead", z_loss=0.5))
    batches = [(torch.randint(0, 13, (3, 8)), torch.randint(0, 13, (3, 8))) for _ in range(2)]

    class Fixed:  # the two batches above, in order, whatever the generator
        def __init__(self):
            self.k = 0

        def sample(self, rng, rows):
            self.k += 1
            return batches[self.k - 1]

    cfg = TrainConfig(eval_iters=2, batch_size=3)
    got = estimate_loss(model, {"val": Fixed()}, cfg, "cpu", contextlib.nullcontext())["val"]
    with torch.no_grad():
        ce = [F.cross_entropy(model(x)[0].flatten(0, 1), y.flatten()).item() for x, y in batches]
        with_z = [model(x, y)[1].item() for x, y in batches]
    assert got == pytest.approx(sum(ce) / 2, abs=1e-6)
    assert abs(sum(with_z) / 2 - got) > 1e-4  # the z term is visible at this weight: the test can tell them apart
