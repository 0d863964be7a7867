"""Safe, deterministic unpacking of tar (plain, gzip, bzip2, xz, zstd) and zip archives.

Every member is checked before it is written: no absolute paths, no `..`, no device nodes or
fifos, nothing beneath a symlink or a file, no hardlink to anything but an earlier regular file
in the tree. Symlinks are created last, once every link in the archive is known and none
resolves outside the tree, so nothing is ever written through one; all writes are relative to
an open descriptor of the new tree's root.

The result is deterministic: directories get mode 0755, files 0755 if any execute bit is set
and 0644 otherwise, owners are ignored, and each entry keeps the archive's modification time
(directories the archive does not list get time 0). Unpacking happens in a temporary
directory next to the destination, renamed into place only when the whole archive succeeded.

What an archive unpacks to is bounded (`bootstrap.limits`): the decompressed tar stream, or the
sum of a zip's members, may be at most `BOOTSTRAP_MAX_UNPACKED` (8 GiB), and at most
`BOOTSTRAP_MAX_UNPACK_RATIO` (100) times the archive's own size once past 64 MiB, so a
decompression bomb stops early with one line.
"""

from __future__ import annotations

import bz2
import calendar
import gzip
import lzma
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bootstrap.errors import BootstrapError
from bootstrap.fstree import remove_tree
from bootstrap.limits import MAX_UNPACK_RATIO, MAX_UNPACKED, UNPACK_RATIO_FLOOR, format_size

MAX_LINK_DEPTH = 40
MAX_ZIP_LINK = 4096
IMPLICIT_MTIME = 0
_COMPRESSIONS = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")

FILE, DIR, SYMLINK, HARDLINK = "file", "directory", "symlink", "hardlink"


@dataclass(frozen=True)
class Entry:
    """One archive member in a form common to tar and zip."""

    name: str
    kind: str  # FILE, DIR, SYMLINK, HARDLINK, or a description of a refused type
    mode: int
    mtime: float
    linkname: str = ""
    content: Callable[[], IO[bytes]] | None = None  # opens a regular file's bytes


@dataclass
class _Budget:
    """How many more bytes an archive may unpack to, and the limit to name when it is spent."""

    archive: Path
    left: int
    limit: str

    def spend(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise BootstrapError(f"{self.archive}: unpacks to more than {self.limit}; refusing it")


def _budget(archive: Path, max_size: int | None, max_ratio: int | None) -> _Budget:
    """The budget of `archive`: `max_size` bytes, and `max_ratio` times its size past the
    floor; None reads the limit from the environment (`bootstrap.limits`)."""
    max_size = MAX_UNPACKED.get() if max_size is None else max_size
    ratio = MAX_UNPACK_RATIO.get() if max_ratio is None else max_ratio
    size = archive.stat().st_size
    by_ratio = max(UNPACK_RATIO_FLOOR, ratio * size)
    if by_ratio < max_size:
        why = (
            f"{format_size(by_ratio)}, the most an archive of {format_size(size)} may "
            f"({ratio} times its size, BOOTSTRAP_MAX_UNPACK_RATIO, and at least "
            f"{format_size(UNPACK_RATIO_FLOOR)})"
        )
        return _Budget(archive, by_ratio, why)
    return _Budget(archive, max_size, f"{format_size(max_size)} (BOOTSTRAP_MAX_UNPACKED)")


class _Metered:
    """A readable stream whose bytes are charged to a budget as they are read."""

    def __init__(self, stream: IO[bytes], budget: _Budget) -> None:
        self.stream = stream
        self.budget = budget

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.budget.spend(len(data))
        return data

    def __enter__(self) -> _Metered:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stream.close()


def unpack(
    archive: Path,
    dest: Path,
    *,
    strip_top: bool = False,
    max_size: int | None = None,
    max_ratio: int | None = None,
) -> Path:
    """Unpack `archive` into the new directory `dest` and return `dest`.

    With `strip_top`, the archive must hold one top-level directory, whose contents become
    `dest`. Raises `BootstrapError` naming the archive and member for any unsafe member, and
    naming the limit for an archive that unpacks to more than `max_size` bytes or `max_ratio`
    times its own size (None: the limits from the environment).
    """
    archive, dest = Path(archive), Path(dest)
    if dest.exists() or dest.is_symlink():
        raise BootstrapError(f"{dest}: unpack destination already exists")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _read_errors(archive):
        budget = _budget(archive, max_size, max_ratio)
    scratch = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        root = scratch / "root"
        root.mkdir()
        with _Extractor(archive, root, strip_top) as extractor:
            with _read_errors(archive), closing(_entries(archive, budget)) as entries:
                for entry in entries:
                    extractor.add(entry)
            extractor.finish()
        os.rename(root, dest)
    finally:
        with suppress(OSError):
            remove_tree(scratch)  # of any depth, which shutil.rmtree's recursion is not
    return dest


def archive_format(archive: Path) -> str:
    """'zip', 'tar', or 'tar+<compression>' judged by the file's first bytes."""
    with open(archive, "rb") as stream:
        head = stream.read(512)
    if head.startswith(_ZIP_MAGICS):
        return "zip"
    for magic, compression in _COMPRESSIONS:
        if head.startswith(magic):
            return f"tar+{compression}"
    return "tar"


def _entries(archive: Path, budget: _Budget) -> Iterator[Entry]:
    kind = archive_format(archive)
    if kind == "zip":
        yield from _zip_entries(archive, budget)
    else:
        yield from _tar_entries(archive, kind.partition("+")[2], budget)


def _tar_entries(archive: Path, compression: str, budget: _Budget) -> Iterator[Entry]:
    with (
        open(archive, "rb") as raw,
        _decompressor(raw, compression, archive) as stream,
        tarfile.open(fileobj=_Metered(stream, budget), mode="r|") as tar,
    ):
        for member in tar:
            yield _tar_entry(tar, member)


def _tar_entry(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Entry:
    def content() -> IO[bytes]:
        handle = tar.extractfile(member)
        assert handle is not None  # a regular member always has content
        return handle

    if member.isreg():
        return Entry(member.name, FILE, member.mode, member.mtime, content=content)
    kind = {
        tarfile.DIRTYPE: DIR,
        tarfile.SYMTYPE: SYMLINK,
        tarfile.LNKTYPE: HARDLINK,
        tarfile.CHRTYPE: "character device",
        tarfile.BLKTYPE: "block device",
        tarfile.FIFOTYPE: "fifo",
    }.get(member.type, f"member of tar type {member.type!r}")
    return Entry(member.name, kind, member.mode, member.mtime, member.linkname)


def _decompressor(raw: IO[bytes], compression: str, archive: Path) -> IO[bytes]:
    """A readable stream of the tar bytes inside `raw` (itself when uncompressed)."""
    openers: dict[str, Callable[[], IO[bytes]]] = {
        "gzip": lambda: gzip.GzipFile(fileobj=raw, mode="rb"),
        "bzip2": lambda: bz2.BZ2File(raw),
        "xz": lambda: lzma.LZMAFile(raw),  # noqa: SIM115 (the caller closes it)
        "zstd": lambda: _zstd_reader(raw, archive),
    }
    opener = openers.get(compression)
    return opener() if opener else raw


def _zstd_reader(raw: IO[bytes], archive: Path) -> IO[bytes]:
    try:
        import zstandard
    except ImportError:
        raise BootstrapError(
            f"{archive}: zstd-compressed archive needs the 'zstandard' Python module "
            "(pip install zstandard)"
        ) from None
    return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)


def _zip_entries(archive: Path, budget: _Budget) -> Iterator[Entry]:
    with zipfile.ZipFile(archive) as zip_file:
        for info in zip_file.infolist():
            yield _zip_entry(zip_file, info, budget)


def _zip_entry(zip_file: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget) -> Entry:
    mode = info.external_attr >> 16 if info.create_system == 3 else 0
    mtime = calendar.timegm((*info.date_time, 0, 0, 0))
    file_type = stat.S_IFMT(mode)
    if info.is_dir() or file_type == stat.S_IFDIR:
        return Entry(info.filename, DIR, mode, mtime)
    if file_type == stat.S_IFLNK:
        if info.file_size > MAX_ZIP_LINK:
            return Entry(info.filename, f"symlink of {info.file_size} bytes", mode, mtime)
        target = zip_file.read(info).decode("utf-8", "surrogateescape")
        return Entry(info.filename, SYMLINK, mode, mtime, target)
    if file_type in (0, stat.S_IFREG):

        def content() -> IO[bytes]:
            return _Metered(zip_file.open(info), budget)  # type: ignore[return-value]

        return Entry(info.filename, FILE, mode, mtime, content=content)
    return Entry(info.filename, f"special file (mode {mode:o})", mode, mtime)


@contextmanager
def _read_errors(archive: Path) -> Iterator[None]:
    """Turn a corrupt or truncated archive's low-level errors into one BootstrapError line."""
    errors: tuple[type[BaseException], ...] = (
        tarfile.TarError,
        zipfile.BadZipFile,
        EOFError,
        zlib.error,
        lzma.LZMAError,
        OSError,
    )
    try:
        import zstandard

        errors = (*errors, zstandard.ZstdError)
    except ImportError:
        pass
    try:
        yield
    except errors as error:
        raise BootstrapError(f"{archive}: cannot unpack: {_describe(error)}") from None


def _describe(error: BaseException) -> str:
    """The error on one line; a file name is cut to its last 100 characters."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        name = os.fsdecode(error.filename)
        return f"{error.strerror}: {name if len(name) <= 100 else '...' + name[-100:]}"
    return " ".join(str(error).split()) or type(error).__name__


class _Extractor:
    """Writes checked entries below `root`; symlinks wait in `links` until `finish`.

    `kinds` records everything created, so no path is ever looked up on disk before writing.
    """

    def __init__(self, archive: Path, root: Path, strip_top: bool) -> None:
        self.archive = archive
        self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.strip_top = strip_top
        self.top: str | None = None
        self.kinds: dict[tuple[str, ...], str] = {}
        self.links: dict[tuple[str, ...], str] = {}
        self.mtimes: dict[tuple[str, ...], float] = {}  # of directories and symlinks
        self.root_mtime: float = IMPLICIT_MTIME

    def __enter__(self) -> _Extractor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.close(self.root_fd)

    def refuse(self, member: str, why: str) -> BootstrapError:
        return BootstrapError(f"{self.archive}: member {member!r}: {why}")

    @staticmethod
    def real(parts: tuple[str, ...]) -> str:
        """The path relative to the root directory (every file call passes `dir_fd`)."""
        return "/".join(parts) or "."

    def add(self, entry: Entry) -> None:
        parts = self.tree_parts(entry.name)
        if entry.kind not in (FILE, DIR, SYMLINK, HARDLINK):
            raise self.refuse(entry.name, f"is a {entry.kind}, which is not allowed")
        if not parts:
            if entry.kind != DIR:
                raise self.refuse(entry.name, "is not a directory; cannot strip the top level")
            self.root_mtime = entry.mtime
            return
        self.make_parents(entry.name, parts)
        earlier = self.replace(entry, parts)
        if entry.kind == DIR:
            if earlier is None:
                os.mkdir(self.real(parts), 0o755, dir_fd=self.root_fd)
            self.mtimes[parts] = entry.mtime
        elif entry.kind == FILE:
            self.write_file(entry, self.real(parts))
        elif entry.kind == SYMLINK:
            self.check_link_text(entry)
            self.links[parts] = entry.linkname
            self.mtimes[parts] = entry.mtime
        else:
            self.write_hardlink(entry, self.real(parts))
        self.kinds[parts] = entry.kind

    def tree_parts(self, name: str) -> tuple[str, ...]:
        """The member's path components inside the tree (after stripping the top directory)."""
        if name.startswith("/"):
            raise self.refuse(name, "absolute path")
        if "\0" in name:
            raise self.refuse(name, "NUL byte in name")
        parts = tuple(part for part in name.split("/") if part not in ("", "."))
        if ".." in parts:
            raise self.refuse(name, "'..' in path")
        if not self.strip_top or not parts:
            return parts
        if self.top is None:
            self.top = parts[0]
        elif parts[0] != self.top:
            raise self.refuse(
                name, f"outside the top-level directory {self.top!r}; cannot strip it"
            )
        return parts[1:]

    def make_parents(self, name: str, parts: tuple[str, ...]) -> None:
        """Parents must be directories; missing ones are created (and recorded) here."""
        for depth in range(1, len(parts)):
            prefix = parts[:depth]
            kind = self.kinds.get(prefix)
            if kind is None:
                os.mkdir(self.real(prefix), 0o755, dir_fd=self.root_fd)
                self.kinds[prefix] = DIR
            elif kind != DIR:
                raise self.refuse(name, f"lies beneath the {kind} {'/'.join(prefix)!r}")

    def replace(self, entry: Entry, parts: tuple[str, ...]) -> str | None:
        """Make way for `entry`: a later member replaces an earlier one, except that
        directories and non-directories never replace each other. Return the earlier kind."""
        earlier = self.kinds.get(parts)
        if earlier is None or (earlier == DIR and entry.kind == DIR):
            return earlier
        if DIR in (earlier, entry.kind):
            raise self.refuse(entry.name, f"{entry.kind} conflicts with an earlier {earlier}")
        if self.links.pop(parts, None) is None:
            os.unlink(self.real(parts), dir_fd=self.root_fd)
        return earlier

    def write_file(self, entry: Entry, path: str) -> None:
        assert entry.content is not None
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        descriptor = os.open(path, flags, 0o600, dir_fd=self.root_fd)
        with entry.content() as content, open(descriptor, "wb", buffering=0) as out:
            shutil.copyfileobj(content, out, 1 << 20)
            os.fchmod(descriptor, 0o755 if entry.mode & 0o111 else 0o644)
            os.utime(descriptor, (entry.mtime, entry.mtime))

    def write_hardlink(self, entry: Entry, path: str) -> None:
        target = self.tree_parts(entry.linkname)
        if self.kinds.get(target) not in (FILE, HARDLINK):
            raise self.refuse(
                entry.name, f"hardlink target {entry.linkname!r} is not an earlier regular file"
            )
        fd = self.root_fd
        os.link(self.real(target), path, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)

    def check_link_text(self, entry: Entry) -> None:
        if not entry.linkname:
            raise self.refuse(entry.name, "symlink with an empty target")
        if entry.linkname.startswith("/"):
            raise self.refuse(entry.name, f"symlink to absolute path {entry.linkname!r}")
        if "\0" in entry.linkname:
            raise self.refuse(entry.name, "NUL byte in symlink target")

    def finish(self) -> None:
        """Check every symlink against the complete tree, create them, then fix directories."""
        if self.strip_top and self.top is None:
            raise BootstrapError(f"{self.archive}: archive is empty; nothing to strip")
        for parts, target in self.links.items():
            self.resolve_inside(parts, target)
        for parts, target in self.links.items():
            path = self.real(parts)
            os.symlink(target, path, dir_fd=self.root_fd)
            mtime = self.mtimes[parts]
            os.utime(path, (mtime, mtime), dir_fd=self.root_fd, follow_symlinks=False)
        directories = [parts for parts, kind in self.kinds.items() if kind == DIR]
        for parts in sorted(directories, key=len, reverse=True):
            self.fix_directory(self.real(parts), self.mtimes.get(parts, IMPLICIT_MTIME))
        self.fix_directory(".", self.root_mtime)

    def fix_directory(self, path: str, mtime: float) -> None:
        os.chmod(path, 0o755, dir_fd=self.root_fd)
        os.utime(path, (mtime, mtime), dir_fd=self.root_fd, follow_symlinks=False)

    def resolve_inside(self, parts: tuple[str, ...], target: str) -> None:
        """Follow the symlink at `parts` through the archive's own links; refuse escapes."""
        name = "/".join(parts)
        self.walk(name, list(parts[:-1]), target, 0)

    def walk(self, name: str, where: list[str], target: str, depth: int) -> list[str]:
        if depth > MAX_LINK_DEPTH:
            raise self.refuse(name, "symlink loop")
        if target.startswith("/"):
            raise self.refuse(name, f"symlink resolves through absolute path {target!r}")
        for part in target.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not where:
                    raise self.refuse(name, "symlink points outside the tree")
                where.pop()
                continue
            where.append(part)
            inner = self.links.get(tuple(where))
            if inner is not None:
                where.pop()
                where = self.walk(name, where, inner, depth + 1)
        return where
