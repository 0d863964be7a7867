"""NAR, the Nix ARchive: a canonical serialisation of a file system tree.

Only what a store path can hold is represented: regular files (with an executable bit),
symlinks and directories with entries sorted by name bytes. Timestamps, owners and other modes
are not. Serialisation streams in constant memory; `nar_hash` feeds the bytes straight into a
hasher without building the archive. Dump and restore walk trees of any depth (a NAR may nest
deeper than PATH_MAX allows a path to name) without recursion, with every file named relative
to its open directory.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import struct
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from bootstrap.errors import BootstrapError
from bootstrap.fstree import remove_tree
from bootstrap.hashing import Hash, check_algo

MAGIC = "nix-archive-1"
BUFFER = 1 << 17  # file contents move through one reused buffer of this size
_U64 = struct.Struct("<Q")
_PADDING = b"\0" * 8


def _string(data: bytes) -> bytes:
    """A NAR string: u64 little-endian length, the bytes, zero padding to 8."""
    return _U64.pack(len(data)) + data + _PADDING[: -len(data) % 8]


def _strings(*words: str) -> bytes:
    return b"".join(_string(word.encode()) for word in words)


_HEAD = _strings(MAGIC)
_OPEN_REGULAR = _strings("(", "type", "regular")
_REGULAR_CONTENTS = _OPEN_REGULAR + _strings("contents")
_EXECUTABLE_CONTENTS = _OPEN_REGULAR + _strings("executable", "", "contents")
_CLOSE = _strings(")")
_OPEN_SYMLINK = _strings("(", "type", "symlink", "target")
_OPEN_DIRECTORY = _strings("(", "type", "directory")
_OPEN_ENTRY = _strings("entry", "(", "name")
_NODE = _strings("node")


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class _Frame:
    """A directory being walked: its path (for messages), its identity, and the names left to
    visit (dump) or the last name restored (restore).

    Trees of any depth are walked without recursion and with one directory open at a time:
    going back up reopens the parent through `..` and checks it is the directory it was.
    (A plain class: `dataclasses` would cost every `nar` and `hash` command its import.)
    """

    __slots__ = ("names", "path", "previous", "stat")

    def __init__(
        self, path: bytes, st: os.stat_result, names: Iterator[bytes] | None = None
    ) -> None:
        self.path = path
        self.stat = st
        self.names = names if names is not None else iter(())
        self.previous = b""


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
    encoding = sys.getfilesystemencoding()
    return iter(sorted([name.encode(encoding, "surrogateescape") for name in os.listdir(fd)]))


def _write_tree(root: bytes, st: os.stat_result, sink: _Sink) -> None:
    """Serialise the directory `root`: entries depth first, each directory's sorted by name."""
    write = sink.write
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
            entry = _OPEN_ENTRY + _string(name) + _NODE
            if stat.S_ISDIR(st.st_mode):
                child = _open_dir(name, fd)
                os.close(fd)
                fd = child
                stack.append(_Frame(top.path + b"/" + name, st, _sorted_names(fd)))
                write(entry + _OPEN_DIRECTORY)
            elif stat.S_ISREG(st.st_mode):  # most entries: no stop in _write_leaf
                _write_regular(top.path, name, st, fd, sink, entry, _CLOSE)
            else:
                _write_leaf(top.path, name, st, fd, sink, entry, _CLOSE)
    finally:
        os.close(fd)


def _write_leaf(
    where: bytes, name: bytes, st: os.stat_result, dir_fd: int | None, sink: _Sink,
    before: bytes, after: bytes,
) -> None:  # fmt: skip
    """A regular file or symlink `name` in the directory `dir_fd` (`where`, for messages), its
    node written between `before` and `after` (the NAR's start or its entry, written with it)."""
    mode = st.st_mode
    if stat.S_ISREG(mode):
        _write_regular(where, name, st, dir_fd, sink, before, after)
    elif stat.S_ISLNK(mode):
        target = os.readlink(name, dir_fd=dir_fd)
        sink.write(before + _OPEN_SYMLINK + _string(target) + _CLOSE + after)
    else:
        kind = "socket" if stat.S_ISSOCK(mode) else "fifo" if stat.S_ISFIFO(mode) else "device"
        raise BootstrapError(
            f"{_join(where, name)}: a {kind} cannot be archived: a NAR holds only regular "
            "files, symlinks and directories"
        )


def _join(where: bytes, name: bytes) -> str:
    return os.fsdecode(os.path.join(where, name) if where else name)


def _write_regular(
    where: bytes, name: bytes, st: os.stat_result, dir_fd: int | None, sink: _Sink,
    before: bytes, after: bytes,
) -> None:  # fmt: skip
    head = _EXECUTABLE_CONTENTS if st.st_mode & 0o100 else _REGULAR_CONTENTS
    size = st.st_size
    tail = _PADDING[: -size % 8] + _CLOSE + after
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        if size <= BUFFER:  # the common case: one read, one write
            data = os.read(fd, size) if size else b""
            if len(data) != size:
                _check_size(where, name, len(data), size)
            sink.write(b"".join((before, head, _U64.pack(size), data, tail)))
            return
        sink.write(before + head + _U64.pack(size))
        _check_size(where, name, sink.copy(fd, size), size)
        sink.write(tail)
    finally:
        os.close(fd)


def _check_size(where: bytes, name: bytes, got: int, expected: int) -> None:
    if got != expected:
        raise BootstrapError(f"{_join(where, name)}: file changed size while being archived")


class _Sink:
    """Where a NAR goes: `write` takes its bytes; `copy` moves `size` bytes of file contents
    from the open file `fd` and returns how many there were (fewer if the file shrank).

    This one hands `write` fresh bytes objects, which it may keep."""

    def __init__(self, write: Callable[[bytes], object]) -> None:
        self.write = write

    def copy(self, fd: int, size: int) -> int:
        done = 0
        while done < size and (data := os.read(fd, min(BUFFER, size - done))):
            self.write(data)
            done += len(data)
        return done


class _HashSink(_Sink):
    """Feeds a hasher straight from one reused buffer, counting the bytes."""

    def __init__(self, hasher) -> None:
        self.hasher = hasher
        self.size = 0
        self.buffer = memoryview(bytearray(BUFFER))

    def write(self, data: bytes) -> None:
        self.size += len(data)
        self.hasher.update(data)

    def copy(self, fd: int, size: int) -> int:
        update, buffer = self.hasher.update, self.buffer
        done = 0
        while done < size and (got := os.readv(fd, [buffer[: size - done]])):
            update(buffer[:got])
            done += got
        self.size += done
        return done


class _FdSink(_Sink):
    """Writes to a file descriptor: small writes gathered in one buffer, file contents moved
    by the kernel (`os.sendfile`) where it can, else through another."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.out = open(fd, "wb", buffering=BUFFER, closefd=False)  # noqa: SIM115
        self.write = self.out.write
        self.buffer = memoryview(bytearray(BUFFER))

    def copy(self, fd: int, size: int) -> int:
        self.out.flush()
        done = 0
        try:
            while done < size and (sent := os.sendfile(self.fd, fd, done, size - done)):
                done += sent
        except OSError as error:
            if error.errno not in (errno.EINVAL, errno.ENOSYS) or done:
                raise
            while done < size and (got := os.readv(fd, [self.buffer[: size - done]])):
                _write_all(self.fd, self.buffer[:got])
                done += got
        return done


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _serialise(path: Path | str, sink: _Sink) -> None:
    raw = os.fsencode(path)
    try:
        st = os.lstat(raw)
    except FileNotFoundError:
        raise BootstrapError(f"{path}: no such file or directory") from None
    if stat.S_ISDIR(st.st_mode):
        sink.write(_HEAD)
        _write_tree(raw, st, sink)
    else:
        _write_leaf(b"", raw, st, None, sink, _HEAD, b"")


def serialise(path: Path | str, write: Callable[[bytes], object]) -> None:
    """Serialise the tree at `path` as a NAR, handing the bytes to `write` in order."""
    _serialise(path, _Sink(write))


def dump(path: Path | str, out: io.BufferedIOBase) -> None:
    """Write the NAR of `path` to a binary stream (straight to its file descriptor if it has
    one, flushed first)."""
    try:
        fd = out.fileno()
    except (AttributeError, OSError):  # io.UnsupportedOperation is an OSError
        serialise(path, out.write)
        return
    out.flush()
    sink = _FdSink(fd)
    _serialise(path, sink)
    sink.out.flush()


def nar_hash(path: Path | str, algo: str = "sha256") -> tuple[Hash, int]:
    """The NAR hash and NAR size of `path`, without materialising the archive."""
    sink = _HashSink(hashlib.new(check_algo(algo)))
    _serialise(path, sink)
    return Hash(algo, sink.hasher.digest()), sink.size


class _Reader:
    """Reads NAR strings from a stream through its own buffer, failing with a clear message on
    malformed input. `umask` is the process's, read once: file modes it would not strip are
    set when the file is created."""

    def __init__(self, stream: io.BufferedIOBase) -> None:
        self.stream = stream
        self.buf = b""
        self.pos = 0
        self.base = 0  # the stream offset of buf[0]
        self.umask = _umask()

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def _fill(self, size: int) -> None:
        """Make `size` bytes available from `pos`, or fail at the end of the stream."""
        parts = [self.buf[self.pos :]]
        self.base += self.pos
        self.pos = 0
        have = len(parts[0])
        while have < size:
            data = self.stream.read(max(BUFFER, size - have))
            if not data:
                raise BootstrapError(f"NAR ends early at byte {self.base + have}")
            parts.append(data)
            have += len(data)
        self.buf = b"".join(parts)

    def length(self) -> int:
        if self.pos + 8 > len(self.buf):
            self._fill(8)
        self.pos += 8
        return _U64.unpack_from(self.buf, self.pos - 8)[0]

    def padding(self, size: int) -> None:
        pad = -size % 8
        if self.pos + pad > len(self.buf):
            self._fill(pad)
        self.pos += pad
        if self.buf[self.pos - pad : self.pos].strip(b"\0"):
            raise BootstrapError(f"NAR has non-zero padding before byte {self.offset}")

    def string(self, limit: int = 4096) -> bytes:
        size = self.length()
        if size > limit:
            raise BootstrapError(f"NAR string at byte {self.offset} is implausibly long ({size})")
        if self.pos + size > len(self.buf):
            self._fill(size)
        data = self.buf[self.pos : self.pos + size]
        self.pos += size
        self.padding(size)
        return data

    def expect(self, *words: str) -> None:
        token = _TOKENS.get(words) or _TOKENS.setdefault(words, _strings(*words))
        if self.buf.startswith(token, self.pos):
            self.pos += len(token)
            return
        for word in words:  # across a buffer boundary, or not there: word by word
            got = self.string()
            if got != word.encode():
                raise BootstrapError(
                    f"NAR byte {self.offset}: expected {word!r}, found {got[:40]!r}"
                )

    def copy_contents(self, fd: int) -> None:
        """Write a contents string to the file `fd`: what is buffered, then the rest read
        through one reused buffer."""
        remaining = size = self.length()
        now = min(size, len(self.buf) - self.pos)
        if now:
            _write_all(fd, memoryview(self.buf)[self.pos : self.pos + now])
            self.pos += now
            remaining -= now
        if remaining:
            self._copy_unbuffered(fd, remaining)
        self.padding(size)

    def _copy_unbuffered(self, fd: int, remaining: int) -> None:
        self.base += self.pos + remaining
        self.buf, self.pos = b"", 0
        buffer = memoryview(bytearray(min(BUFFER, remaining)))
        while remaining:
            got = self.stream.readinto(buffer[: min(len(buffer), remaining)])
            if not got:
                raise BootstrapError(f"NAR ends early at byte {self.base - remaining}")
            _write_all(fd, buffer[:got])
            remaining -= got

    def at_end(self) -> bool:
        return self.pos == len(self.buf) and not self.stream.read(1)


_TOKENS: dict[tuple[str, ...], bytes] = {}


def _umask() -> int:
    """The process's umask, read without setting it (os.umask would, for every thread)."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o777  # unknown: every mode is set explicitly


def restore(stream: io.BufferedIOBase, dest: Path | str) -> None:
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
    if not reader.at_end():
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
    mode = 0o755 if executable else 0o644
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, mode, dir_fd=dir_fd)
    try:
        reader.copy_contents(fd)
        if reader.umask & mode:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)
    reader.expect(")")
