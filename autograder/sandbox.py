"""Run a command of the autograder's inside/ scripts under bubblewrap, with limits.

The sandbox sees, read-only: the system (/usr, /lib*, a few /etc files), the Python install,
the .venv, the gptref package and /opt/autograder (autograder/inside); its only writable space
is a tmpfs of `disk_mb` at /tmp (a filler gets ENOSPC there and nowhere else), where its input
folder, sent as a tar stream on fd 5, is unpacked to /sandbox before the runner starts. It has
no network, its own pid/ipc/uts namespaces, and dies with the grader. As root the payload runs
as a uid leased from a machine-wide pool (`uidpool`), so no two sandboxes on the machine ever
share one and RLIMIT_NPROC counts only its own processes; otherwise bwrap maps it to uid 65534
in a user namespace. The answer comes back on fd 3, signed with a per-run key given on fd 4
(`inside/channel.py`); anything unsigned is dropped and reported in `SandboxResult.forged`. Limits: RLIMIT_AS,
CPU, NPROC, NOFILE, FSIZE, a wall clock, and the whole process group killed at the end.

As root the runner is not a fresh interpreter: bubblewrap's payload is a holder (`HOLDER`, as the sandbox's
uid) that waits once the input is unpacked, and the pre-imported zygote (`preimported.py`, `inside/zygote.py`)
forks the runner into the namespaces bubblewrap reported on --info-fd, under the same uid and limits, with no
capability. The sandbox a runner sees is the same either way (tests/test_zygote.py); only torch's and the
notebook libraries' imports are not paid again.
"""

from __future__ import annotations

import fcntl
import functools
import importlib.util
import json
import os
import resource
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from . import deathsig, preimported, uidpool
from .inside import channel
from .inside.zygote import NAMESPACES

INSIDE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inside")
MOUNT_INSIDE = "/opt/autograder"
SCRATCH_MOUNT = "/sandbox"
INPUT_FD = 5  # the input folder arrives as a tar stream on this fd
WRITABLE = "/tmp"  # the one size-limited tmpfs; /sandbox is a symlink into it
RESULT_CAP = 512 * 1024 * 1024
READY_FD, INFO_FD = 6, 7  # the holder's ready byte; bubblewrap's JSON report of its namespaces (--info-fd)
HOLDER = ["/bin/sh", "-c", f"printf r >&{READY_FD} && exec {READY_FD}>&- && exec cat >/dev/null"]


class SandboxUnavailable(RuntimeError):
    pass


@dataclass
class SandboxResult:
    rc: int | None
    timed_out: bool
    payload: bytes
    log: str
    seconds: float
    sandboxed: bool
    notes: list[str] = field(default_factory=list)
    forged: bool = False
    started: bool = True  # False: the zygote never started the script (the run is then made the plain way)


def _python_roots() -> list[str]:
    """Folders the interpreter, the venv and gptref live in (bound read-only)."""
    roots = {os.path.realpath(sys.base_prefix), os.path.abspath(sys.prefix), os.path.realpath(sys.prefix)}
    exe = os.path.realpath(sys.executable)
    roots.add(os.path.dirname(os.path.dirname(exe)))
    spec = importlib.util.find_spec("gptref")
    if spec and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            roots.add(os.path.realpath(loc))
    return sorted(r for r in roots if r and r != "/" and os.path.exists(r))


def _mpl_cache() -> str | None:
    """A matplotlib config dir with its font cache built (trusted side, once per user)."""
    base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "autograder-mpl")
    if os.path.isdir(base) and os.listdir(base):
        return base
    if importlib.util.find_spec("matplotlib") is None:
        return None
    tmp = base + f".{os.getpid()}.{threading.get_ident()}"  # two sandboxes of a worker may start at once
    try:
        os.makedirs(tmp, exist_ok=True)
        subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"],
                       env={**os.environ, "MPLCONFIGDIR": tmp},
                       capture_output=True, timeout=120, preexec_fn=functools.partial(deathsig.arm, os.getpid()))
        os.rename(tmp, base)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return base if os.path.isdir(base) else None


_bwrap_works = False  # set once a check passed: a worker makes a Sandbox per notebook, one `bwrap true` is enough


def bwrap_problem() -> str | None:
    """None when bubblewrap can start a sandbox here, else why not (a pass is remembered for the process)."""
    global _bwrap_works
    if _bwrap_works:
        return None
    exe = shutil.which("bwrap")
    if not exe:
        return "bubblewrap (bwrap) is not installed"
    cmd = [exe, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "--die-with-parent"]
    if os.geteuid() != 0:
        cmd += ["--unshare-user"]
    try:
        r = subprocess.run(cmd + ["true"], capture_output=True, timeout=30)
    except Exception as e:  # noqa: BLE001
        return f"bwrap failed to run: {e}"
    if r.returncode != 0:
        return f"bwrap cannot create a sandbox: {r.stderr.decode(errors='replace').strip()[:300]}"
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        return "setpriv (util-linux) is missing"
    _bwrap_works = True
    return None


class Sandbox:
    """Runs `python /opt/autograder/<script> ...` jailed; one run at a time per (worker, lane): sandboxes that
    run at once are made with different lanes (as root, each lane leases its own uid)."""

    def __init__(self, settings, slot: int = 0, unsafe: bool = False, lane: int = 0):
        self.settings = settings
        self.slot = slot
        self.unsafe = unsafe
        self.root_mode = os.geteuid() == 0
        if not unsafe:
            problem = bwrap_problem()
            if problem:
                raise SandboxUnavailable(problem + " (grading refuses to run unsandboxed without --unsafe-no-sandbox)")
        if self.root_mode and not unsafe:  # held until this process exits: no other grader gets this uid
            self.uid = uidpool.lease(settings.uid_lease_dir, settings.sandbox_uid_base, settings.sandbox_uid_count,
                                     lane)
        else:
            self.uid = os.getuid()

    # -- scratch -----------------------------------------------------------------------
    def new_scratch(self) -> str:
        """A fresh scratch folder outside the repository, owned by the sandbox user."""
        base = os.environ.get("AUTOGRADER_SCRATCH") or tempfile.gettempdir()
        d = tempfile.mkdtemp(prefix="ag-scratch-", dir=base)
        for sub in ("work", "tmp", "home", "ipc"):
            os.makedirs(os.path.join(d, sub))
        cache = _mpl_cache()
        if cache:  # matplotlib's font list, built once by the grader, saves seconds per run
            shutil.copytree(cache, os.path.join(d, "home", ".mpl"))
        return d

    def hand_over(self, scratch: str) -> None:
        if self.root_mode and not self.unsafe:
            for dirpath, dirnames, filenames in os.walk(scratch):
                os.chown(dirpath, self.uid, self.uid)
                for f in filenames:
                    os.chown(os.path.join(dirpath, f), self.uid, self.uid)

    # -- command -----------------------------------------------------------------------
    def _env(self, scratch_inside: str) -> dict[str, str]:
        paths = [MOUNT_INSIDE] + list(self.settings.python_paths)
        env = {
            "PATH": os.path.join(sys.prefix, "bin") + ":/usr/local/bin:/usr/bin:/bin",
            "HOME": f"{scratch_inside}/home",
            "TMPDIR": f"{scratch_inside}/tmp",
            "USER": "student",
            "LOGNAME": "student",
            "LANG": "C.UTF-8",
            "PYTHONHASHSEED": "0",
            "PYTHONNOUSERSITE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": ":".join(paths),
            "MPLBACKEND": "Agg",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "JUPYTER_PLATFORM_DIRS": "1",
            "JUPYTER_CONFIG_DIR": f"{scratch_inside}/home/.jupyter",
            "JUPYTER_DATA_DIR": f"{scratch_inside}/home/.local/share/jupyter",
            "JUPYTER_RUNTIME_DIR": f"{scratch_inside}/home/.runtime",
            "IPYTHONDIR": f"{scratch_inside}/home/.ipython",
            "MPLCONFIGDIR": f"{scratch_inside}/home/.mpl",
        }
        env.update(self.settings.env)
        return env

    def _bwrap(self, scratch: str, argv: list[str], masked: list[str] = ()) -> list[str]:
        cmd = ["bwrap", "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net",
               "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
        if not self.root_mode:
            cmd += ["--unshare-user", "--uid", "65534", "--gid", "65534"]
        made: set[str] = {"/"}

        def parents(path: str) -> None:
            parts = os.path.dirname(path).strip("/").split("/")
            cur = ""
            for p in parts:
                if not p:
                    continue
                cur += "/" + p
                if cur not in made:
                    made.add(cur)
                    cmd.extend(["--perms", "0755", "--dir", cur])

        def ro(src: str, dst: str | None = None, try_: bool = False) -> None:
            dst = dst or src
            if try_ and not os.path.exists(src):
                return
            parents(dst)
            cmd.extend(["--ro-bind", src, dst])
            made.add(dst)

        for p in ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32"):
            if os.path.islink(p):
                cmd.extend(["--symlink", os.readlink(p), p])
            elif os.path.exists(p):
                ro(p)
        for p in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
                  "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/alternatives", "/etc/ssl/certs",
                  "/etc/fonts"):
            ro(p, try_=True)
        # before the binds under /tmp
        cmd += ["--perms", "1777", "--size", str(self.settings.disk_mb << 20), "--tmpfs", WRITABLE]
        made.add(WRITABLE)
        read_only = (_python_roots() + [os.path.abspath(p) for p in self.settings.python_paths]
                     + list(self.settings.extra_ro_binds))
        for p in read_only:
            if any(p == b or p.startswith(b + "/") for b in _bound(cmd)):
                continue
            ro(p, try_=True)
        for p in masked:  # files hidden from this run (the trusted verdict's references): unreadable
            if os.path.isfile(p):
                cmd += ["--ro-bind", "/dev/null", p]
        ro(INSIDE, MOUNT_INSIDE)
        cmd += ["--proc", "/proc", "--dev", "/dev"]  # bwrap's /dev/shm is root's 0755: not writable inside
        cmd += ["--symlink", f"{WRITABLE}/sandbox", SCRATCH_MOUNT, "--chdir", "/", "--clearenv"]
        for k, v in self._env(SCRATCH_MOUNT).items():
            cmd += ["--setenv", k, v]
        if self.root_mode:
            cmd += ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
        # the input is copied into the quota'd tmpfs by the sandbox user itself, then the runner starts
        # (a tar stream on fd 5, not a bind: nothing of the input stays reachable but the copy, which the
        # runner may delete, e.g. the notebook with its hidden tests)
        stage = (f"mkdir -p {WRITABLE}/sandbox && tar -x -f - -C {WRITABLE}/sandbox <&{INPUT_FD} && exec {INPUT_FD}<&- "
                 f"&& cd {SCRATCH_MOUNT}/work && exec \"$@\"")
        return cmd + ["/bin/sh", "-c", stage, "sh"] + argv

    def _limits(self, nproc: int) -> None:
        """Runs in the child between fork and exec: the resource limits."""
        for name, value in self._limit_values(nproc).items():
            resource.setrlimit(getattr(resource, "RLIMIT_" + name.upper()), value)

    def _nproc_limit(self) -> int:
        if self.root_mode and not self.unsafe:
            return self.settings.max_processes  # counted for the dedicated uid only
        try:  # an unprivileged user: its other processes count too
            import psutil

            mine = sum(1 for p in psutil.process_iter(["uids"])
                       if p.info["uids"] and p.info["uids"].real == os.getuid())
        except Exception:  # noqa: BLE001
            mine = 512
        return mine + self.settings.max_processes

    def run(self, script: str, args: list[str], scratch: str, stdin: bytes | None, timeout: float,
            masked: list[str] = ()) -> SandboxResult:
        """Run /opt/autograder/<script> with `args`; fd 3 carries its answer back; `masked` files read as nothing.
        As root the script is forked from the pre-imported zygote into the sandbox bubblewrap made (settings
        `preimported`); otherwise, or when the zygote cannot start, it starts in a fresh interpreter."""
        t0 = time.monotonic()
        self.hand_over(scratch)
        notes: list[str] = []
        if self.root_mode and not self.unsafe and self.settings.preimported:
            try:
                forker = preimported.zygote(self._env(SCRATCH_MOUNT))
            except preimported.ZygoteUnavailable as error:
                notes.append(f"no pre-imported zygote ({str(error)[:200]}): the run started a fresh interpreter")
            else:
                result = self._run(script, args, scratch, stdin, timeout, masked, t0, notes, forker)
                if result.started:
                    return result
                notes = result.notes + [f"the run started a fresh interpreter instead (log: {result.log[-300:]!r})"]
        return self._run(script, args, scratch, stdin, timeout, masked, t0, notes, None)

    def _run(self, script: str, args: list[str], scratch: str, stdin: bytes | None, timeout: float,
             masked: list[str], t0: float, notes: list[str], forker: preimported.Zygote | None) -> SandboxResult:
        """The run itself: `forker` None starts the script as bubblewrap's payload, else bubblewrap's payload is
        a holder that waits while the zygote forks the script into its namespaces."""
        python = os.path.join(sys.prefix, "bin", "python")
        if self.unsafe:
            argv = [python, os.path.join(INSIDE, script)] + [a.replace(SCRATCH_MOUNT, scratch) for a in args]
            env = self._env(scratch)
            env["PYTHONPATH"] = ":".join([INSIDE] + list(self.settings.python_paths))
            cwd = os.path.join(scratch, "work")
        elif forker is None:
            argv = self._bwrap(scratch, [python, f"{MOUNT_INSIDE}/{script}"] + args, masked)
            env, cwd = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, "/"
        else:
            argv = self._bwrap(scratch, HOLDER, masked)
            argv = argv[:1] + ["--info-fd", str(INFO_FD)] + argv[1:]
            env, cwd = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, "/"
        r_fd, w_fd = os.pipe()
        key = secrets.token_bytes(channel.KEY_BYTES)
        k_r, k_w = os.pipe()
        os.write(k_w, key)
        os.close(k_w)
        nproc = self._nproc_limit()
        in_r, in_w = os.pipe()
        ready_r, ready_w = os.pipe() if forker else (-1, -1)
        info_r, info_w = os.pipe() if forker else (-1, -1)
        worker = os.getpid()
        # what bubblewrap's payload gets: the runner's fds (3 answer, 4 key, 5 input), or the holder's (5 input,
        # 6 ready, 7 bubblewrap's report of the namespaces it made)
        given = (w_fd, k_r, in_r) if forker is None else (in_r, ready_w, info_w)
        targets = (channel.CHANNEL_FD, channel.KEY_FD, INPUT_FD) if forker is None else (INPUT_FD, READY_FD, INFO_FD)

        def pre() -> None:  # moved high first: none clobbers another
            deathsig.arm(worker)  # bwrap dies with this worker even if it is killed before bwrap's own prctl
            hi = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in given]
            for fd, target in zip(hi, targets):
                os.dup2(fd, target)
            self._limits(nproc)

        logf = tempfile.TemporaryFile()
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=logf, stderr=subprocess.STDOUT, cwd=cwd,
                                env=env, pass_fds=targets, preexec_fn=pre, start_new_session=True)
        for fd in given:
            os.close(fd)
        chunks: list[bytes] = []
        size = [0]

        def reader() -> None:
            with os.fdopen(r_fd, "rb") as f:
                while True:
                    b = f.read(1 << 20)
                    if not b:
                        break
                    if size[0] < RESULT_CAP:
                        chunks.append(b)
                    size[0] += len(b)

        def feed() -> None:  # the scratch folder as a tar stream (in unsafe mode nobody reads it)
            import tarfile

            try:
                with os.fdopen(in_w, "wb") as f, tarfile.open(fileobj=f, mode="w|") as tar:
                    if not self.unsafe:
                        for name in sorted(os.listdir(scratch)):
                            tar.add(os.path.join(scratch, name), arcname=name)
            except (BrokenPipeError, OSError):
                pass

        threads = [threading.Thread(target=reader, daemon=True), threading.Thread(target=feed, daemon=True)]
        for t in threads:
            t.start()
        if forker is None:
            finished, stdin_w = _Exit(proc), proc.stdin
        else:  # the script's fds go to the zygote; the holder waits on bubblewrap's stdin, which we hold
            finished, stdin_w = self._fork_in(forker, proc, info_r, ready_r, w_fd, k_r, logf, script, args, timeout,
                                              nproc, notes)
            for fd in (info_r, ready_r):
                os.close(fd)

        def writer() -> None:
            try:
                if stdin and stdin_w is not None:
                    stdin_w.write(stdin)
                if stdin_w is not None:
                    stdin_w.close()
            except (BrokenPipeError, OSError):
                pass

        threads.append(threading.Thread(target=writer, daemon=True))
        threads[-1].start()
        rc, timed_out = finished.wait(max(1.0, timeout - (time.monotonic() - t0)))
        self._kill(proc)
        if proc.stdin and not proc.stdin.closed:
            try:
                proc.stdin.close()  # the holder's cue to go
            except OSError:
                pass
        bwrap_rc = proc.wait()
        if rc is None and (forker is None or timed_out):  # a timed-out run was killed with the sandbox
            rc = bwrap_rc if forker is None else -signal.SIGKILL
        threads[0].join(timeout=10)
        if size[0] > RESULT_CAP:
            notes.append(f"answer larger than {RESULT_CAP >> 20} MB was dropped")
            chunks = []
        logf.seek(0, os.SEEK_END)
        n = logf.tell()
        logf.seek(max(0, n - 20000))
        log = logf.read().decode(errors="replace")
        logf.close()
        payload, forged = b"".join(chunks), False
        if payload:
            try:
                payload = channel.unseal(key, payload)
            except channel.Forged as e:
                payload, forged = b"", True
                notes.append(f"forged answer rejected ({script}): {e}")
        return SandboxResult(rc, timed_out, payload, log, round(time.monotonic() - t0, 2), not self.unsafe, notes,
                             forged, started=stdin_w is not None)

    def _fork_in(self, forker: preimported.Zygote, proc: subprocess.Popen, info_r: int, ready_r: int, w_fd: int,
                 k_r: int, logf, script: str, args: list[str], timeout: float, nproc: int, notes: list[str]):
        """Wait for bubblewrap's report and the holder's ready byte, then hand the zygote the run with its fds
        (stdin, the log, the answer, the key, the status pipe). Returns (what to wait on, the run's stdin)."""
        stdin_r, stdin_w = os.pipe()
        status_r, status_w = os.pipe()
        own = [stdin_r, w_fd, k_r, status_w]
        try:
            info = _read_info(info_r, timeout)
            if not isinstance(info, dict) or _read_within(ready_r, 1, timeout) != b"r":
                notes.append("the sandbox did not start (bubblewrap or the input's unpacking failed)")
                os.close(status_r)
                proc.stdin.close()
                return _Exit(proc), None
            request = {"holder_pid": info["child-pid"], "uid": self.uid, "cwd": f"{SCRATCH_MOUNT}/work",
                       "namespaces": {name: info.get(f"{name}-namespace") for name in NAMESPACES},
                       "argv": [f"{MOUNT_INSIDE}/{script}"] + list(args),
                       "env": {**self._env(SCRATCH_MOUNT), "PWD": f"{SCRATCH_MOUNT}/work", "OLDPWD": "/"},  # as cd sets
                       "limits": self._limit_values(nproc)}
            forker.send(request, [stdin_r, logf.fileno(), w_fd, k_r, status_w])
        except (OSError, ValueError) as error:
            notes.append(f"the zygote could not take the run: {error}")
            os.close(status_r)
            proc.stdin.close()  # the holder goes, and bubblewrap with it
            return _Exit(proc), None
        finally:
            for fd in own:
                os.close(fd)
        return _Status(status_r), os.fdopen(stdin_w, "wb")

    def _limit_values(self, nproc: int) -> dict[str, tuple[int, int]]:
        """The resource limits of one sandboxed process, by name: "as" is resource.RLIMIT_AS, and so on."""
        mb = 1024 * 1024
        return {"as": (self.settings.memory_mb * mb,) * 2,
                "cpu": (self.settings.cpu_seconds, self.settings.cpu_seconds + 5),
                "nofile": (self.settings.max_open_files,) * 2, "fsize": (self.settings.max_file_mb * mb,) * 2,
                "core": (0, 0), "nproc": (nproc, nproc)}

    def _kill(self, proc: subprocess.Popen) -> None:
        """No process of the run survives: its process group, and (as root) every process of its uid."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.root_mode and not self.unsafe:  # the uid is ours alone (leased): all of it goes
            uidpool.kill_all_of(self.uid)


class _Exit:
    """The end of a run that is bubblewrap's own payload: bubblewrap's exit."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc

    def wait(self, timeout: float) -> tuple[int | None, bool]:
        try:
            return self.proc.wait(timeout=timeout), False
        except subprocess.TimeoutExpired:
            return None, True


class _Status:
    """The end of a run forked by the zygote: what its status pipe says (an exit code, or "signal N")."""

    def __init__(self, fd: int):
        self.fd = fd

    def wait(self, timeout: float) -> tuple[int | None, bool]:
        try:
            text = _read_within(self.fd, 4096, timeout, whole=True)
        except TimeoutError:
            return None, True
        finally:
            os.close(self.fd)
        words = text.decode(errors="replace").split()
        if words and words[0].lstrip("-").isdigit():
            return int(words[0]), False
        if len(words) == 2 and words[0] == "signal" and words[1].isdigit():
            return -int(words[1]), False
        return None, False


def _read_info(fd: int, timeout: float) -> dict | None:
    """bubblewrap's --info-fd report (written in several pieces): the JSON object once whole, None at EOF before."""
    deadline, text = time.monotonic() + timeout, b""
    while True:
        chunk = _read_within(fd, 1 << 16, max(0.0, deadline - time.monotonic()))
        if not chunk:
            return None
        text += chunk
        try:
            info = json.loads(text.decode())
        except ValueError:
            continue
        return info if isinstance(info, dict) else None


def _read_within(fd: int, limit: int, timeout: float, whole: bool = False) -> bytes:
    """Up to `limit` bytes from `fd` (all of them until EOF when `whole`), waiting at most `timeout` seconds in all;
    raises TimeoutError when that runs out first."""
    deadline = time.monotonic() + timeout
    data = b""
    while len(data) < limit:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError(f"nothing on fd {fd} within {timeout:.0f} s")
        chunk = os.read(fd, limit - len(data))
        if not chunk:
            break
        data += chunk
        if not whole:
            break
    return data


def _bound(cmd: list[str]) -> set[str]:
    out = set()
    for i, a in enumerate(cmd):
        if a == "--ro-bind" and i + 2 < len(cmd):
            out.add(cmd[i + 2])
    return out
