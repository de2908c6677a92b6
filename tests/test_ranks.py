"""gptref.grading.ranks.wait_for_ranks, the wait of days 9 and 11's launchers, on real forked processes."""

from __future__ import annotations

import multiprocessing
import os
import time

from gptref.grading.ranks import FAILED_GRACE_S, wait_for_ranks


def _rank(behaviour: str) -> None:
    if behaviour == "hang":
        time.sleep(600)
    os._exit(1 if behaviour == "fail" else 0)


def _started(*behaviours: str) -> list:
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_rank, args=(b,)) for b in behaviours]
    for w in workers:
        w.start()
    return workers


def test_ranks_that_finish_are_joined_with_their_exit_codes():
    workers = _started("ok", "ok", "fail")
    wait_for_ranks(workers, seconds=60)
    assert [w.exitcode for w in workers] == [0, 0, 1]


def test_a_failed_rank_gives_the_others_the_grace_then_they_are_killed():
    workers = _started("fail", "hang")
    start = time.monotonic()
    wait_for_ranks(workers, seconds=120)
    waited = time.monotonic() - start
    assert workers[0].exitcode == 1 and workers[1].exitcode == -9, [w.exitcode for w in workers]
    assert FAILED_GRACE_S <= waited < 60, f"waited {waited:.1f} s: the grace is {FAILED_GRACE_S} s, the limit 120 s"


def test_ranks_past_the_deadline_are_killed():
    workers = _started("hang", "hang")
    start = time.monotonic()
    wait_for_ranks(workers, seconds=1.0)
    assert [w.exitcode for w in workers] == [-9, -9]
    assert time.monotonic() - start >= 1.0
    assert not any(w.is_alive() for w in workers)
