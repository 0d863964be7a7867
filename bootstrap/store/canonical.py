"""Canonical metadata for store contents, and the host's changes to trees a builder made.

Canonical: every file gets mtime 1, read-only permission bits (0444, or 0555 when the owner
could execute it), no setuid/setgid/sticky bits and no extended attributes. Ownership is left
as is.

Every change here goes through `bootstrap.fstree`'s no-follow walks, so a builder's symlinks
are never followed. Callers run them once the builder is dead, so nothing changes the tree
during the walk.
"""

from __future__ import annotations

import errno
import os
import stat
from contextlib import suppress
from pathlib import Path

from bootstrap.fstree import remove_entry, walk_at, walk_tree

CANONICAL_MTIME = 1
SETID_BITS = stat.S_ISUID | stat.S_ISGID

_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

# --- canonical metadata -----------------------------------------------------------------------


def _strip_xattrs(dir_fd: int, name: str) -> None:
    path = f"/proc/self/fd/{dir_fd}/{name}"  # the directory by its descriptor, never by name
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return
    for xattr in names:
        try:
            os.removexattr(path, xattr, follow_symlinks=False)
        except OSError as err:
            if err.errno not in (errno.ENOTSUP, errno.EPERM, errno.EACCES):
                raise


def _canonicalise_entry(dir_fd: int, name: str, st: os.stat_result) -> None:
    if not stat.S_ISLNK(st.st_mode):
        executable = stat.S_ISDIR(st.st_mode) or st.st_mode & stat.S_IXUSR
        os.chmod(name, 0o555 if executable else 0o444, dir_fd=dir_fd)
        _strip_xattrs(dir_fd, name)
    os.utime(name, ns=(CANONICAL_MTIME * 10**9,) * 2, dir_fd=dir_fd, follow_symlinks=False)


def canonicalise(root: Path) -> None:
    """Canonicalise a tree in place, children before their directory."""
    walk_tree(root, _canonicalise_entry)


# --- builder-made trees -----------------------------------------------------------------------


def _clear_setid_entry(dir_fd: int, name: str, st: os.stat_result) -> None:
    if not stat.S_ISLNK(st.st_mode) and st.st_mode & SETID_BITS:
        os.chmod(name, stat.S_IMODE(st.st_mode) & ~SETID_BITS, dir_fd=dir_fd)


def clear_setid_bits(root: Path) -> None:
    """Take the setuid and setgid bits off every file and directory of a tree."""
    walk_tree(root, _clear_setid_entry)


def tree_size(root: Path) -> int:
    """The bytes a tree holds: file sizes and symlink target lengths, each hard link counted."""
    total = 0

    def add(_dir_fd: int, _name: str, st: os.stat_result) -> None:
        nonlocal total
        if not stat.S_ISDIR(st.st_mode):
            total += st.st_size

    walk_tree(root, add)
    return total


def move_tree(source: Path, dest: Path) -> None:
    """Rename `source` (a file or tree) to `dest`. Linux moves a directory to another parent
    only for a user who may write it (its `..` changes), so a read-only one is made writable
    for the move and read-only again after."""
    mode = os.lstat(source).st_mode
    if not stat.S_ISDIR(mode) or mode & stat.S_IWUSR:
        os.rename(source, dest)
        return
    os.chmod(source, stat.S_IMODE(mode) | stat.S_IWUSR)
    os.rename(source, dest)
    os.chmod(dest, stat.S_IMODE(mode))


def make_private_dir(path: Path) -> None:
    """Make `path` a directory only its owner can enter (0700 whatever the umask; it is never
    more open than that, even for a moment); an existing directory is made 0700."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            raise
    os.chmod(path, 0o700)


def replace_file(directory: Path, name: str, data: bytes) -> None:
    """Write `data` as a new regular file `name` in `directory`, first deleting whatever entry
    is there under that name (a builder's symlink is removed, never written through)."""
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with suppress(FileNotFoundError):
            walk_at(dir_fd, name, remove_entry)
        fd = os.open(name, _NEW_FILE_FLAGS, 0o644, dir_fd=dir_fd)
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
    finally:
        os.close(dir_fd)
