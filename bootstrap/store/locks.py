"""File locks that keep processes sharing a store out of each other's way.

Each store path has its own lock file, held while the path is added or built. The GC lock is
held shared by every operation that adds or uses paths and exclusively by the collector. Each
temporary directory in the store has a lock file too, held by its owner while it lives, so
the collector and the next add can tell a live one from a dead process's leftover.
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


def is_held(lock_file: Path) -> bool:
    """Whether some open file description (another process, or another fd of this one) holds
    an flock on `lock_file`; a missing file is not held. Creates nothing."""
    try:
        fd = os.open(lock_file, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
