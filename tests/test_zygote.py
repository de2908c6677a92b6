"""Runs forked by the pre-imported zygote (autograder/inside/zygote.py) are sandboxed exactly as runs that start a
fresh interpreter: the same uid, no capability, the same namespaces' view, fds and environment; nothing of the
grader in their memory; a timeout leaves no process behind; a zygote that cannot start costs only speed."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tempfile
import threading
import time

import pytest

from autograder import preimported
from autograder import sandbox as sb
from autograder.settings import Autograder

UID_BASE = 63500  # a corner of the machine-wide pool no other test uses
needs_root_bwrap = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("bwrap") is None,
                                      reason="the zygote is used as root with bubblewrap only")
GRADER_MARKER = "GRADERMARK" + secrets.token_hex(16)  # in this grader's memory and environment, never sent

PROBE = r'''
import hashlib, json, os, re, socket, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import channel
answer = channel.take()
job = json.loads(sys.stdin.read())
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
processes = {}
for pid in (p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()):
    try:
        processes[pid] = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode().strip()
    except OSError:
        pass
def read(path):
    try:
        return open(path, "rb").read().decode(errors="replace")
    except OSError as error:
        return type(error).__name__
def found_in_memory(prefix, digest, length):
    """Is a string that starts with prefix, `length` long and hashing to digest anywhere in this process's memory?"""
    mem = open("/proc/self/mem", "rb", 0)
    for line in open("/proc/self/maps"):
        fields = line.split()
        if not fields[1].startswith("rw") or (len(fields) > 5 and fields[5].startswith("/")):
            continue  # writable memory not backed by a file: heap, stacks, anonymous maps, the environment
        start, end = (int(x, 16) for x in fields[0].split("-"))
        try:
            mem.seek(start)
            data = mem.read(end - start)
        except (OSError, OverflowError, ValueError):
            continue
        at = data.find(prefix)
        while at >= 0:
            if hashlib.sha256(data[at:at + length]).hexdigest() == digest:
                return True
            at = data.find(prefix, at + 1)
    return False
seen = {
    "ids": [os.getresuid(), os.getresgid(), os.getgroups()],
    "caps": {k: status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs")},
    "hostname": socket.gethostname(),
    "root": sorted(os.listdir("/")),
    "interfaces": sorted(name for _, name in socket.if_nameindex()),
    "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
    "env": dict(os.environ),
    "cwd": os.getcwd(),
    "namespaces": {ns: os.readlink(f"/proc/self/ns/{ns}") for ns in ("ipc", "uts", "net", "cgroup", "pid", "mnt")},
    "processes": processes,
    "masked": read(job["masked"]),
    "grader_marker_in_memory": found_in_memory(job["prefix"].encode(), job["digest"], job["length"]),
    "torch_already_imported": "torch" in sys.modules,
}
answer.send(json.dumps(seen).encode())
'''
SLEEPER = "import time\ntime.sleep(1000)\n"


@pytest.fixture()
def box(tmp_path, monkeypatch):
    """A root-mode Sandbox whose /opt/autograder also holds the probe and the sleeper."""
    reference = os.path.join(os.path.dirname(os.path.dirname(sb.INSIDE)), "gptref", "attention.py")  # masked
    inside = tmp_path / "inside"
    shutil.copytree(sb.INSIDE, inside)
    (inside / "probe.py").write_text(PROBE)
    (inside / "sleeper.py").write_text(SLEEPER)
    os.chmod(tmp_path, 0o755)
    monkeypatch.setattr(sb, "INSIDE", str(inside))
    monkeypatch.setenv("GRADER_SECRET_FOR_THE_TEST", GRADER_MARKER)
    settings = Autograder(sandbox_uid_base=UID_BASE, sandbox_uid_count=8, memory_mb=4096,
                          uid_lease_dir=str(tmp_path / "uids"))
    yield sb.Sandbox(settings), os.path.realpath(reference)


def _probe(sandbox: sb.Sandbox, masked: str, preimported_on: bool) -> tuple[dict, sb.SandboxResult]:
    sandbox.settings.preimported = preimported_on
    job = {"masked": masked, "prefix": GRADER_MARKER[:10], "length": len(GRADER_MARKER),
           "digest": hashlib.sha256(GRADER_MARKER.encode()).hexdigest()}
    scratch = sandbox.new_scratch()
    try:
        result = sandbox.run("probe.py", [], scratch, json.dumps(job).encode(), 120, masked=[masked])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert result.rc == 0 and result.payload, (result.rc, result.notes, result.log[-3000:])
    return json.loads(result.payload), result


@needs_root_bwrap
def test_a_forked_run_is_sandboxed_exactly_like_a_fresh_one(box):
    sandbox, masked = box
    fresh, _ = _probe(sandbox, masked, False)
    forked, result = _probe(sandbox, masked, True)
    assert forked["torch_already_imported"] and not fresh["torch_already_imported"], \
        "the forked run did not come from the pre-imported zygote"
    assert not any("zygote" in note for note in result.notes), result.notes
    for key in ("ids", "caps", "hostname", "root", "interfaces", "fds", "env", "cwd", "masked"):
        assert forked[key] == fresh[key], (key, forked[key], fresh[key])
    uid = sandbox.uid
    assert forked["ids"] == [[uid] * 3, [uid] * 3, []]
    assert all(int(forked["caps"][k], 16) == 0 for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"))
    assert forked["caps"]["NoNewPrivs"] == "1" and forked["masked"] in ("", "PermissionError")
    assert forked["interfaces"] == ["lo"]
    ours = {ns: os.readlink(f"/proc/self/ns/{ns}") for ns in forked["namespaces"]}
    assert all(forked["namespaces"][ns] != ours[ns] for ns in ours), (forked["namespaces"], ours)
    # the run sees the sandbox's own processes only: bubblewrap's init and the holder; no Python of the grader's
    # side (the zygote, its child that waits for the run, the worker)
    programs = sorted(cmdline.split()[0] for cmdline in forked["processes"].values())
    assert programs == ["bwrap", "cat"], forked["processes"]
    assert sorted(cmdline.split()[0] for cmdline in fresh["processes"].values()) == ["bwrap"], fresh["processes"]
    assert not forked["grader_marker_in_memory"] and not fresh["grader_marker_in_memory"]


@needs_root_bwrap
def test_the_memory_search_finds_what_is_there(box, monkeypatch):
    """The probe's memory search is not blind: a marker given to the run in its environment is found."""
    sandbox, masked = box
    sandbox.settings.env = {"MARKER_FOR_THE_RUN": GRADER_MARKER}
    seen, _ = _probe(sandbox, masked, True)
    assert seen["grader_marker_in_memory"]


def _processes_of(uid: int) -> list[int]:
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                found.append(int(pid))
        except OSError:
            pass
    return found


def _children_of(pid: int) -> list[int]:
    found = []
    for other in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            fields = open(f"/proc/{other}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(other))
    return found


@needs_root_bwrap
def test_a_timed_out_forked_run_leaves_no_process(box):
    sandbox, _ = box
    sandbox.settings.preimported = True
    scratch = sandbox.new_scratch()
    try:
        result = sandbox.run("sleeper.py", [], scratch, None, 5)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert result.timed_out and result.started, (result.rc, result.notes)
    zygote = preimported.zygote(sandbox._env(sb.SCRATCH_MOUNT))
    deadline = time.monotonic() + 10
    while (_processes_of(sandbox.uid) or _children_of(zygote.proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes_of(sandbox.uid), "a process of the sandbox's uid outlived the run"
    assert not _children_of(zygote.proc.pid), "the zygote's child for the run outlived it"


@needs_root_bwrap
def test_a_zygote_that_cannot_start_only_costs_speed(box, monkeypatch, tmp_path):
    sandbox, masked = box
    broken = tmp_path / "broken_zygote.py"
    broken.write_text("import sys\nsys.exit(1)\n")
    monkeypatch.setattr(preimported, "SERVER", str(broken))
    sandbox.settings.env = {"A_FRESH_ENVIRONMENT": "so a new zygote is asked for"}
    seen, result = _probe(sandbox, masked, True)
    assert not seen["torch_already_imported"]
    assert any("no pre-imported zygote" in note for note in result.notes), result.notes


KERNEL_PROBE = r'''
import json, os, socket, sys
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
print("SEEN " + json.dumps({
    "ids": [os.getresuid(), os.getresgid(), os.getgroups()],
    "caps": {k: status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs")},
    "dumpable": open("/proc/self/status").read().count("\n") > 0 and os.access("/proc/self/mem", os.R_OK),
    "hostname": socket.gethostname(), "root": sorted(os.listdir("/")), "cwd": os.getcwd(),
    "interfaces": sorted(name for _, name in socket.if_nameindex()),
    "env": {k: v for k, v in os.environ.items() if k not in ("JPY_PARENT_PID", "JPY_SESSION_NAME")},
    "parent_is_the_runner": "run_notebook" in open(f"/proc/{os.getppid()}/cmdline").read()
                            if os.access(f"/proc/{os.getppid()}/cmdline", os.R_OK) else None}))
'''


def _run_notebook(sandbox: sb.Sandbox, preimported_on: bool) -> tuple[list, dict]:
    """A notebook through the grader's sandboxed runner: the probe, then a cell past its timeout."""
    import nbformat

    from autograder.execute import SandboxedExecute

    sandbox.settings.preimported = preimported_on
    sandbox.settings.cell_timeout = 4
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(KERNEL_PROBE),
                                         nbformat.v4.new_code_cell("import time\ntime.sleep(600)")])
    status = {"flags": [], "notes": []}
    SandboxedExecute(status_dir=tempfile.mkdtemp())._run(nb, "probe", sandbox, sandbox.settings, 0, status)
    return nb.cells, status


@needs_root_bwrap
def test_a_kernel_forked_from_the_runner_is_sandboxed_like_a_started_one(box):
    sandbox, _ = box
    views = {}
    for preimported_on in (False, True):
        cells, status = _run_notebook(sandbox, preimported_on)
        text = ["".join(out.get("text", "") + out.get("evalue", "") for out in cell.outputs) for cell in cells]
        assert text[0].startswith("SEEN "), (preimported_on, text, status)
        errors = [out.get("ename") for out in cells[1].outputs if out.get("output_type") == "error"]
        assert errors == ["CellTimeoutError", "KeyboardInterrupt"], (preimported_on, errors)  # SIGINT reached it
        assert not status["run"].get("dead"), status  # and the kernel lived on
        views[preimported_on] = (json.loads(text[0][5:]), status["run"]["kernel"])
    (fresh, fresh_kernel), (forked, forked_kernel) = views[False], views[True]
    assert (fresh_kernel, forked_kernel) == ("a new interpreter", "forked from the runner")
    for key in ("ids", "caps", "hostname", "root", "cwd", "interfaces", "env", "dumpable"):
        assert forked[key] == fresh[key], (key, forked[key], fresh[key])
    assert forked["ids"][0] == [sandbox.uid] * 3 and int(forked["caps"]["CapEff"], 16) == 0


@needs_root_bwrap
def test_the_zygote_outlives_the_thread_that_asked_for_it_first(box):
    """The verdict's sandbox runs in a pool thread that ends with each notebook; a zygote it started must live on
    (a death signal armed for that thread would kill the zygote, and every notebook would pay its imports)."""
    sandbox, _ = box
    sandbox.settings.env = {"A_ZYGOTE_OF_ITS_OWN": "started from a short-lived thread"}
    asked: dict = {}
    thread = threading.Thread(target=lambda: asked.update(zygote=preimported.zygote(sandbox._env(sb.SCRATCH_MOUNT))))
    thread.start()
    thread.join()
    time.sleep(1)
    assert asked["zygote"].alive(), "the zygote died with the thread that started it"
    assert preimported.zygote(sandbox._env(sb.SCRATCH_MOUNT)) is asked["zygote"]
