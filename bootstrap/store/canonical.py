"""Canonical metadata for store contents: what makes two stores hold bit-identical trees.

Every file gets mtime 1, read-only permission bits (0444, or 0555 when the owner could execute
it), no setuid/setgid/sticky bits and no extended attributes. Ownership is left as is.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

CANONICAL_MTIME = 1


def _strip_xattrs(path: str) -> None:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return
    for name in names:
        try:
            os.removexattr(path, name, follow_symlinks=False)
        except OSError as err:
            if err.errno not in (errno.ENOTSUP, errno.EPERM, errno.EACCES):
                raise


def _canonicalise_one(path: str, st: os.stat_result) -> None:
    if not stat.S_ISLNK(st.st_mode):
        executable = stat.S_ISDIR(st.st_mode) or st.st_mode & stat.S_IXUSR
        os.chmod(path, 0o555 if executable else 0o444)
        _strip_xattrs(path)
    os.utime(path, ns=(CANONICAL_MTIME * 10**9,) * 2, follow_symlinks=False)


def canonicalise(root: Path) -> None:
    """Canonicalise a tree in place, children before their directory."""
    top = os.fspath(root)
    st = os.lstat(top)
    if stat.S_ISDIR(st.st_mode):
        for dirpath, dirnames, filenames in os.walk(top, topdown=False):
            for name in filenames + dirnames:
                child = os.path.join(dirpath, name)
                _canonicalise_one(child, os.lstat(child))
    _canonicalise_one(top, os.lstat(top))


def make_writable(root: Path) -> None:
    """Give the owner write access to every directory of a tree so it can be moved or removed."""
    top = os.fspath(root)
    if os.path.isdir(top) and not os.path.islink(top):
        os.chmod(top, 0o755)
        for dirpath, dirnames, _ in os.walk(top):
            for name in dirnames:
                child = os.path.join(dirpath, name)
                if not os.path.islink(child):
                    os.chmod(child, 0o755)


def remove_tree(path: Path) -> None:
    """Delete a (possibly read-only) file or tree; a missing path is fine."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        make_writable(path)
        shutil.rmtree(path)
    else:
        os.unlink(path)
