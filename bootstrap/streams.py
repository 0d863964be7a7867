"""A readable stream over chunks that hashes and counts what passes through it.

Substitution and remote builds both restore NARs that arrive as chunks (from a cache, from a
remote store) and must know the NAR's sha256 and size without holding it in memory.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator

from bootstrap.errors import BootstrapError
from bootstrap.hashing import Hash


class CountingReader(io.RawIOBase):
    """A stream over `chunks` that hashes and counts what passes; reading stops with an error
    at the first chunk past `limit` bytes (when given). `what` names the stream in errors."""

    def __init__(self, chunks: Iterator[bytes], limit: int | None = None, what: str = "") -> None:
        self.chunks = chunks
        self.limit = limit
        self.what = what
        self.hasher = hashlib.sha256()
        self.size = 0
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.pending:
            chunk = next(self.chunks, None)
            if chunk is None:
                return 0
            self._count(chunk)
            self.pending = chunk
        taken = self.pending[: len(buffer)]
        buffer[: len(taken)] = taken
        self.pending = self.pending[len(taken) :]
        return len(taken)

    def _count(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.limit is not None and self.size > self.limit:
            raise BootstrapError(f"{self.what}: more than the {self.limit} bytes declared")
        self.hasher.update(chunk)

    def digest(self) -> Hash:
        return Hash("sha256", self.hasher.digest())

    def drain(self, chunk_size: int = 1 << 17) -> None:
        """Read to the end, so the hash and size cover everything the source sends."""
        while self.readinto(bytearray(chunk_size)):
            pass
