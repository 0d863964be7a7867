"""File locks that keep processes sharing a store out of each other's way.

Each store path has its own lock file, held while the path is added or built. The GC lock is
held shared by every operation that adds or uses paths and exclusively by the collector.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(lock_file: Path, shared: bool = False, blocking: bool = True) -> Iterator[bool]:
    """Hold an flock on `lock_file`; yields False if non-blocking and someone else holds it."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            fcntl.flock(fd, mode if blocking else mode | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
