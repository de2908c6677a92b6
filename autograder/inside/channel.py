"""The result channel from a trusted runner in the sandbox to the grader, authenticated.

The grader starts the runner with fd 3 (write end of the answer pipe) and fd 4 (read end of a
pipe holding a fresh 32-byte key). `take()` moves both out of the well-known numbers before
any student code exists; the runner sends `seal(key, payload)` = hex HMAC-SHA256, newline,
payload. The key is read only when sending, so a process forked earlier (the verdict's student
child) never had it in memory, and the runner is non-dumpable, so /proc/<pid>/{fd,mem} of the
runner are closed to the student. The grader `unseal`s: anything unsigned or altered is Forged.
"""

from __future__ import annotations

import hashlib
import hmac
import os

CHANNEL_FD, KEY_FD = 3, 4
KEY_BYTES = 32


class Forged(ValueError):
    """The answer on the channel is not signed with this run's key."""


def seal(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).hexdigest().encode("ascii") + b"\n" + payload


def unseal(key: bytes, data: bytes) -> bytes:
    """The payload of a sealed answer; raises Forged when the MAC is missing or wrong."""
    mac, sep, payload = data.partition(b"\n")
    if not sep or len(mac) != 64:
        raise Forged("the answer carries no signature")
    want = hmac.new(key, payload, hashlib.sha256).hexdigest().encode("ascii")
    if not hmac.compare_digest(mac, want):
        raise Forged("the answer's signature does not match this run's key")
    return payload


class Channel:
    """The runner's private end of the channel: a non-inheritable copy of fd 3 and of the key fd."""

    def __init__(self, fd: int, key_fd: int | None):
        self.fd, self.key_fd = fd, key_fd

    def close(self) -> None:
        """Drop both ends (the forked student process calls this before running anything)."""
        for fd in (self.fd, self.key_fd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.fd = self.key_fd = None

    def send(self, payload: bytes) -> None:
        key = b""
        if self.key_fd is not None:
            while len(key) < KEY_BYTES:
                chunk = os.read(self.key_fd, KEY_BYTES - len(key))
                if not chunk:
                    break
                key += chunk
        data = seal(key, payload) if len(key) == KEY_BYTES else payload  # no key: the grader will call it forged
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        self.close()


def take() -> Channel | None:
    """Move fd 3/4 to fresh close-on-exec numbers and close 3/4; None when there is no channel."""
    try:
        fd = os.dup(CHANNEL_FD)  # os.dup makes non-inheritable copies
    except OSError:
        return None
    os.close(CHANNEL_FD)
    try:
        key_fd = os.dup(KEY_FD)
        os.close(KEY_FD)
    except OSError:
        key_fd = None
    return Channel(fd, key_fd)
