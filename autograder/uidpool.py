"""Machine-wide leases on sandbox uids, so any number of grading runs share one machine safely.

A lease is an exclusive flock on `<dir>/<uid>.lock`, held by the grading worker until it exits
(the kernel drops it when the process dies, however it dies: a dead holder's uid is free again
at once). Whoever takes a uid first kills whatever that uid still runs (the remains of a dead
holder), so a sandbox only ever contains its own processes. One lease per process and lane: a worker
runs at most one sandbox per lane at a time (the notebook run in lane 0 while the trusted verdict
runs in lane 1), so two sandboxes running at once never share a uid.
"""

from __future__ import annotations

import fcntl
import os
import signal

_held: dict[tuple[str, int, int, int], tuple[int, object]] = {}


class PoolExhausted(RuntimeError):
    pass


def lease(lock_dir: str, base: int, count: int, lane: int = 0) -> int:
    """A uid in [base, base + count) that no other process on the machine, nor another lane of this
    one, holds; held until exit."""
    key = (lock_dir, base, count, lane)
    if key in _held:
        return _held[key][0]
    os.makedirs(lock_dir, mode=0o700, exist_ok=True)
    start = os.getpid() % max(1, count)  # spread the first tries; any free uid will do
    for k in range(count):
        uid = base + (start + k) % count
        f = open(os.path.join(lock_dir, f"{uid}.lock"), "a")  # non-inheritable: sandboxes never hold it
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            continue
        kill_all_of(uid)
        _held[key] = (uid, f)
        return uid
    raise PoolExhausted(f"all {count} sandbox uids from {base} are leased (raise c.Autograder.sandbox_uid_count "
                        f"or lower the number of workers); leases live in {lock_dir}")


def kill_all_of(uid: int) -> None:
    """SIGKILL every process of `uid` (a forked child takes the uid and kills -1)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        except BaseException:  # noqa: BLE001
            pass
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
