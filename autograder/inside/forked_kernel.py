"""A notebook's kernel forked from its runner, when the runner already holds the kernel's libraries.

A runner forked from the zygote has imported ipykernel and torch; starting the kernel as a new interpreter would
import them again (about 2 CPU s per notebook). `install()` makes jupyter_client's local launcher fork instead:
the kernel is a child of the runner, in the same sandbox and uid, that starts its own session, closes every fd
but stdin, stdout and stderr (the result channel, the runner's event loop and sockets) before any kernel code
runs, and then runs IPKernelApp with the arguments the launcher was given. Everything else stays jupyter_client's:
the connection file, ports, interrupts (SIGINT to the kernel's process group) and shutdown. A runner that is a
fresh interpreter (the student-side check) does not install it and starts the kernel as before.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from typing import NoReturn

from run_then_exit import run_then_exit

LAUNCHER = ("-m", "ipykernel_launcher")


class ForkedKernel:
    """What jupyter_client asks of the kernel's Popen: pid, poll, wait, send_signal, terminate, kill."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -signal.SIGKILL
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                import subprocess

                raise subprocess.TimeoutExpired(["kernel"], timeout)
            time.sleep(0.01)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _kernel(cmd: list[str], env: dict | None, cwd: str | None, ready: int) -> NoReturn:
    """In the forked child: a session of its own, no fd of the runner, then the kernel; never returns."""

    def kernel() -> None:
        os.setsid()
        os.write(ready, b"s")
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        signal.set_wakeup_fd(-1)  # the runner's event loop set it to its own socket: closed below, never reused
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
        os.closerange(3, 1 << 20)  # the channel, the key, the runner's event loop and zmq sockets: none is ours
        import asyncio

        asyncio.events._set_running_loop(None)  # the runner's loop (its fds closed above) is not the kernel's
        asyncio.set_event_loop(None)
        ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE = 1, as a freshly started kernel is
        if cwd:
            os.chdir(cwd)
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        sys.argv = [cmd[0]] + cmd[3:]
        from ipykernel.kernelapp import IPKernelApp

        IPKernelApp.launch_instance(argv=cmd[3:])

    run_then_exit(kernel)


def install() -> bool:
    """Fork kernels from this process from now on, if it holds ipykernel already; True when installed."""
    if "ipykernel.kernelapp" not in sys.modules:
        return False
    from jupyter_client.provisioning import local_provisioner

    plain_launch = local_provisioner.launch_kernel

    def launch(cmd: list[str], stdin=None, stdout=None, stderr=None, env=None, independent=False, cwd=None, **kw):
        if tuple(cmd[1:3]) != LAUNCHER or len(os.listdir("/proc/self/task")) != 1:  # a thread would be half copied
            return plain_launch(cmd, stdin=stdin, stdout=stdout, stderr=stderr, env=env, independent=independent,
                                cwd=cwd, **kw)
        env = dict(os.environ if env is None else env)
        if not independent:  # what jupyter_client's launcher gives a kernel that lives and dies with its client
            env["JPY_PARENT_PID"] = str(os.getpid())  # IPKernelApp read it when imported: given as an argument too
            cmd = cmd + [f"--IPKernelApp.parent_handle={os.getpid()}"]
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            _kernel(cmd, env, cwd, ready_w)
        os.close(ready_w)
        os.read(ready_r, 1)  # its own session first: jupyter_client reads its process group right after this
        os.close(ready_r)
        return ForkedKernel(pid)

    local_provisioner.launch_kernel = launch
    return True
