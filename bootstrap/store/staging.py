"""Copying a file or tree from outside into a staging directory of the store.

The copy is what gets hashed and named, never the source, so a source that changes while it
is copied cannot give a path whose name and contents disagree. Only what a NAR can hold is
copied (directories, regular files with their executable bit, symlinks), without recursion, so
a tree of any depth the file system can name is copied. Every failure is one line naming the
file; nothing is left behind but the staging directory, which its owner removes.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from bootstrap.errors import BootstrapError
from bootstrap.store.disk import is_disk_full

_CHUNK = 1 << 20


def copy_in(source: Path, dest: Path) -> None:
    """Copy `source` (a file, symlink or tree) to `dest`, which must not exist yet."""
    try:
        os.lstat(source)
    except FileNotFoundError:
        raise BootstrapError(f"{source}: no such file or directory") from None
    stack = [(os.fsencode(source), os.fsencode(dest))]
    while stack:
        src, dst = stack.pop()
        try:
            stack += _copy_node(src, dst)
        except OSError as err:
            if is_disk_full(err):
                raise
            raise _source_error(source, err) from None


def _copy_node(src: bytes, dst: bytes) -> list[tuple[bytes, bytes]]:
    """Copy one entry; return the children of a directory, still to copy."""
    st = os.lstat(src)
    if stat.S_ISDIR(st.st_mode):
        os.mkdir(dst, 0o755)
        return [(os.path.join(src, n), os.path.join(dst, n)) for n in os.listdir(src)]
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISREG(st.st_mode):
        _copy_file(src, dst)
    else:
        raise BootstrapError(
            f"{os.fsdecode(src)}: not a regular file, directory or symlink; "
            "a store path cannot hold it"
        )
    return []


def _copy_file(src: bytes, dst: bytes) -> None:
    # O_NONBLOCK: a file swapped for a FIFO meanwhile must not hang the add
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    fd_in = os.open(src, flags)
    try:
        st = os.fstat(fd_in)
        if not stat.S_ISREG(st.st_mode):
            raise BootstrapError(f"{os.fsdecode(src)}: changed type while being copied")
        mode = 0o755 if st.st_mode & stat.S_IXUSR else 0o644
        fd_out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            while os.sendfile(fd_out, fd_in, None, _CHUNK):
                pass
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)


def _source_error(source: Path, err: OSError) -> BootstrapError:
    where = os.fsdecode(err.filename) if err.filename else os.fspath(source)
    if err.errno == errno.ENOENT:
        return BootstrapError(f"{where}: vanished while {source} was being added; nothing added")
    if err.errno == errno.ELOOP:
        return BootstrapError(f"{where}: changed type while being copied; nothing added")
    return BootstrapError(f"{where}: {err.strerror} (while adding {source}); nothing added")
