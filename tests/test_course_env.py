"""The `course` extra alone is enough for the course: a fresh virtual environment with only
`pip install -e .[course]` (what `./run lab` installs) runs every notebook, solutions filled in.

Slow: it builds the environment (from pip's cache and the configured indexes) and executes each
solutions/<day>/<day>.ipynb in a kernel of that environment. Skipped when pip cannot install. The environment
is built once per pyproject.toml and kept in $GPTREF_CACHE/test-venvs/course-<hash> (installing torch and
JupyterLab takes minutes); a new pyproject.toml builds a new one from scratch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DAYS = sorted(p.name for p in (ROOT / "solutions").iterdir() if (p / f"{p.name}.ipynb").exists())

# Runs inside the fresh environment: executes each notebook, reports every error (import errors by name).
RUNNER = r'''
import json, shutil, sys, tempfile
from pathlib import Path
import nbformat
from nbclient import NotebookClient
out = {}
for path in sys.argv[1:]:
    nb = nbformat.read(path, as_version=4)
    work = tempfile.mkdtemp()
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": work}}).execute()
    errors = []
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                errors.append([i, o.get("ename"), str(o.get("evalue"))[:300]])
    out[Path(path).stem] = errors
    shutil.rmtree(work, ignore_errors=True)
print("RESULT " + json.dumps(out))
'''


def _clean_env(home: Path, target: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "JUPYTER"))}
    env["JUPYTER_DATA_DIR"] = str(home / "jupyter-data")  # no user kernelspec can point elsewhere
    env["JUPYTER_CONFIG_DIR"] = str(home / "jupyter-config")
    env["PATH"] = str(target / "bin") + os.pathsep + env.get("PATH", "")
    return env


NETWORK_ERRORS = ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
                  "Name or service not known", "Network is unreachable", "ConnectTimeoutError", "ProxyError",
                  "Connection refused", "Read timed out")


def network_error(pip_output: str) -> bool:
    """pip failed because it could not reach an index, not because no release matches a pin
    ("No matching distribution" alone is a bad pin: pip reached the index and found nothing)."""
    return any(s in pip_output for s in NETWORK_ERRORS)


def test_a_bad_pin_is_not_taken_for_being_offline():
    bad_pin = ("ERROR: Could not find a version that satisfies the requirement torch==0.0.42 (from versions: 2.3.0, "
               "2.4.0)\nERROR: No matching distribution found for torch==0.0.42")
    offline = ("WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) "
               "after connection broken by "
               "'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object>: Failed to "
               "establish a new connection: [Errno -3] Temporary failure in name resolution')': /simple/torch/\n"
               "ERROR: Could not find a version that satisfies the requirement torch (from versions: none)\n"
               "ERROR: No matching distribution found for torch")
    assert not network_error(bad_pin)
    assert network_error(offline)


def _course_venv(home: Path) -> Path:
    """A virtual environment with only `pip install -e .[course]`, built once per pyproject.toml."""
    key = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + str(ROOT).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("GPTREF_CACHE", Path.home() / ".cache" / "gptref")) / "test-venvs"
    target = cache / f"course-{key}"
    if (target / ".complete").exists():
        return target
    building = target  # scripts in a venv name its path: build it where it stays; .complete marks it done
    shutil.rmtree(building, ignore_errors=True)
    building.parent.mkdir(parents=True, exist_ok=True)
    venv.EnvBuilder(with_pip=True).create(building)
    env = _clean_env(home, building)
    install = subprocess.run([str(building / "bin" / "python"), "-m", "pip", "install", "-q", "-e", f"{ROOT}[course]"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)
    if install.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        text = install.stderr + install.stdout
        if network_error(text):
            pytest.skip(f"pip cannot reach its index here (offline): {text.strip()[-300:]}")
        pytest.fail("pip install -e .[course] failed (a bad pin fails here; only network errors skip):\n"
                    f"{text[-3000:]}")
    (target / ".complete").write_text("built by tests/test_course_env.py\n")
    return target


@pytest.mark.slow
def test_course_extra_alone_runs_every_notebook(tmp_path):
    target = _course_venv(tmp_path)
    py = target / "bin" / "python"
    env = _clean_env(tmp_path, target)
    # only the course extra: nothing the dev extra adds may be there
    probe = subprocess.run([str(py), "-c", "import importlib.util as u; "
                            "print([m for m in ('pytest', 'hypothesis', 'xdist', 'tiktoken') if u.find_spec(m)])"],
                           env=env, capture_output=True, text=True)
    assert probe.stdout.strip() == "[]", f"the fresh environment has dev packages: {probe.stdout} {probe.stderr}"

    paths = [str(ROOT / "solutions" / day / f"{day}.ipynb") for day in DAYS]
    run = subprocess.run([str(py), "-c", RUNNER, *paths], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=1800)
    line = [ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")]
    assert run.returncode == 0 and line, f"the runner failed:\n{run.stderr[-3000:]}"
    errors = json.loads(line[-1][len("RESULT "):])
    imports = {day: e for day, errs in errors.items() for e in errs if e[1] in ("ImportError", "ModuleNotFoundError")}
    assert not imports, ("with only the course extra installed, notebooks fail to import (add the package to "
                         f"pyproject's course extra): {imports}")
    others = {day: errs for day, errs in errors.items() if errs}
    assert not others, f"notebooks fail in an environment with only the course extra: {others}"
