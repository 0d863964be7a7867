"""The file system under the store: telling a full disk apart, and space kept for the collector.

A full disk must end a command with one line naming the full file system, never a traceback.
And the collector must still work then: it needs a little space for the database (SQLite cannot
even open a database on a completely full file system), so the store keeps `RESERVE_BYTES` in
`var/bootstrap/reserved`, which `store gc` deletes before it opens the database and makes again
once it has freed space (as Nix's `gc-reserved-space`).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from bootstrap.errors import BootstrapError

RESERVE_BYTES = 4 << 20
_FULL = (errno.ENOSPC, errno.EDQUOT)


def mount_point(path: Path | str) -> str:
    """The mount point of the file system holding `path` (or its nearest existing parent)."""
    current = os.path.abspath(path)
    while not os.path.exists(current):
        current = os.path.dirname(current)
    current = os.path.realpath(current)
    while not os.path.ismount(current):
        current = os.path.dirname(current)
    return current


def is_full(path: Path | str) -> bool:
    """Whether the file system holding `path` has no space left for an unprivileged writer."""
    try:
        stats = os.statvfs(mount_point(path))
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 4096 or stats.f_favail == 0


def is_disk_full(err: OSError) -> bool:
    return err.errno in _FULL


def disk_full(path: Path | str) -> BootstrapError:
    """The one-line error for a full file system, naming it and what was being written."""
    return BootstrapError(
        f"no space left on the file system mounted at {mount_point(path)} (writing {path}): "
        "free some space (`bootstrap store gc` deletes what no root holds) and run again"
    )


@contextmanager
def disk_full_as_error(path: Path | str) -> Iterator[None]:
    """Turn ENOSPC/EDQUOT raised inside into `disk_full`, named after the file written or
    else `path`."""
    try:
        yield
    except OSError as err:
        if not is_disk_full(err):
            raise
        raise disk_full(os.fsdecode(err.filename) if err.filename else path) from None


def reserve_file(state_dir: Path) -> Path:
    return state_dir / "reserved"


def ensure_reserve(state_dir: Path) -> None:
    """Make the reserve if it is missing and it can be made (no room, a read-only store: it is
    tried again next time; no command fails for it)."""
    file = reserve_file(state_dir)
    if file.exists():
        return
    partial = file.with_name(f".{file.name}.tmp")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.posix_fallocate(fd, 0, RESERVE_BYTES)
        finally:
            os.close(fd)
        os.replace(partial, file)
    except OSError:
        with suppress(OSError):
            partial.unlink()


def release_reserve(state_dir: Path) -> None:
    reserve_file(state_dir).unlink(missing_ok=True)
