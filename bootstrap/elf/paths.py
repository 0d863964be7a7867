"""Logical paths (as binaries name them) versus physical files (where we can read them).

A binary in the store names `/bootstrap/store/...-glibc/lib/ld-linux-x86-64.so.2`, but the
store's files may live elsewhere on this machine. `PathMap` translates, and `find_library`
answers "which file would the loader pick for this DT_NEEDED", reasoning only in logical paths
(symlinks with absolute targets are followed logically too).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

_MAX_SYMLINK_HOPS = 40

HOST_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
"""Host directories a hermetic binary or script must not name."""

HOST_FILE_PREFIXES = ("/etc/ld.so",)
"""Host loader configuration (/etc/ld.so.cache, .conf, .preload), matched as string prefixes."""


def is_host_path(path: str) -> bool:
    """True if `path` names a host location: `/usr/bin/env`, `/lib64/ld-...`, `/etc/ld.so.cache`."""
    return any(is_under(path, top) for top in HOST_DIRS) or path.startswith(HOST_FILE_PREFIXES)


def is_under(path: str, directory: str) -> bool:
    """True if `path` is `directory` or inside it (by whole path components)."""
    base = directory.rstrip("/")
    return path == directory or path.startswith(base + "/")


def store_path_of(path: str, store_dir: str) -> str | None:
    """The store path (STORE_DIR/NAME) that logical `path` lies in, or None."""
    base = store_dir.rstrip("/")
    if not path.startswith(base + "/") or len(path) == len(base) + 1:
        return None
    return f"{base}/{path[len(base) + 1 :].split('/', 1)[0]}"


@dataclass(frozen=True)
class PathMap:
    """Mounts of physical directories at logical prefixes; the longest matching prefix wins."""

    mounts: tuple[tuple[str, Path], ...]

    @classmethod
    def of(cls, mounts: Iterable[tuple[str, Path | str]]) -> PathMap:
        pairs = {posixpath.normpath(logical): Path(physical) for logical, physical in mounts}
        return cls(tuple(sorted(pairs.items(), key=lambda pair: -len(pair[0]))))

    @classmethod
    def identity(cls) -> PathMap:
        return cls.of([("/", Path("/"))])

    def with_mount(self, logical: str, physical: Path) -> PathMap:
        return PathMap.of([*self.mounts, (logical, physical)])

    def physical(self, logical: str) -> Path | None:
        """The physical path for a logical path, or None if no mount covers it."""
        for prefix, root in self.mounts:
            if is_under(logical, prefix):
                rest = logical[len(prefix) :].lstrip("/")
                return root / rest if rest else root
        return None

    def logical(self, physical: Path) -> str:
        """The logical name of a physical path (itself if no mount covers it)."""
        absolute = Path(os.path.abspath(physical))
        for prefix, root in self.mounts:
            if absolute == root or root in absolute.parents:
                rest = absolute.relative_to(root).as_posix()
                return posixpath.normpath(posixpath.join(prefix, rest))
        return absolute.as_posix()

    def resolve(self, logical: str) -> str | None:
        """Follow symlinks logically; return the canonical logical path, or None if missing."""
        current = "/"
        pending = [part for part in logical.split("/") if part]
        hops = 0
        while pending:
            part = pending.pop(0)
            if part == ".":
                continue
            if part == "..":
                current = posixpath.dirname(current)
                continue
            candidate = posixpath.join(current, part)
            if self._above_mount(candidate):
                current = candidate
                continue
            physical = self.physical(candidate)
            if physical is None or not os.path.lexists(physical):
                return None
            if physical.is_symlink():
                hops += 1
                if hops > _MAX_SYMLINK_HOPS:
                    return None
                target = os.readlink(physical)
                current = "/" if target.startswith("/") else current
                pending = [p for p in target.split("/") if p] + pending
                continue
            current = candidate
        return current

    def _above_mount(self, logical: str) -> bool:
        """True if `logical` is a proper ancestor of a mount point (a directory by definition)."""
        return any(prefix != logical and is_under(prefix, logical) for prefix, _ in self.mounts)

    def is_file(self, logical: str) -> bool:
        physical = self.physical(logical)
        return physical is not None and physical.is_file()


def expand_origin(entry: str, object_path: str) -> str:
    """Replace $ORIGIN / ${ORIGIN} with the logical directory of the object."""
    origin = posixpath.dirname(object_path)
    expanded = entry.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
    return posixpath.normpath(expanded) if expanded.startswith("/") else expanded


def find_library(name: str, search_dirs: Sequence[str], path_map: PathMap) -> str | None:
    """The logical path the loader would open for DT_NEEDED `name`, or None.

    `search_dirs` are logical, already $ORIGIN-expanded. A name with a slash is a path itself.
    """
    if "/" in name:
        return _existing_file(name, path_map)
    for directory in search_dirs:
        if directory.startswith("/"):
            found = _existing_file(posixpath.join(directory, name), path_map)
            if found is not None:
                return found
    return None


def shrink_search_path(
    entries: Sequence[str],
    needed: Sequence[str],
    object_path: str,
    path_map: PathMap,
    usable: Callable[[str], bool] = lambda directory: True,
) -> tuple[tuple[str, ...], frozenset[str]]:
    """The entries that provide a needed library no earlier entry provides (as
    `patchelf --shrink-rpath` keeps them), and the needed names they provide.

    Entries are kept as written ($ORIGIN and all) and looked up expanded; entries whose expanded
    directory is not `usable` are dropped.
    """
    kept: list[str] = []
    found: set[str] = set()
    for entry in entries:
        directory = expand_origin(entry, object_path)
        if not usable(directory):
            continue
        provides = {
            name
            for name in needed
            if name not in found and find_library(name, [directory], path_map) is not None
        }
        if provides:
            kept.append(entry)
            found |= provides
    return tuple(kept), frozenset(found)


def _existing_file(logical: str, path_map: PathMap) -> str | None:
    resolved = path_map.resolve(logical)
    return resolved if resolved is not None and path_map.is_file(resolved) else None


def regular_files(root: Path) -> Iterator[Path]:
    """`root` if it is a regular file, else the regular files under it (no symlinks), sorted."""
    if not root.is_dir():
        if root.is_file() and not root.is_symlink():
            yield root
        return
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        for name in sorted(files):
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink():
                yield path
