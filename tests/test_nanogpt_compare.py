"""The nanoGPT comparison script's own pieces: the data it hands nanoGPT, and how it reads nanoGPT's log."""

import pickle

import numpy as np
import pytest


@pytest.fixture(scope="module")
def compare():
    from benchmarks import nanogpt_compare  # the script as a module (the repository's root is on the tests' path)

    return nanogpt_compare


def test_exported_data_decodes_to_our_split_in_nanogpts_format(compare, tmp_path):
    from gptref import data

    folder, vocab = compare.export_dataset(tmp_path)
    meta = pickle.loads((folder / "meta.pkl").read_bytes())
    assert meta["vocab_size"] == vocab == len(meta["itos"]) == len(meta["stoi"])
    assert all(meta["stoi"][meta["itos"][i]] == i for i in range(vocab))
    for split in ("train", "val"):
        ids = np.fromfile(folder / f"{split}.bin", dtype=np.uint16)  # what nanoGPT's get_batch memory-maps
        text = data.corpus("shakespeare", split)
        assert len(ids) == len(text) and "".join(meta["itos"][int(i)] for i in ids[:5000]) == text[:5000]


def test_ms_per_iter_leaves_out_warmup_and_eval_iterations(compare):
    steady = {i: 10.0 + (i % 3) for i in range(40) if i >= 5 and i % 4}  # 10, 11, 12 ms
    log = "\n".join(f"iter {i}: loss 2.0000, time {steady.get(i, 1000.0):.2f}ms, mfu 1.00%" for i in range(40))
    assert compare.nanogpt_ms_per_iter(log, eval_interval=4) == pytest.approx(np.mean(list(steady.values())))
    with pytest.raises(SystemExit, match="no 'iter N"):
        compare.nanogpt_ms_per_iter("step 0: train loss 4.0, val loss 4.0", eval_interval=4)


def test_both_sides_get_the_same_settings(compare, tmp_path):
    settings = compare.PRESETS["cpu"]
    theirs = dict(a.removeprefix("--").split("=", 1) for a in compare.nanogpt_command(tmp_path, settings, tmp_path)[2:])
    ours = dict(a.removeprefix("--").split("=", 1) for a in compare.gptref_command(settings, tmp_path)[4:])
    from gptref.train.config import TrainConfig

    known = TrainConfig.__dataclass_fields__
    for key in ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "max_iters", "lr_decay_iters", "dropout",
                "learning_rate", "min_lr", "beta1", "beta2", "weight_decay", "grad_clip", "warmup_iters",
                "eval_interval", "eval_iters", "bias", "device"):
        assert key in known and theirs[key] == ours[key], key
    assert theirs["gradient_accumulation_steps"] == "1" and ours.get("grad_accum", "1") == "1"
    assert (theirs["compile"], ours["compile"]) == ("False", "false")


def test_threads_option_reaches_torch_in_both_sides_processes(compare, monkeypatch):
    import subprocess
    import sys

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # tests/conftest.py pins both to 1
        monkeypatch.delenv(name, raising=False)
    ask = [sys.executable, "-c", "import torch; print(torch.get_num_threads())"]
    for threads in (1, 2):  # torch caps the count at the cores (2 here)
        seen = subprocess.run(ask, env=compare.side_environment(threads), capture_output=True, text=True,
                              check=True).stdout
        assert seen.strip() == str(threads)  # what torch itself reads in a fresh process (nanoGPT's and ours alike)
    assert "OMP_NUM_THREADS" not in compare.side_environment(0)  # 0: torch's own default, nothing forced


def test_vary_seed_moves_nanogpts_fixed_seed_and_nothing_else(compare, tmp_path):
    import json
    import subprocess

    import torch

    # a stand-in for nanoGPT's train.py: seeds as nanoGPT does, imports model.py from its own folder, reports argv
    (tmp_path / "model.py").write_text("WHERE = 'the stand-in model.py'\n")
    (tmp_path / "train.py").write_text(
        "import json, sys, torch\nfrom model import WHERE\nseed_offset = 0\ntorch.manual_seed(1337 + seed_offset)\n"
        "print(json.dumps([torch.rand(4).tolist(), WHERE, sys.argv[1:]]))\n")
    settings, work = compare.PRESETS["cpu"], tmp_path / "work"  # runs from a work folder, as main() does
    work.mkdir()
    seen = {}
    for seed in (1337, 1339):
        cmd = compare.nanogpt_command(tmp_path, settings, tmp_path / "out", seed)
        seen[seed] = json.loads(subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=True).stdout)
    for seed, (draws, where, _) in seen.items():
        assert draws == torch.rand(4, generator=torch.Generator().manual_seed(seed)).tolist(), seed
        assert where == "the stand-in model.py"
    assert seen[1337][2] == seen[1339][2]  # the same settings reach train.py either way
    assert any(a.startswith("--max_iters=") for a in seen[1339][2])


def test_each_seed_races_to_its_own_nanogpt_final_loss(compare):
    finals = [1.9431, 1.9208, 1.9188]  # nanoGPT's printed finals for seeds 1337, 1338, 1339
    assert compare.race_targets(finals, vary_seed=True) == finals
    assert compare.race_targets([1.9431] * 3, vary_seed=False) == [1.9431] * 3
    assert compare.race_targets([1.95, 1.93, 1.94], vary_seed=False) == [1.94] * 3  # one seed: its median
    evals = [(30.0, 0, 4.4), (61.0, 320, 1.93)]  # a run whose last evaluation prints 1.93
    reached = [compare.time_to_loss(evals, goal) for goal in compare.race_targets(finals, vary_seed=True)]
    assert reached == [61.0, None, None]  # below seed 1337's final, above the others'
