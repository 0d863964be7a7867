"""No-follow walks over directory trees, and deleting a tree of any depth.

A tree a builder made (its build directory, its staged outputs) may hold symlinks to anywhere
on the host, under any name. Every operation here works through directory file descriptors
opened with O_NOFOLLOW and acts on an entry relative to its directory after an lstat, so it
never follows a symlink: it reads, changes or deletes only the tree's own entries. Walks are
iterative and hold one directory open at a time, so trees of any depth are fine. Directories
the walk enters are given owner rwx first if they lack it (a builder, or a store path's
read-only canonical modes, may leave them so).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

Visit = Callable[[int, str, os.stat_result], None]
"""Called with (directory fd, entry name, the entry's lstat) for each entry of a tree."""


def _enter(dir_fd: int, name: str, st: os.stat_result) -> int:
    """Open the directory entry `name` (an lstat said it is a directory), owner rwx first."""
    if st.st_mode & stat.S_IRWXU != stat.S_IRWXU:
        os.chmod(name, stat.S_IMODE(st.st_mode) | stat.S_IRWXU, dir_fd=dir_fd)
    return os.open(name, DIR_FLAGS, dir_fd=dir_fd)


def walk_at(dir_fd: int, name: str, visit: Visit) -> None:
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
                    parent = os.open("..", DIR_FLAGS, dir_fd=fd)
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
        walk_at(parent, os.path.basename(os.path.abspath(root)), visit)
    finally:
        os.close(parent)


def remove_entry(dir_fd: int, name: str, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        os.rmdir(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def remove_tree(path: Path | str | bytes) -> None:
    """Delete a file, symlink or tree (even a read-only or unreadable one); a missing path is
    fine."""
    with suppress(FileNotFoundError):
        walk_tree(path, remove_entry)
