"""The end of a forked process that runs Python code: its exit code as an interpreter would give it, then os._exit.

A forked child must never return into its parent's code nor run the parent's atexit hooks and finalizers, so it
leaves with os._exit; before that, the code's SystemExit becomes the exit code, any other exception is printed
(exit 1), and stdout and stderr are flushed.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, NoReturn


def run_then_exit(main: Callable[[], object]) -> NoReturn:
    try:
        main()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
    os._exit(code)
