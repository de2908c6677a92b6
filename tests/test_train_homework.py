"""The homework's expected results live in one table, gptref/train/configs/homework_expected.toml.

Day 9 reads it at run time and docs/homework.md quotes it; these tests keep the table honest: it must have been
measured with the configs as they are now (a hash of both files), the documentation must quote it, and
(GPTREF_FULL_HOMEWORK=1, about 5 minutes) a real `./run homework` must reproduce it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "gptref" / "train" / "configs"


def _toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads(path.read_text())


def configs_sha256() -> str:
    """The hash of the two config files a CPU homework run reads, in order."""
    h = hashlib.sha256()
    for name in ("homework.toml", "homework_finetune.toml"):
        h.update((CONFIGS / name).read_bytes() + b"\0")
    return h.hexdigest()


EXPECTED = _toml(CONFIGS / "homework_expected.toml")["cpu"]


def test_expected_table_was_measured_with_the_current_configs():
    assert EXPECTED["config_sha256"] == configs_sha256(), (
        "homework.toml or homework_finetune.toml changed since homework_expected.toml was measured: run "
        "`./run homework`, copy its metrics.json numbers into homework_expected.toml, and set "
        f"config_sha256 = \"{configs_sha256()}\"")


def test_expected_table_is_consistent():
    assert EXPECTED["milton_val_after"] < EXPECTED["milton_val_before"], "fine-tuning on Milton must lower its loss"
    assert EXPECTED["pretrain_val_loss"] < math.log(EXPECTED["vocab_size"]), "the model must beat chance"
    assert 0 < EXPECTED["loss_tolerance"] < 0.2 and EXPECTED["seconds"] > 0


def test_docs_quote_the_expected_table():
    doc = (ROOT / "docs" / "homework.md").read_text()
    for key in ("pretrain_val_loss", "milton_val_before", "milton_val_after"):
        assert f"{EXPECTED[key]:.3f}" in doc, (
            f"docs/homework.md does not quote {key} = {EXPECTED[key]:.3f} of the table")
    assert f"ln {EXPECTED['vocab_size']}" in doc, "docs/homework.md quotes another chance level than the table"
    assert f"{EXPECTED['seconds']} s" in doc, "docs/homework.md quotes another run time than the table"


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("GPTREF_FULL_HOMEWORK") != "1",
                    reason="the full CPU homework takes about 5 minutes: set GPTREF_FULL_HOMEWORK=1")
def test_a_real_homework_run_matches_the_table(tmp_path):
    out = tmp_path / "hw"
    proc = subprocess.run([sys.executable, "-m", "gptref", "homework", "--no_progress", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    pre = next(v for k, v in metrics["phases"].items() if k.startswith("pretrain"))
    tol = EXPECTED["loss_tolerance"]
    assert metrics["vocab_size"] == EXPECTED["vocab_size"]
    for got, key in ((pre["final_val_loss"], "pretrain_val_loss"), (metrics["milton_val_before"], "milton_val_before"),
                     (metrics["milton_val_after"], "milton_val_after")):
        assert abs(got - EXPECTED[key]) <= tol, f"{key}: this run gives {got:.3f}, the table says {EXPECTED[key]:.3f}"
