"""The grader's side of the pre-imported zygote (autograder/inside/zygote.py): start it once, hand it runs.

One zygote per grading process, shared by its sandboxes (the notebook's and the verdict's lanes send their
runs over the same socket; each message is one run). It is started with the sandbox's environment, so libraries
that read it when they load (OpenMP's thread count) see what a run would, and it dies with this process. When
it cannot start (not root, a library missing, a thread left running after the imports), `zygote()` says why and
the sandbox runs its script in a fresh interpreter as before.
"""

from __future__ import annotations

import functools
import json
import os
import select
import socket
import subprocess
import sys
import threading

from . import deathsig

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inside", "zygote.py")
START_TIMEOUT = 180  # seconds for its imports on a busy machine


class ZygoteUnavailable(RuntimeError):
    pass


class Zygote:
    """A started zygote: `send(request, fds)` hands it one run (see zygote.py for the request's fields)."""

    def __init__(self, env: dict[str, str]):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = ours
        self.lock = threading.Lock()
        spawned: dict = {}
        started = threading.Event()

        def parent() -> None:
            """Start the zygote and wait for it: its death signal is armed for the thread that started it (Linux
            sends PR_SET_PDEATHSIG when that thread ends), so this thread lives exactly as long as the zygote, not
            as long as the verdict's pool thread that may have asked for it first."""
            try:
                spawned["proc"] = subprocess.Popen(
                    [sys.executable, SERVER], env={**env, "AUTOGRADER_ZYGOTE_FD": str(theirs.fileno())}, cwd="/",
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    pass_fds=(theirs.fileno(),), start_new_session=True,
                    preexec_fn=functools.partial(deathsig.arm, os.getpid()))
            except OSError as error:
                spawned["error"] = error
            started.set()
            if "proc" in spawned:
                spawned["proc"].wait()

        threading.Thread(target=parent, name="zygote-parent", daemon=True).start()
        started.wait()
        theirs.close()
        if "error" in spawned:
            ours.close()
            raise ZygoteUnavailable(f"it could not start: {spawned['error']}")
        self.proc = spawned["proc"]
        ready, _, _ = select.select([ours], [], [], START_TIMEOUT)
        answer = ours.recv(4096) if ready else b"no answer within %d s" % START_TIMEOUT
        if answer != b"ready":
            self.close()
            raise ZygoteUnavailable(answer.decode(errors="replace") or "it exited while importing")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, request: dict, fds: list[int]) -> None:
        with self.lock:
            socket.send_fds(self.sock, [json.dumps(request).encode()], fds)

    def close(self) -> None:
        self.sock.close()
        try:
            self.proc.kill()
        except OSError:
            pass
        self.proc.wait()


_zygotes: dict[str, Zygote] = {}  # one per environment, for this process's life
_refused: dict[str, str] = {}  # environment -> why its zygote could not start (not retried)
_start_lock = threading.Lock()


def zygote(env: dict[str, str]) -> Zygote:
    """This process's zygote for runs with environment `env` (started on first use, restarted if it died);
    raises ZygoteUnavailable with the reason when it cannot be had."""
    key = json.dumps(env, sort_keys=True)
    with _start_lock:
        if key in _refused:
            raise ZygoteUnavailable(_refused[key])
        current = _zygotes.get(key)
        if current is not None and current.alive():
            return current
        if current is not None:  # it died: its socket goes, a new one is started
            current.close()
        try:
            _zygotes[key] = Zygote(env)
        except (ZygoteUnavailable, OSError) as error:
            _refused[key] = str(error)
            raise ZygoteUnavailable(str(error)) from error
        return _zygotes[key]
