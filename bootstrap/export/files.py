"""Compressed, hashed, atomically renamed output files: what both export formats write."""

from __future__ import annotations

import hashlib
import lzma
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Protocol

from bootstrap.errors import BootstrapError
from bootstrap.hashing import Hash

COMPRESSIONS = ("xz", "zstd", "none")
EXTENSIONS = {"xz": ".xz", "zstd": ".zst", "none": ""}
XZ_PRESET = 6
ZSTD_LEVEL = 3


class _Compressor(Protocol):
    def compress(self, data: bytes) -> bytes: ...
    def flush(self) -> bytes: ...


class _Identity:
    def compress(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


def _compressor(compression: str) -> _Compressor:
    """A single-threaded compressor with fixed settings, so equal input gives equal bytes."""
    if compression == "xz":
        return lzma.LZMACompressor(lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=XZ_PRESET)
    if compression == "zstd":
        try:
            import zstandard
        except ImportError:
            raise BootstrapError(
                "zstd compression needs the Python package zstandard (pip install zstandard)"
            ) from None
        return zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True).compressobj()
    if compression == "none":
        return _Identity()
    raise BootstrapError(
        f"unknown compression {compression!r}: expected one of {', '.join(COMPRESSIONS)}"
    )


def output_directory(directory: Path) -> Path:
    """`directory`, made if missing: an export writes into a directory, never over a file."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise BootstrapError(f"{directory}: not a directory; export writes into a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BootstrapError(f"{directory}: cannot make the directory: {error.strerror}") from None
    return directory


def check_compression(compression: str) -> str:
    """Fail early, before anything is written, on an unknown or unavailable compression."""
    _compressor(compression)
    return compression


class CompressedWriter:
    """A write-only stream that compresses into `out`, hashing and counting the stored bytes."""

    def __init__(self, out: BinaryIO, compression: str) -> None:
        self._out = out
        self._compressor = _compressor(compression)
        self._hasher = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._emit(self._compressor.compress(data))
        return len(data)

    def finish(self) -> Hash:
        """Flush the compressor; return the sha256 of everything written to `out`."""
        self._emit(self._compressor.flush())
        return Hash("sha256", self._hasher.digest())

    def _emit(self, data: bytes) -> None:
        if data:
            self._out.write(data)
            self._hasher.update(data)
            self.size += len(data)


@contextmanager
def staged_file(directory: Path) -> Iterator[BinaryIO]:
    """A new temporary file in `directory`, removed afterwards unless `publish`ed."""
    temp = directory / f".tmp-export-{secrets.token_hex(6)}"
    try:
        with open(temp, "xb") as out:
            yield out
    finally:
        temp.unlink(missing_ok=True)


def publish(out: BinaryIO, final: Path) -> None:
    """Give a staged file its final name: readers see all of it or none of it."""
    out.flush()
    os.replace(out.name, final)


def write_atomically(final: Path, data: bytes) -> None:
    with staged_file(final.parent) as out:
        out.write(data)
        publish(out, final)
