"""Run the verdict's student code in a forked child; only the (non-dumpable) parent can sign.

`run_forked(main, channel)`: the parent makes itself non-dumpable, forks, and waits. The child
drops the channel (fd and key, unread) before anything else, runs `main()`, whose answer goes
to `raw_results()` (a pipe to the parent) as before. The parent reads the raw answer, reads the
key only now, and sends the answer signed. Student code in the child can write to every fd it
has and read all of its own memory: it finds neither the channel nor the key.
"""

from __future__ import annotations

import ctypes
import os
import select

RAW_CAP = 512 * 1024 * 1024
_raw_fd: int | None = None


def _no_dump() -> None:
    try:
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0: no /proc/<pid>/{fd,mem}, no ptrace
    except Exception:
        pass


def raw_results():
    """In the child: the file the raw answer is written to (the pipe to the signing parent)."""
    if _raw_fd is None:
        raise RuntimeError("raw_results() is only available in the child of run_forked()")
    return os.fdopen(_raw_fd, "w")


def run_forked(main, chan) -> int:
    global _raw_fd
    _no_dump()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        if chan is not None:
            chan.close()
        os.close(r)
        _raw_fd = w
        try:
            code = main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            code = 1
        os._exit(code or 0)
    os.close(w)
    raw = _collect(pid, r)
    if chan is not None and raw:
        chan.send(raw)
    os._exit(0)


def _collect(pid: int, r: int) -> bytes:
    """Everything the child wrote before it exited (a grandchild holding the pipe cannot stall us)."""
    buf = bytearray()
    child_gone = False
    while True:
        ready, _, _ = select.select([r], [], [], 0.2)
        if ready:
            chunk = os.read(r, 1 << 20)
            if not chunk:
                break
            if len(buf) < RAW_CAP:
                buf += chunk
        elif not child_gone:
            try:
                child_gone = os.waitpid(pid, os.WNOHANG)[0] == pid
            except ChildProcessError:
                child_gone = True
        else:
            break
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    os.close(r)
    return bytes(buf)
