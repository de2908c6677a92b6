"""Write a file so that readers see the old content or the new, never half of it.

The content goes to a temporary file beside the target (named after this process, so two writers
never share one), which then takes the target's name in one step.
"""

from __future__ import annotations

import json
import os
from typing import IO, Any, Callable, Union

Content = Union[str, bytes, Callable[[IO], Any]]


def write_atomic(path: str, data: Content, mode: str = "w", *, newline: str | None = None,
                 encoding: str | None = None, perm: int | None = None, replace: bool = True) -> bool:
    """Write `data` (text, bytes, or a function given the open file) to `path` atomically.

    mode is "w" or "wb"; perm sets the file's permission bits before it appears; with replace=False
    an existing file wins (the first writer's content stays, e.g. a secret). Returns whether
    `path` now holds this call's content."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, mode, newline=newline, encoding=encoding) as f:
            data(f) if callable(data) else f.write(data)
        if perm is not None:
            os.chmod(tmp, perm)
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # fails if the file is there: the first writer wins
            return True
        except FileExistsError:
            return False
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: str, obj: Any, **dump_args) -> None:
    """`obj` as JSON at `path`, atomically (indent=1 unless told otherwise)."""
    dump_args.setdefault("indent", 1)
    write_atomic(path, lambda f: json.dump(obj, f, **dump_args))
