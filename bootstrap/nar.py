"""NAR, the Nix ARchive: a canonical serialisation of a file system tree.

Only what a store path can hold is represented: regular files (with an executable bit),
symlinks and directories with entries sorted by name bytes. Timestamps, owners and other modes
are not. Serialisation streams in constant memory; `nar_hash` feeds the bytes straight into a
hasher without building the archive. Dump and restore walk trees of any depth (a NAR may nest
deeper than PATH_MAX allows a path to name) without recursion, with every file named relative
to its open directory.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from bootstrap.errors import BootstrapError
from bootstrap.hashing import Hash, check_algo

MAGIC = "nix-archive-1"
CHUNK = 1 << 20
_PADDING = b"\0" * 8


def _string(data: bytes) -> bytes:
    """A NAR string: u64 little-endian length, the bytes, zero padding to 8."""
    return struct.pack("<Q", len(data)) + data + _PADDING[: -len(data) % 8]


def _strings(*words: str) -> bytes:
    return b"".join(_string(word.encode()) for word in words)


_HEAD = _strings(MAGIC)
_OPEN_REGULAR = _strings("(", "type", "regular")
_EXECUTABLE = _strings("executable", "")
_CONTENTS = _strings("contents")
_CLOSE = _strings(")")
_OPEN_SYMLINK = _strings("(", "type", "symlink", "target")
_OPEN_DIRECTORY = _strings("(", "type", "directory")
_OPEN_ENTRY = _strings("entry", "(", "name")
_NODE = _strings("node")


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class _Frame:
    """A directory being walked: its path (for messages), its identity, and the names left to
    visit (dump, remove) or the last name restored (restore).

    Trees of any depth are walked without recursion and with one directory open at a time:
    going back up reopens the parent through `..` and checks it is the directory it was.
    """

    path: bytes
    stat: os.stat_result
    names: Iterator[bytes] = field(default_factory=lambda: iter(()))
    previous: bytes = b""


def _open_dir(name: bytes, dir_fd: int | None) -> int:
    return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def _climb(fd: int, parent: _Frame) -> int:
    """Close the directory `fd` and return its parent, opened through `..`."""
    up = _open_dir(b"..", fd)
    st = os.fstat(up)
    if (st.st_dev, st.st_ino) != (parent.stat.st_dev, parent.stat.st_ino):
        os.close(up)
        raise BootstrapError(f"{os.fsdecode(parent.path)}: was moved while in use")
    os.close(fd)
    return up


def _sorted_names(fd: int) -> Iterator[bytes]:
    return iter(sorted(map(os.fsencode, os.listdir(fd))))


def _write_tree(root: bytes, st: os.stat_result, write: Callable[[bytes], object]) -> None:
    """Serialise the directory `root`: entries depth first, each directory's sorted by name."""
    fd = _open_dir(root, None)
    stack = [_Frame(root, st, _sorted_names(fd))]
    write(_OPEN_DIRECTORY)
    try:
        while stack:
            top = stack[-1]
            name = next(top.names, None)
            if name is None:
                stack.pop()
                write(_CLOSE + _CLOSE if stack else _CLOSE)  # the directory, and its entry
                if stack:
                    fd = _climb(fd, stack[-1])
                continue
            st = os.lstat(name, dir_fd=fd)
            write(_OPEN_ENTRY + _string(name) + _NODE)
            if stat.S_ISDIR(st.st_mode):
                child = _open_dir(name, fd)
                os.close(fd)
                fd = child
                stack.append(_Frame(top.path + b"/" + name, st, _sorted_names(fd)))
                write(_OPEN_DIRECTORY)
            else:
                _write_leaf(top.path, name, st, fd, write)
                write(_CLOSE)
    finally:
        os.close(fd)


def _write_leaf(
    where: bytes, name: bytes, st: os.stat_result, dir_fd: int | None, write: Callable
) -> None:
    """A regular file or symlink `name` in the directory `dir_fd` (`where`, for messages)."""
    mode = st.st_mode
    if stat.S_ISREG(mode):
        _write_regular(where, name, st, dir_fd, write)
    elif stat.S_ISLNK(mode):
        write(_OPEN_SYMLINK + _string(os.readlink(name, dir_fd=dir_fd)) + _CLOSE)
    else:
        kind = "socket" if stat.S_ISSOCK(mode) else "fifo" if stat.S_ISFIFO(mode) else "device"
        raise BootstrapError(
            f"{_join(where, name)}: a {kind} cannot be archived: a NAR holds only regular "
            "files, symlinks and directories"
        )


def _join(where: bytes, name: bytes) -> str:
    return os.fsdecode(os.path.join(where, name) if where else name)


def _write_regular(
    where: bytes, name: bytes, st: os.stat_result, dir_fd: int | None, write: Callable
) -> None:
    head = _OPEN_REGULAR + (_EXECUTABLE if st.st_mode & 0o100 else b"") + _CONTENTS
    size = st.st_size
    tail = _PADDING[: -size % 8] + _CLOSE
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        if size <= CHUNK:  # the common case: one read, one write
            data = os.read(fd, size)
            _check_size(where, name, len(data), size)
            write(head + struct.pack("<Q", size) + data + tail)
            return
        write(head + struct.pack("<Q", size))
        remaining = size
        while remaining > 0:
            chunk = os.read(fd, min(CHUNK, remaining))
            _check_size(where, name, len(chunk), min(CHUNK, remaining))
            write(chunk)
            remaining -= len(chunk)
        write(tail)
    finally:
        os.close(fd)


def _check_size(where: bytes, name: bytes, got: int, expected: int) -> None:
    if got != expected:
        raise BootstrapError(f"{_join(where, name)}: file changed size while being archived")


def serialise(path: Path | str, write: Callable[[bytes], object]) -> None:
    """Serialise the tree at `path` as a NAR, handing the bytes to `write` in order."""
    raw = os.fsencode(path)
    try:
        st = os.lstat(raw)
    except FileNotFoundError:
        raise BootstrapError(f"{path}: no such file or directory") from None
    write(_HEAD)
    if stat.S_ISDIR(st.st_mode):
        _write_tree(raw, st, write)
    else:
        _write_leaf(b"", raw, st, None, write)


def dump(path: Path | str, out: BinaryIO) -> None:
    """Write the NAR of `path` to a binary stream."""
    serialise(path, out.write)


def nar_hash(path: Path | str, algo: str = "sha256") -> tuple[Hash, int]:
    """The NAR hash and NAR size of `path`, without materialising the archive."""
    hasher = hashlib.new(check_algo(algo))
    size = 0

    def feed(data: bytes) -> None:
        nonlocal size
        size += len(data)
        hasher.update(data)

    serialise(path, feed)
    return Hash(algo, hasher.digest()), size


class _Reader:
    """Reads NAR strings from a stream, failing with a clear message on malformed input."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.offset = 0

    def exact(self, size: int) -> bytes:
        data = self.stream.read(size)
        if len(data) != size:
            raise BootstrapError(f"NAR ends early at byte {self.offset + len(data)}")
        self.offset += size
        return data

    def length(self) -> int:
        return struct.unpack("<Q", self.exact(8))[0]

    def padding(self, size: int) -> None:
        if self.exact(-size % 8).strip(b"\0"):
            raise BootstrapError(f"NAR has non-zero padding before byte {self.offset}")

    def string(self, limit: int = 4096) -> bytes:
        size = self.length()
        if size > limit:
            raise BootstrapError(f"NAR string at byte {self.offset} is implausibly long ({size})")
        data = self.exact(size)
        self.padding(size)
        return data

    def expect(self, *words: str) -> None:
        for word in words:
            got = self.string()
            if got != word.encode():
                raise BootstrapError(
                    f"NAR byte {self.offset}: expected {word!r}, found {got[:40]!r}"
                )

    def copy_contents(self, out: BinaryIO) -> None:
        remaining = size = self.length()
        while remaining:
            out.write(self.exact(min(CHUNK, remaining)))
            remaining -= min(CHUNK, remaining)
        self.padding(size)


def restore(stream: BinaryIO, dest: Path | str) -> None:
    """Recreate the tree held in a NAR stream at `dest`, which must not exist yet.

    Trees of any depth restore without recursion; on any error nothing is left at `dest`.
    """
    dest = Path(dest)
    if dest.exists() or dest.is_symlink():
        raise BootstrapError(f"{dest}: already exists; restore needs a new path")
    raw = os.fsencode(dest)
    try:
        _restore_stream(_Reader(stream), raw)
    except OSError as error:
        remove_tree(raw)
        raise BootstrapError(f"{dest}: cannot restore: {error.strerror or error}") from None
    except BaseException:
        remove_tree(raw)
        raise


def _restore_stream(reader: _Reader, path: bytes) -> None:
    reader.expect(MAGIC)
    kind = _node_type(reader)
    if kind == b"directory":
        os.mkdir(path, 0o755)
        _restore_tree(reader, path)
    else:
        _restore_leaf(reader, kind, path, None)
    if reader.stream.read(1):
        raise BootstrapError(f"NAR has trailing data after byte {reader.offset}")


def _node_type(reader: _Reader) -> bytes:
    reader.expect("(", "type")
    return reader.string()


def _restore_tree(reader: _Reader, root: bytes) -> None:
    """Restore the entries of the new directory `root`, up to its closing ')'."""
    fd = _open_dir(root, None)
    stack = [_Frame(root, os.fstat(fd))]
    try:
        while stack:
            top = stack[-1]
            tag = reader.string()
            if tag == b")":
                stack.pop()
                if stack:
                    reader.expect(")")  # the entry that held the directory
                    fd = _climb(fd, stack[-1])
                continue
            name = _entry_name(reader, tag, top)
            kind = _node_type(reader)
            if kind != b"directory":
                _restore_leaf(reader, kind, name, fd)
                reader.expect(")")
                continue
            os.mkdir(name, 0o755, dir_fd=fd)
            child = _open_dir(name, fd)
            os.close(fd)
            fd = child
            stack.append(_Frame(top.path + b"/" + name, os.fstat(fd)))
    finally:
        os.close(fd)


def _entry_name(reader: _Reader, tag: bytes, directory: _Frame) -> bytes:
    """Read an entry up to its node: a valid name, after the directory's previous one."""
    if tag != b"entry":
        raise BootstrapError(f"NAR byte {reader.offset}: expected 'entry' or ')', found {tag!r}")
    reader.expect("(", "name")
    name = reader.string(limit=255)
    if name in (b"", b".", b"..") or b"/" in name or b"\0" in name:
        raise BootstrapError(f"NAR byte {reader.offset}: invalid entry name {name!r}")
    if directory.previous and name <= directory.previous:
        raise BootstrapError(f"NAR byte {reader.offset}: entries not sorted at {name!r}")
    directory.previous = name
    reader.expect("node")
    return name


def _restore_leaf(reader: _Reader, kind: bytes, name: bytes, dir_fd: int | None) -> None:
    """A regular file or symlink node after its type, up to its closing ')'."""
    if kind == b"regular":
        _restore_regular(reader, name, dir_fd)
    elif kind == b"symlink":
        reader.expect("target")
        os.symlink(reader.string(limit=1 << 16), name, dir_fd=dir_fd)
        reader.expect(")")
    else:
        raise BootstrapError(f"NAR byte {reader.offset}: unknown node type {kind[:40]!r}")


def _restore_regular(reader: _Reader, name: bytes, dir_fd: int | None) -> None:
    tag = reader.string()
    executable = tag == b"executable"
    if executable:
        reader.expect("")
        tag = reader.string()
    if tag != b"contents":
        raise BootstrapError(f"NAR byte {reader.offset}: expected 'contents', found {tag[:40]!r}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
    with open(fd, "wb") as out:
        reader.copy_contents(out)
        os.fchmod(fd, 0o755 if executable else 0o644)
    reader.expect(")")


def remove_tree(path: bytes | str | Path) -> None:
    """Delete a file or a tree of any depth (a missing path is fine), without recursion and
    with one directory open at a time. Directories must be writable, as `restore` makes them."""
    raw = os.fsencode(path)
    try:
        st = os.lstat(raw)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(raw)
        return
    fd = _open_dir(raw, None)
    stack = [_Frame(raw, st, _subdirectories(fd))]
    try:
        while stack:
            name = next(stack[-1].names, None)
            if name is not None:
                child = _open_dir(name, fd)
                os.close(fd)
                fd = child
                path = stack[-1].path + b"/" + name
                stack.append(_Frame(path, os.fstat(fd), _subdirectories(fd)))
                continue
            done = stack.pop()
            if stack:
                fd = _climb(fd, stack[-1])
                os.rmdir(os.path.basename(done.path), dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(raw)


def _subdirectories(fd: int) -> Iterator[bytes]:
    """Unlink every non-directory in the directory `fd`; return its subdirectories."""
    subdirectories = []
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                subdirectories.append(os.fsencode(entry.name))
            else:
                os.unlink(entry.name, dir_fd=fd)
    return iter(subdirectories)
