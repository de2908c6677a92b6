"""`./run lab --no-browser` serves the course as whoever runs the tests (root in a container too): the URL it
prints answers with course/'s tree, and stopping it frees the port."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "jupyter").exists(),
                                reason="needs .venv with the course extra (./run lab or ./run test makes it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_taken(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _read_lines(stream, lines: list[str]) -> None:
    for line in stream:
        lines.append(line)


def _wait_for_url(proc: subprocess.Popen, lines: list[str], port: int, timeout: float = 300) -> str:
    """The first http://127.0.0.1:PORT/lab?token=... line the server prints."""
    pattern = re.compile(rf"http://(?:127\.0\.0\.1|localhost):{port}/lab\?token=\w+")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(lines):
            found = pattern.search(line)
            if found:
                return found.group(0)
        if proc.poll() is not None:
            time.sleep(0.5)  # let the reader thread drain the last lines
            raise AssertionError(f"./run lab exited with {proc.returncode} before printing a URL:\n{''.join(lines)}")
        time.sleep(0.5)
    raise AssertionError(f"./run lab printed no URL on port {port} in {timeout} s:\n{''.join(lines)}")


@pytest.mark.slow
def test_run_lab_serves_the_course_tree_and_frees_its_port(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "VIRTUAL_ENV"))}
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")  # no server files of ours left among the user's
    proc = subprocess.Popen([str(ROOT / "run"), "lab", "--no-browser", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
    reader.start()
    try:
        url = _wait_for_url(proc, lines, port)
        token = url.split("token=", 1)[1]
        base = url.split("/lab?", 1)[0]
        with urllib.request.urlopen(f"{base}/api/contents?token={token}", timeout=30) as answer:
            listing = json.load(answer)
        served = {item["name"] for item in listing["content"]}
        course = {p.name for p in (ROOT / "course").iterdir() if not p.name.startswith(".")}
        assert served == course, f"the server's root is not course/: it lists {sorted(served)}"
        with urllib.request.urlopen(url, timeout=30) as page:
            assert page.status == 200, f"{url} answered {page.status}"
        if os.geteuid() == 0:
            assert "running as root" in "".join(lines), "./run lab must say it starts JupyterLab with --allow-root"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # `./run` execs jupyter: the group is the server
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    time.sleep(1)
    assert not _port_taken(port), f"port {port} still answers after the server was stopped"


def test_run_lab_refuses_a_port_that_is_not_a_number():
    done = subprocess.run([str(ROOT / "run"), "lab", "--port", "eighty"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 2 and "--port takes a number" in done.stderr, done.stderr
