"""Locks between processes on one server: an exclusive, non-blocking flock on a file.

    holding(path)   a context manager: yields None when this process got the lock (held
                    until the block ends, or the process dies: the kernel drops it, so a
                    kill -9 never leaves a stale lock), else the pid written by its holder

Used so that two delivery runs (the daemon's and a hand-run `send`) never send one pending
message twice, and so that a second daemon on one data directory refuses to start.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not a POSIX system: no locking to be had
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def holding(path: Path) -> Iterator[str | None]:
    """Hold the lock at ``path`` for the block: None if this process has it, else who does."""
    if fcntl is None:  # pragma: no cover
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        holder: str | None = None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
        if holder is not None:
            # Outside the except: what the block raises is not "during BlockingIOError".
            yield holder
            return
        # The pid only tells a second process who holds the lock: a full disk must not
        # keep the holder from working (the flock is what counts).
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield None
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
