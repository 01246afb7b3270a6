"""The runner lock: an exclusive, non-blocking OS lock on a file.

The OS drops it when the process holding it dies (crash, SIGKILL, power loss), which is how any
later command knows that an item left in ``marking`` has no live runner.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from pathlib import Path


def hostname() -> str:
    """This machine's name: the default station, and where a runner lease says it runs."""
    return socket.gethostname()


class FileLock:
    """``flock`` (``msvcrt.locking`` on Windows) on ``path``, taken without waiting."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True when this object holds it afterwards."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if sys.platform == "win32":  # pragma: no cover
            import msvcrt

            with contextlib.suppress(OSError):
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        # closing drops a flock
        os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def is_free(self) -> bool:
        """Whether nobody (this object included) holds the lock right now: probe and let go."""
        if self.held:
            return False
        probe = FileLock(self.path)
        if not probe.try_acquire():
            return False
        probe.release()
        return True
