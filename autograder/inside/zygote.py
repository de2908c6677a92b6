"""A pre-imported process that forks each sandboxed run into a sandbox bubblewrap has already made.

Every sandboxed run used to start a fresh Python that imported torch (about 1.9 CPU s) and, for a notebook,
a kernel that imported it again. This server imports the libraries once (torch, numpy, IPython, ipykernel,
nbformat, nbclient, jupyter_client: third-party code only, nothing of the course or of any submission) and
then waits on a socket. Per run the grader starts bubblewrap as before, with a holder in place of the runner:
bubblewrap builds the namespaces, the read-only tree, the tmpfs and unpacks the input as the sandbox's uid, then
the holder waits. The grader sends this server the holder's pid, the namespace ids bubblewrap reported, the
uid and the runner's argv, env and limits, with the runner's fds. The server forks a child that

  1. opens the holder's namespaces and checks they are the ones bubblewrap reported (a reused pid cannot
     redirect a run), joins ipc, uts, net, cgroup, pid and mount, and takes the holder's root (chroot);
  2. forks the run, which becomes a process of the sandbox's pid namespace: new session, the resource limits,
     an empty capability bounding set, no supplementary groups, the leased uid and gid for real, effective and
     saved ids (which clears every capability), no inheritable capabilities, no_new_privs; it checks all of
     this in /proc/self/status and exits 126 if any is not so, then takes its fds and env and runs the script;
  3. waits for the run and writes its exit status on the status fd (a number, or "signal N").

Only the root-mode sandbox uses it (joining namespaces needs root). Run as `python zygote.py` with the socket's
fd in AUTOGRADER_ZYGOTE_FD and the sandbox's environment; it prints nothing and exits when the socket closes.
"""

from __future__ import annotations

import ctypes
import json
import os
import runpy
import signal
import socket
import sys

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 4, 24, 38
NAMESPACES = ("ipc", "uts", "net", "cgroup", "pid", "mnt")  # mount last: the others are opened through /proc
RUN_FDS = 5  # stdin, the log (stdout and stderr), the answer (fd 3), the key (fd 4), the status
SETUP_FAILED = 126


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def preimport() -> None:
    """The libraries every run imports; module state that depends on the run (paths, seeds) is reset later."""
    sys.modules.setdefault("rfc3987_syntax", None)  # what startup.py does: 2 s saved, no schema uses it
    import ipykernel.kernelapp  # noqa: F401
    import IPython.core.interactiveshell  # noqa: F401
    import jupyter_client.manager  # noqa: F401
    import nbclient  # noqa: F401
    import nbformat  # noqa: F401
    import numpy  # noqa: F401
    import torch  # noqa: F401


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise OSError(ctypes.get_errno(), what)


def join_sandbox(request: dict) -> None:
    """In the forked child, as root: join the holder's namespaces (the ones bubblewrap reported) and its root."""
    holder = int(request["holder_pid"])
    fds = {name: os.open(f"/proc/{holder}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC) for name in NAMESPACES}
    root = os.open(f"/proc/{holder}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    for name, fd in fds.items():
        expected = request["namespaces"].get(name)
        if expected is None and name != "cgroup":  # bubblewrap makes the cgroup namespace only where it can
            raise OSError(f"bubblewrap reported no {name} namespace")
        if expected is not None and os.fstat(fd).st_ino != int(expected):
            raise OSError(f"the {name} namespace of pid {holder} is not the sandbox's (the holder is gone)")
    for name, fd in fds.items():
        _check(_libc.setns(fd, 0) == 0, f"setns({name})")
        os.close(fd)
    os.fchdir(root)
    os.chroot(".")
    os.close(root)
    os.chdir(request["cwd"])


def drop_to(uid: int, limits: dict) -> None:
    """In the run, still root: session, limits, no capability left or obtainable, then the sandbox's uid."""
    import resource

    os.setsid()
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, "RLIMIT_" + name.upper()), (int(value[0]), int(value[1])))
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in range(last + 1):
        _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0, f"drop capability {cap} from the bounding set")
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # from root to a non-zero uid: permitted, effective and ambient sets are cleared
    header, data = _CapHeader(0x20080522, 0), (_CapData * 2)()  # _LINUX_CAPABILITY_VERSION_3: inheritable too
    _check(_libc.capset(ctypes.byref(header), data) == 0, "clear the inheritable capabilities")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "no_new_privs")
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        if int(status[field].strip(), 16) != 0:
            raise OSError(f"{field} is not empty after dropping privileges")
    if status["NoNewPrivs"].strip() != "1" or any(int(x) != uid for x in status["Uid"].split() + status["Gid"].split()):
        raise OSError("the run's ids or no_new_privs are not what they should be")
    _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # as after an exec; the runners make themselves non-dumpable


def take_fds(fds: list[int]) -> None:
    """stdin, stdout = stderr = the log, fd 3 the answer, fd 4 the key; every other fd is closed."""
    stdin, log, answer, key = (os.dup(fd) for fd in fds[:4])  # fresh numbers first: none clobbers another
    for fd, target in ((stdin, 0), (log, 1), (log, 2), (answer, 3), (key, 4)):
        os.dup2(fd, target)
    os.closerange(5, 1 << 20)  # before the limits: NOFILE may be below a number the zygote had open


def become(request: dict) -> None:
    """The run's Python state: argv, environment, import paths of a fresh interpreter, fresh random state."""
    import importlib
    import random
    import tempfile

    script = request["argv"][0]
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = list(request["argv"])
    sys.path[0] = os.path.dirname(script)  # as `python script` would: the script's folder first
    sys.path_importer_cache.clear()  # finders cached on the host's tree know nothing of the sandbox's
    importlib.invalidate_caches()
    tempfile.tempdir = None
    random.seed()
    try:
        import numpy

        numpy.random.seed()
    except ImportError:
        pass


def run(request: dict, fds: list[int]) -> int:
    """The forked child: join the sandbox, fork the run inside it, wait, report how it ended."""
    status_fd = fds[4]
    try:
        from run_then_exit import run_then_exit  # the zygote's folder (autograder/inside) is first on its sys.path

        join_sandbox(request)
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                take_fds(fds)  # from here on fd 2 is the run's log
                drop_to(int(request["uid"]), request["limits"])
                become(request)
            except BaseException as error:  # noqa: BLE001 (reported in the run's log, never run half set up)
                os.write(2, f"sandbox set-up failed: {type(error).__name__}: {error}\n".encode())
                os._exit(SETUP_FAILED)
            run_then_exit(lambda: runpy.run_path(request["argv"][0], run_name="__main__"))
        for fd in fds[:4]:
            os.close(fd)
        _, wait_status = os.waitpid(pid, 0)
        ended = (f"signal {os.WTERMSIG(wait_status)}" if os.WIFSIGNALED(wait_status)
                 else str(os.WEXITSTATUS(wait_status)))
    except BaseException as error:  # noqa: BLE001
        ended = f"failed {type(error).__name__}: {error}"[:500]
    os.write(status_fd, ended.encode())
    return 0


def serve(sock: socket.socket) -> None:
    """One request per message: a JSON object and the run's five fds; a child per request, reaped by the kernel."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1 << 20, RUN_FDS)
        except OSError:
            return
        if not message:
            return
        if len(fds) != RUN_FDS:
            for fd in fds:
                os.close(fd)
            continue
        request = json.loads(message)
        if os.fork() == 0:
            sock.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                run(request, fds)
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)


def main() -> int:
    sock = socket.socket(fileno=int(os.environ.pop("AUTOGRADER_ZYGOTE_FD")))
    try:
        preimport()
    except BaseException as error:  # noqa: BLE001
        sock.sendall(f"not ready: {type(error).__name__}: {error}"[:1000].encode())
        return 1
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:  # fork copies one thread: a library that started others would be half there in each run
        sock.sendall(f"not ready: {threads} threads after the imports".encode())
        return 1
    sock.sendall(b"ready")
    serve(sock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
