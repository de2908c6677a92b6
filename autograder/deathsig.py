"""Children that die with their parent, armed between fork and exec (no window where they could outlive it).

`arm(parent_pid)` is a `preexec_fn`: it sets PR_SET_PDEATHSIG = SIGKILL in the forked child, then exits
at once if the parent is already gone (it died between the fork and the prctl). Armed after exec (in the
child's own first lines, or by bwrap's --die-with-parent), a child of a parent killed under load lived on.
"""

from __future__ import annotations

import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up in the parent: the forked child only calls it


def arm(parent_pid: int) -> None:
    """In a forked child, before exec: SIGKILL when the parent dies; gone now if it already has."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(3)
