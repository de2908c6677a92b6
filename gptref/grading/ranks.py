"""Waiting for the forked ranks of days 9 and 11's launchers: asleep until one exits, never past a deadline."""

from __future__ import annotations

import time
from multiprocessing.connection import wait

FAILED_GRACE_S = 2.0  # once one rank has failed, how long the others get to write their own error


def wait_for_ranks(workers: list, seconds: float) -> None:
    """Join the started `multiprocessing.Process` ranks: until all exit, one fails (then FAILED_GRACE_S more, since
    the others would wait for it in their next collective), or `seconds` pass; kill whatever is left."""
    deadline = time.monotonic() + seconds
    running = list(workers)
    while running and time.monotonic() < deadline:
        ended = wait([w.sentinel for w in running], timeout=deadline - time.monotonic())  # sleeps until one exits
        for w in running:
            if w.sentinel in ended:
                w.join()
        running = [w for w in running if w.exitcode is None]
        if any(w.exitcode not in (None, 0) for w in workers):
            deadline = min(deadline, time.monotonic() + FAILED_GRACE_S)
    for w in workers:
        if w.is_alive():
            w.kill()
        w.join()
