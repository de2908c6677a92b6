"""Isolation of one student's sandbox from another and of one grading run from another (issue 11:
items 4 kernel side, 7, 8, 9, 11), through the real CLI on the toy fixture course."""

from __future__ import annotations

import base64
import codecs
import csv
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import nbformat
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "hostile"))

import agfix_cases  # noqa: E402
import agfix_course  # noqa: E402
from autograder_run import cli  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UID_BASE = 63000
DISK_MB = 96
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

# -- hostile cells -------------------------------------------------------------------------
FILLER = f'''
import os
n = total = 0
stopped = "no error"
try:
    for d in (".", os.environ.get("TMPDIR", "/tmp"), os.environ.get("HOME", "."), "/dev/shm"):
        for i in range(200):
            with open(os.path.join(d, f"fill{{i}}.bin"), "wb") as f:
                for _ in range(8):
                    f.write(b"x" * (1 << 20))
                    total += 1
            n += 1
            if total > {8 * DISK_MB}:  # never more than this, even with no quota (a shared test machine)
                raise RuntimeError("cap")
except (OSError, RuntimeError) as e:
    stopped = type(e).__name__ + " " + str(getattr(e, "errno", ""))
print(f"FILLER wrote {{total}} MB in {{n}} files; stopped by {{stopped}}")
'''

ONLY_THE_VISIBLE_CASE = "def scaled_sum(x, y, alpha):\n    return x + alpha * y if alpha == 2.0 else x - y\n"
FORGER = '''
import json, os, stat, sys
FORGED = json.dumps({"results": {"scaled_sum": {"status": "missing", "detail": "FORGED_MARKER"},
                                 "softmax_rows": {"status": "missing", "detail": "FORGED_MARKER"}},
                     "notebook": "FORGED_MARKER", "info": {}, "log": []}).encode()
tried = []
for fd in range(3, 1024):
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        continue
    if stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode) and "ipykernel" not in sys.modules:
        try:
            os.write(fd, FORGED)
            tried.append(fd)
        except OSError:
            pass
for path in (f"/proc/{os.getppid()}/fd/3", f"/proc/{os.getppid()}/fd/4", f"/proc/{os.getppid()}/mem", "/proc/1/fd/3"):
    try:
        with open(path, "r+b" if path.endswith("mem") else "wb") as f:
            f.write(FORGED)
        tried.append(path)
    except OSError as e:
        print("FORGER refused", path, type(e).__name__)
print("FORGER wrote to", tried)
if "ipykernel" not in sys.modules:  # the verdict run: stop now, so the forgery is the only answer
    os._exit(0)
'''

SEARCHER = '''
import base64, codecs, gc, linecache, os, sys, types
found = []
def take(where, obj):
    try:
        text = obj if isinstance(obj, str) else repr(obj)
    except Exception:
        return
    found.append((where, text))
ns = dict(globals())
for name in ("In", "_ih"):
    for i, cell in enumerate(ns.get(name) or []):
        take(f"{name}[{i}]", cell)
for name in ("Out", "_oh"):
    for k, v in dict(ns.get(name) or {}).items():
        take(f"{name}[{k}]", v)
for name in ("_", "__", "___", "_i", "_ii", "_iii"):
    take(name, ns.get(name))
for name, value in ns.items():
    if re.match(r"_i\\d+$", name) or re.match(r"_\\d+$", name):
        take(name, value)
    take("globals:" + name, name)
    is_code = isinstance(value, (types.FunctionType, types.CodeType))
    if is_code and getattr(value, "__module__", "__main__") == "__main__":
        code = getattr(value, "__code__", value)
        take("code:" + name, code.co_consts)
        take("code-names:" + name, code.co_names)
ip = get_ipython()
try:
    for row in ip.history_manager.get_range(raw=True, output=True):
        take("history", row)
    for row in ip.history_manager.get_range_by_str("~10/1-1000", raw=True):
        take("history-old", row)
    for cell in ip.history_manager.input_hist_raw:
        take("history-session", cell)
except Exception as e:
    take("history-error", e)
try:
    take("last_execution_result", ip.last_execution_result.info.raw_cell)
except Exception:
    pass
try:
    take("parent_header", ip.kernel.get_parent())
except Exception:
    pass
for k, v in list(linecache.cache.items()):
    take("linecache:" + str(k), "".join(v[2]) if len(v) > 2 and v[2] else v)
for attr in ("last_traceback", "last_value", "last_exc"):
    tb = getattr(sys, attr, None)
    if tb is not None:
        take("sys." + attr, tb)
        t = tb if isinstance(tb, types.TracebackType) else getattr(tb, "__traceback__", None)
        while t is not None:
            take("frame", t.tb_frame.f_code.co_consts)
            take("frame-locals", t.tb_frame.f_locals)
            t = t.tb_next
for obj in gc.get_objects():
    if isinstance(obj, types.FunctionType) and obj.__module__ in ("__main__", None):
        take("gc-func", obj.__code__.co_consts)
for root in ("/sandbox", os.environ.get("HOME", "."), os.environ.get("TMPDIR", "/tmp"), "."):
    for dirpath, _, files in os.walk(root):
        for f in files:
            try:
                take("file:" + f, open(os.path.join(dirpath, f), "rb").read(1 << 20).decode("utf-8", "replace"))
            except OSError:
                pass
WORDS = ("HIDDEN", "_ref", "rng", "expected", "assert", "allclose")
hits = []
for w, t in found:
    if "SEARCHER" in t:  # our own cell
        continue
    for word in WORDS:
        at = t.find(word)
        if at >= 0:
            hits.append(f"{w}: {t[max(0, at - 150):at + 150]}")
            break
blob = "\\n".join(hits)[:3000]
print("SEARCHER found", len(found), "items")
print("PLAIN", blob)
print("B64", base64.b64encode(blob.encode()).decode())
print("HEX", blob.encode().hex())
print("ROT13", codecs.encode(blob, "rot13"))
'''
SEARCHER = "import re\n" + SEARCHER

HIDDEN_TELLS = agfix_course.HIDDEN_MARKERS + ("default_rng(7)", "default_rng(3)", "scaled_sum_ref(x, y, 0.5)",
                                              "softmax_rows_ref(_x)", "wrong on random inputs")


def _notebook(release_nb, *, last: str | None = None, **kw):
    nb = agfix_cases.notebook(release_nb, **kw)
    if last:
        nb.cells.append(nbformat.v4.new_code_cell(last))
    return nb


def make_course(root: str, students: dict, disk_mb: int = DISK_MB, uid_base: int = UID_BASE) -> str:
    """The toy course under `root` with `students` (name -> notebook-making function) collected."""
    cfg = agfix_course.build(root)
    with open(cfg, "a") as config_file:
        config_file.write(f"c.Autograder.sandbox_uid_base = {uid_base}\nc.Autograder.sandbox_uid_count = 16\n"
                          f"c.Autograder.disk_mb = {disk_mb}\n")
    done = cli(cfg, "release")
    assert done.returncode == 0, done.stdout + done.stderr
    release_nb = nbformat.read(os.path.join(root, "course", "toy", "toy.ipynb"), as_version=4)
    incoming = os.path.join(root, "incoming")
    for name, make in students.items():
        os.makedirs(os.path.join(incoming, name), exist_ok=True)
        nbformat.write(make(release_nb), os.path.join(incoming, name, "toy.ipynb"))
    done = cli(cfg, "collect", incoming)
    assert done.returncode == 0, done.stdout + done.stderr
    return cfg


def status(root, student):
    return json.load(open(os.path.join(root, "work", "status", "toy", f"{student}.json")))


def auto(record) -> float:
    return sum((cell.get("auto") or 0) for cell in record.get("cells", {}).values())


def flags(record) -> list[str]:
    from autograder.grade import all_flags

    return all_flags(record)


def outputs_text(root, student) -> list[str]:
    autograded = nbformat.read(os.path.join(root, "work", "autograded", student, "toy", "toy.ipynb"), as_version=4)
    return ["".join(output.get("text", "") + json.dumps(output.get("data", {})) + " ".join(output.get("traceback", []))
                    for output in cell.get("outputs", [])) for cell in autograded.cells if cell.cell_type == "code"]


# -- unit: the channel ---------------------------------------------------------------------
def test_channel_accepts_signed_and_rejects_unsigned_or_forged():
    from autograder.inside import channel

    key = os.urandom(32)
    payload = json.dumps({"results": {"a": [1, 2, 3]}}).encode()
    framed = channel.seal(key, payload)
    assert channel.unseal(key, framed) == payload
    one_bit_flipped = framed[:10] + bytes([framed[10] ^ 1]) + framed[11:]
    for bad in (payload, framed[:-1], one_bit_flipped, channel.seal(os.urandom(32), payload),
                framed + b"{}", b"", b"\n" + payload):
        with pytest.raises(channel.Forged):
            channel.unseal(key, bad)


# -- one batch: honest students beside a filler, a forger and a hidden-test searcher ------
@pytest.fixture(scope="module")
def batch():
    root = tempfile.mkdtemp(prefix="agsbx-")
    students = {
        "honest_a": lambda R: _notebook(R),
        "honest_b": lambda R: _notebook(R),
        "filler": lambda R: _notebook(R, extra_first=FILLER),
        "forger": lambda R: _notebook(R, sum_src=FORGER + ONLY_THE_VISIBLE_CASE),
        "searcher": lambda R: _notebook(R, last=SEARCHER),
    }
    try:
        cfg = make_course(root, students)
        done = cli(cfg, "grade", "--workers", "2", timeout=900)
        assert done.returncode == 0, done.stdout + done.stderr
        yield {"root": root, "cfg": cfg}
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
@needs_bwrap
def test_filler_is_stopped_by_its_quota_and_harms_nobody(batch):
    root = batch["root"]
    text = "".join(outputs_text(root, "filler"))
    match = re.search(r"FILLER wrote (\d+) MB in (\d+) files; stopped by (\S+)", text)
    assert match, text[-2000:]
    assert int(match.group(1)) <= DISK_MB and match.group(3) == "OSError", match.group(0)  # ENOSPC at the quota
    assert auto(status(root, "filler")) == 3, flags(status(root, "filler"))
    for student in ("honest_a", "honest_b"):
        record = status(root, student)
        assert auto(record) == 3 and not flags(record), (student, flags(record))
    assert auto(status(root, "searcher")) == 3


@pytest.mark.slow
@needs_bwrap
def test_forgery_from_student_code_changes_nothing(batch):
    """The forger writes a forged answer to every fd and /proc path it can reach, in the kernel and in
    the verdict run (where it then exits): what reaches the grader is at most its own answer."""
    root = batch["root"]
    record = status(root, "forger")
    # scaled_sum passes its visible test but is wrong: only the trusted verdict can stop it. The forged
    # "answer" (both exercises "missing", then the verdict run exits) is worth nothing: no hidden points
    # for either cell (the old rule kept the points of a "missing" verdict), each cell flagged
    assert auto(record) == 0, flags(record)
    for name in ("scaled_sum", "softmax_rows"):
        verdict = record["notebooks"]["toy"]["verdict"][name]
        assert verdict["status"] != "pass" and "FORGED_MARKER" not in verdict["message"], verdict
        assert any(f"test_{name}: " in f and f"trusted check of {name}" in f and "0 points" in f
                   for f in flags(record)), flags(record)
    printed = "".join(outputs_text(root, "forger"))
    assert "FORGER refused /proc/" in printed, printed[-2000:]
    assert "FORGED_MARKER" not in printed.replace('"FORGED_MARKER"', "")  # only its own source's string, if at all
    assert not any("notebook run failed" in f for f in flags(record)), flags(record)


EVIL = "import os\nos.write(3, b'{\"results\": {}, \"log\": []}')\n"
SIGNED = ("import os, sys\nsys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))\nimport channel\n"
          "channel.take().send(b'{\"results\": {}, \"log\": []}')\n")
WRONG_KEY = ("import os, sys\nsys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))\nimport channel\n"
             "os.write(3, channel.seal(b'k' * 32, b'{\"results\": {}, \"log\": []}'))\n")


@needs_bwrap
def test_sandbox_rejects_unsigned_and_wrongly_signed_answers(tmp_path, monkeypatch):
    from autograder import sandbox as sb
    from autograder.settings import Autograder

    inside = tmp_path / "inside"
    shutil.copytree(sb.INSIDE, inside)
    for name, src in (("evil.py", EVIL), ("signed.py", SIGNED), ("wrong_key.py", WRONG_KEY)):
        (inside / name).write_text(src)
    os.chmod(tmp_path, 0o755)
    monkeypatch.setattr(sb, "INSIDE", str(inside))
    box = sb.Sandbox(Autograder(sandbox_uid_base=UID_BASE, sandbox_uid_count=16, memory_mb=2048))
    got = {}
    for script in ("signed.py", "evil.py", "wrong_key.py"):
        scratch = box.new_scratch()
        try:
            got[script] = box.run(script, [], scratch, None, 60)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    assert got["signed.py"].payload == b'{"results": {}, "log": []}' and not got["signed.py"].forged, got["signed.py"]
    for script in ("evil.py", "wrong_key.py"):
        result = got[script]
        assert result.forged and result.payload == b"" and any("forged" in note for note in result.notes), \
            (script, result)
    assert not hasattr(sb, "FORGERIES")  # the result carries it, nothing else (SandboxedExecute flags it)


@pytest.mark.slow
@needs_bwrap
def test_no_hidden_test_text_reachable_after_the_tests(batch):
    root = batch["root"]
    cells = outputs_text(root, "searcher")
    last = cells[-1]
    assert "SEARCHER found" in last, last[-2000:]
    decoded = [last]
    for tag, dec in (("B64", lambda s: base64.b64decode(s).decode()), ("HEX", lambda s: bytes.fromhex(s).decode()),
                     ("ROT13", lambda s: codecs.decode(s, "rot13"))):
        match = re.search(rf"^{tag} (.*)$", last, re.M)
        assert match, tag
        decoded.append(dec(match.group(1)))
    for text in decoded:
        for tell in HIDDEN_TELLS:
            assert tell not in text, (tell, text[max(0, text.find(tell) - 300):text.find(tell) + 200])


# -- two courses at once -------------------------------------------------------------------
@pytest.mark.slow
@needs_bwrap
def test_two_courses_graded_at_once_keep_their_sandboxes():
    roots = [tempfile.mkdtemp(prefix=f"agsbx{number}-") for number in range(2)]
    try:
        names = [f"honest{number}" for number in range(4)]
        configs = [make_course(root, {name: (lambda R: _notebook(R)) for name in names})
                   for root in roots]  # same uid base
        results = [None, None]

        def grade_course(number):
            results[number] = cli(configs[number], "grade", "--workers", "2", timeout=900)

        threads = [threading.Thread(target=grade_course, args=(number,)) for number in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for root, done in zip(roots, results):
            assert done.returncode == 0, done.stdout + done.stderr
            for name in names:
                record = status(root, name)
                assert auto(record) == 3 and not flags(record), (root, name, flags(record))
    finally:
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)


# -- kill -9 at random moments ---------------------------------------------------------------
DYING_S = 10.0  # how long the processes of a killed run may take to exit (a loaded machine is slow to tear down)

def _grade_procs(root: str) -> list[int]:
    """Grading processes of the course at `root` still running (zombies have exited: their reaping is init's)."""
    import psutil

    pids = []
    for process in psutil.process_iter(["cmdline", "environ", "status"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            cmd = " ".join(process.info["cmdline"] or [])
            env = process.info["environ"] or {}
        except Exception:  # noqa: BLE001
            continue
        where = env.get("AUTOGRADER_SCRATCH", "") + cmd + env.get("AUTOGRADER_CONFIG", "")
        if "autograder.worker" in cmd and root in where:
            pids.append(process.pid)
        elif cmd.startswith("bwrap") and root in cmd:
            pids.append(process.pid)
    for process in psutil.process_iter(["uids", "status"]):
        uids = process.info["uids"]
        if process.info["status"] != psutil.STATUS_ZOMBIE and uids and UID_BASE <= uids.real < UID_BASE + 16:
            pids.append(process.pid)
    return pids


def _rows(root):
    """The course's grades.csv rows as (column, value) tuples, sorted."""
    rows = list(csv.DictReader(open(os.path.join(root, "work", "grades.csv"))))
    return sorted((tuple(row.items()) for row in rows))


@pytest.mark.slow
@needs_bwrap
def test_kill_minus_9_leaves_no_worker_and_a_rerun_finishes_the_job():
    rng = random.Random(11)
    ref_root, root = tempfile.mkdtemp(prefix="agsbxref-"), tempfile.mkdtemp(prefix="agsbxkill-")
    students = {"honest0": lambda R: _notebook(R), "wrong": lambda R: _notebook(R, sum_src=agfix_cases.BAD_SUM)}
    try:
        ref_cfg = make_course(ref_root, students)
        done = cli(ref_cfg, "grade", "--workers", "2", timeout=1200)
        assert done.returncode == 0, done.stdout + done.stderr
        cfg = make_course(root, students)
        shutil.copy(os.path.join(ref_root, "work", "secret"), os.path.join(root, "work", "secret"))
        args = [sys.executable, "-m", "autograder", "--config", cfg, "grade", "--workers", "2"]
        orphans, dying = [], []
        for i in range(20):
            if i % 4 == 0:  # every few kills start over, so that kills land early as well as late
                args_i = args + ["--regrade"]
            else:
                args_i = args
            grading = subprocess.Popen(args_i, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.5, 8.0))
            grading.send_signal(signal.SIGKILL)
            grading.wait()
            killed = time.monotonic()
            while _grade_procs(root) and time.monotonic() - killed < DYING_S:  # a killed process takes a moment to exit
                time.sleep(0.1)
            dying.append(round(time.monotonic() - killed, 1))
            orphans += [(i, pid) for pid in _grade_procs(root)]
        print(f"\nseconds until no grading process was left after each kill -9: {dying}")
        assert not orphans, (orphans, dying)
        done = cli(cfg, "grade", "--workers", "2", timeout=1200)
        assert done.returncode == 0, done.stdout + done.stderr
        expected, got = _rows(ref_root), _rows(root)
        diff = [(want, have) for want, have in zip(expected, got) if want != have]
        diff += [("rows", len(expected), len(got))] if len(expected) != len(got) else []
        assert not diff, diff
    finally:
        shutil.rmtree(ref_root, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


# -- unit: the machine-wide uid pool -----------------------------------------------------------
def _holder(lock_dir, base, count):
    code = ("import sys, time\nfrom autograder import uidpool\ntry:\n"
            f"    print(uidpool.lease({lock_dir!r}, {base}, {count}), flush=True)\n"
            "except uidpool.PoolExhausted:\n    print('exhausted', flush=True)\n    sys.exit(0)\ntime.sleep(120)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    return holder, holder.stdout.readline().strip()


def test_uid_pool_leases_distinct_uids_and_reclaims_a_dead_holders_uid(tmp_path):
    base, count = UID_BASE + 40, 3  # our own corner of the pool
    holders = [_holder(str(tmp_path), base, count) for _ in range(count)]
    try:
        uids = sorted(int(uid) for _, uid in holders)
        assert uids == list(range(base, base + count)), uids
        extra, got = _holder(str(tmp_path), base, count)
        assert got == "exhausted"
        extra.wait()
        victim, uid = holders[1]
        victim.kill()
        victim.wait()
        again, got = _holder(str(tmp_path), base, count)
        holders.append((again, got))
        assert got == uid  # the dead holder's lease is free at once
    finally:
        for holder, _ in holders:
            holder.kill()
            holder.wait()
