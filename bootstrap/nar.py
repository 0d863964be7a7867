"""NAR, the Nix ARchive: a canonical serialisation of a file system tree.

Only what a store path can hold is represented: regular files (with an executable bit),
symlinks and directories with entries sorted by name bytes. Timestamps, owners and other modes
are not. Serialisation streams in constant memory; `nar_hash` feeds the bytes straight into a
hasher without building the archive.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from collections.abc import Callable
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


def _write_node(path: bytes, st: os.stat_result, write: Callable[[bytes], object]) -> None:
    mode = st.st_mode
    if stat.S_ISREG(mode):
        _write_regular(path, st, write)
    elif stat.S_ISLNK(mode):
        write(_OPEN_SYMLINK + _string(os.readlink(path)) + _CLOSE)
    elif stat.S_ISDIR(mode):
        write(_OPEN_DIRECTORY)
        with os.scandir(path) as it:
            entries = sorted((entry.name, entry.path) for entry in it)
        for name, child in entries:
            write(_OPEN_ENTRY + _string(name) + _NODE)
            _write_node(child, os.lstat(child), write)
            write(_CLOSE)
        write(_CLOSE)
    else:
        kind = "socket" if stat.S_ISSOCK(mode) else "fifo" if stat.S_ISFIFO(mode) else "device"
        raise BootstrapError(
            f"{os.fsdecode(path)}: a {kind} cannot be archived: a NAR holds only regular files, "
            "symlinks and directories"
        )


def _write_regular(path: bytes, st: os.stat_result, write: Callable[[bytes], object]) -> None:
    head = _OPEN_REGULAR + (_EXECUTABLE if st.st_mode & 0o100 else b"") + _CONTENTS
    size = st.st_size
    tail = _PADDING[: -size % 8] + _CLOSE
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if size <= CHUNK:  # the common case: one read, one write
            data = os.read(fd, size)
            _check_size(path, len(data), size)
            write(head + struct.pack("<Q", size) + data + tail)
            return
        write(head + struct.pack("<Q", size))
        remaining = size
        while remaining > 0:
            chunk = os.read(fd, min(CHUNK, remaining))
            _check_size(path, len(chunk), min(CHUNK, remaining))
            write(chunk)
            remaining -= len(chunk)
        write(tail)
    finally:
        os.close(fd)


def _check_size(path: bytes, got: int, expected: int) -> None:
    if got != expected:
        raise BootstrapError(f"{os.fsdecode(path)}: file changed size while being archived")


def serialise(path: Path | str, write: Callable[[bytes], object]) -> None:
    """Serialise the tree at `path` as a NAR, handing the bytes to `write` in order."""
    raw = os.fsencode(path)
    try:
        st = os.lstat(raw)
    except FileNotFoundError:
        raise BootstrapError(f"{path}: no such file or directory") from None
    write(_HEAD)
    _write_node(raw, st, write)


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
    """Recreate the tree held in a NAR stream at `dest`, which must not exist yet."""
    dest = Path(dest)
    if dest.exists() or dest.is_symlink():
        raise BootstrapError(f"{dest}: already exists; restore needs a new path")
    reader = _Reader(stream)
    reader.expect(MAGIC)
    _restore_node(reader, os.fsencode(dest))
    if stream.read(1):
        raise BootstrapError(f"NAR has trailing data after byte {reader.offset}")


def _restore_node(reader: _Reader, path: bytes) -> None:
    reader.expect("(", "type")
    kind = reader.string()
    if kind == b"regular":
        _restore_regular(reader, path)
    elif kind == b"symlink":
        reader.expect("target")
        os.symlink(reader.string(limit=1 << 16), path)
        reader.expect(")")
    elif kind == b"directory":
        _restore_directory(reader, path)
    else:
        raise BootstrapError(f"NAR byte {reader.offset}: unknown node type {kind[:40]!r}")


def _restore_regular(reader: _Reader, path: bytes) -> None:
    tag = reader.string()
    executable = tag == b"executable"
    if executable:
        reader.expect("")
        tag = reader.string()
    if tag != b"contents":
        raise BootstrapError(f"NAR byte {reader.offset}: expected 'contents', found {tag[:40]!r}")
    with open(path, "xb") as out:
        reader.copy_contents(out)
    os.chmod(path, 0o755 if executable else 0o644)
    reader.expect(")")


def _restore_directory(reader: _Reader, path: bytes) -> None:
    os.mkdir(path)
    previous = b""
    while (tag := reader.string()) == b"entry":
        reader.expect("(", "name")
        name = reader.string(limit=255)
        if name in (b"", b".", b"..") or b"/" in name or b"\0" in name:
            raise BootstrapError(f"NAR byte {reader.offset}: invalid entry name {name!r}")
        if previous and name <= previous:
            raise BootstrapError(f"NAR byte {reader.offset}: entries not sorted at {name!r}")
        previous = name
        reader.expect("node")
        _restore_node(reader, os.path.join(path, name))
        reader.expect(")")
    if tag != b")":
        raise BootstrapError(f"NAR byte {reader.offset}: expected 'entry' or ')', found {tag!r}")
