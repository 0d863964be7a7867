"""Canonical metadata for store contents, and the host's walks over trees a builder made.

Canonical: every file gets mtime 1, read-only permission bits (0444, or 0555 when the owner
could execute it), no setuid/setgid/sticky bits and no extended attributes. Ownership is left
as is.

A tree a builder made (its build directory, its staged outputs) may hold symlinks to anywhere
on the host, under any name. Every operation here works through directory file descriptors
opened with O_NOFOLLOW and acts on an entry relative to its directory after an lstat, so it
never follows a symlink: it reads, changes, writes or deletes only the tree's own entries.
Callers run them once the builder is dead, so nothing changes the tree during the walk.
Directories the walk enters are given owner rwx first if they lack it (a builder may leave
unreadable ones).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

CANONICAL_MTIME = 1
SETID_BITS = stat.S_ISUID | stat.S_ISGID

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

Visit = Callable[[int, str, os.stat_result], None]
"""Called with (directory fd, entry name, the entry's lstat) for each entry of a tree."""


# --- no-follow walks --------------------------------------------------------------------------


def _enter(dir_fd: int, name: str, st: os.stat_result) -> int:
    """Open the directory entry `name` (an lstat said it is a directory), owner rwx first."""
    if st.st_mode & stat.S_IRWXU != stat.S_IRWXU:
        os.chmod(name, stat.S_IMODE(st.st_mode) | stat.S_IRWXU, dir_fd=dir_fd)
    return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def _walk_at(dir_fd: int, name: str, visit: Visit) -> None:
    """Visit the entry `name` of `dir_fd` and, if it is a directory, everything under it,
    children before their directory.

    Iterative and holding one directory open at a time (it climbs back through `..`), so a
    builder's tree of any depth is walked without running out of stack or descriptors.
    """
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISDIR(st.st_mode):
        fd = _enter(dir_fd, name, st)
        try:
            _walk_below(fd, visit)
        finally:
            os.close(fd)
    visit(dir_fd, name, st)


def _walk_below(top_fd: int, visit: Visit) -> None:
    """Visit everything under the directory `top_fd`, children before their directory."""
    fd = os.dup(top_fd)
    levels: list[tuple[str, os.stat_result, list[str]]] = [("", os.fstat(fd), os.listdir(fd))]
    try:
        while levels:
            pending = levels[-1][2]
            if not pending:
                name, st, _ = levels.pop()
                if levels:  # back up to the parent, then visit the finished directory
                    parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
                    os.close(fd)
                    fd = parent
                    visit(fd, name, st)
                continue
            name = pending.pop()
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                visit(fd, name, st)
                continue
            child = _enter(fd, name, st)
            os.close(fd)
            fd = child
            levels.append((name, st, os.listdir(fd)))
    finally:
        os.close(fd)


def walk_tree(root: Path, visit: Visit) -> None:
    """Visit every entry of the tree at `root` (which may be a file or a symlink), root last."""
    parent = os.open(os.path.dirname(os.path.abspath(root)), os.O_RDONLY | os.O_DIRECTORY)
    try:
        _walk_at(parent, os.path.basename(os.path.abspath(root)), visit)
    finally:
        os.close(parent)


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


def _remove_entry(dir_fd: int, name: str, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        os.rmdir(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def remove_tree(path: Path) -> None:
    """Delete a file, symlink or tree (even a read-only or unreadable one); a missing path is
    fine."""
    with suppress(FileNotFoundError):
        walk_tree(path, _remove_entry)


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
            _walk_at(dir_fd, name, _remove_entry)
        fd = os.open(name, _NEW_FILE_FLAGS, 0o644, dir_fd=dir_fd)
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
    finally:
        os.close(dir_fd)
