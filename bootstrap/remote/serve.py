"""The client side of Nix's serve protocol (`nix-store --serve --write`), as Hydra drives it.

Facts, checked against Nix 2.8's `opServe` and against a real `nix-store --serve` here:

- Every integer is a u64, little-endian; a string is its length (u64), its bytes, and zero
  padding to a multiple of 8; a list or set of strings is its count, then the strings.
- Handshake: the client sends 0x390c9deb and its version; the server answers 0x5452eecb and
  its own version (0x207 for Nix 2.8). We announce 0x206: BuildDerivation replies carry times
  built, non-determinism and the start/stop times (minor >= 3), QueryPathInfos replies the NAR
  hash, CA and signatures (minor >= 4), AddToStoreNar (9) exists (minor >= 5), and the
  BuildDerivation reply ends with the built outputs' realisations (minor >= 6: a count, then
  `DRVHASH!OUTPUT` and a JSON realisation per output). Nix 2.8 sent those realisations even to
  a client announcing 0x205 (seen here), so we take them, and skip them: our output paths are
  input-addressed and known in advance.
- The server writes nothing but replies on stdout; its stderr carries the builder's log (and
  Nix's own error messages), so stderr is the build log, as in Hydra.

Only the commands a build needs are here: QueryValidPaths, QueryPathInfos, DumpStorePath,
AddToStoreNar and BuildDerivation.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bootstrap.derivation import Derivation
from bootstrap.errors import BootstrapError
from bootstrap.hashing import Hash
from bootstrap.nar import dump

SERVE_MAGIC_1 = 0x390C9DEB
SERVE_MAGIC_2 = 0x5452EECB
CLIENT_VERSION = 0x206
MIN_SERVER_VERSION = 0x206  # Nix 2.4 and later

QUERY_VALID_PATHS = 1
QUERY_PATH_INFOS = 2
DUMP_STORE_PATH = 3
BUILD_DERIVATION = 8
ADD_TO_STORE_NAR = 9

# BuildResult statuses (Nix's BuildResult::Status); the first three mean the outputs are valid
BUILD_STATUSES = (
    "Built",
    "Substituted",
    "AlreadyValid",
    "PermanentFailure",
    "InputRejected",
    "OutputRejected",
    "TransientFailure",
    "CachedFailure",
    "TimedOut",
    "MiscFailure",
    "DependencyFailed",
    "LogLimitExceeded",
    "NotDeterministic",
)
_SUCCESS = frozenset({0, 1, 2})
_MAX_STRING = 64 << 20  # a reply string (an error message, a path) longer than this is bogus
_CHUNK = 1 << 17


class ServeError(BootstrapError):
    """The remote broke the protocol or the connection dropped; the message says where."""


@dataclass(frozen=True)
class BuildSettings:
    """What BuildDerivation sends after the derivation (0 means no limit, as in Nix)."""

    max_silent_seconds: int = 0
    timeout_seconds: int = 0
    max_log_size: int = 0


@dataclass(frozen=True)
class BuildResult:
    status: int
    error: str
    times_built: int = 0
    start_time: int = 0
    stop_time: int = 0

    @property
    def succeeded(self) -> bool:
        return self.status in _SUCCESS

    @property
    def status_name(self) -> str:
        known = 0 <= self.status < len(BUILD_STATUSES)
        return BUILD_STATUSES[self.status] if known else f"status {self.status}"


@dataclass(frozen=True)
class RemotePathInfo:
    """What QueryPathInfos says about one valid path on the remote."""

    path: str
    deriver: str
    references: tuple[str, ...]
    nar_size: int
    nar_hash: Hash
    ca: str
    signatures: tuple[str, ...]


class ServeConnection:
    """One session with a serve-protocol server over a pair of byte streams."""

    def __init__(self, to_server: BinaryIO, from_server: BinaryIO, where: str) -> None:
        self._out = to_server
        self._in = from_server
        self.where = where
        self.server_version = 0

    # -- framing ------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        try:
            self._out.write(data)
        except (BrokenPipeError, ConnectionResetError, ValueError):
            raise ServeError(f"{self.where}: the connection was closed while sending") from None

    def _flush(self) -> None:
        try:
            self._out.flush()
        except (BrokenPipeError, ConnectionResetError, ValueError):
            raise ServeError(f"{self.where}: the connection was closed while sending") from None

    def write_int(self, value: int) -> None:
        self._write(struct.pack("<Q", value))

    def write_string(self, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        self._write(struct.pack("<Q", len(data)) + data + b"\0" * (-len(data) % 8))

    def write_strings(self, items: Iterable[str]) -> None:
        items = list(items)
        self.write_int(len(items))
        for item in items:
            self.write_string(item)

    def read_exact(self, size: int) -> bytes:
        data = self._in.read(size)
        if len(data) != size:
            raise ServeError(f"{self.where}: the connection closed in the middle of a reply")
        return data

    def read_int(self) -> int:
        return struct.unpack("<Q", self.read_exact(8))[0]

    def read_string(self) -> str:
        size = self.read_int()
        if size > _MAX_STRING:
            raise ServeError(f"{self.where}: a reply string of {size} bytes; expected a short one")
        data = self.read_exact(size + (-size % 8))
        return data[:size].decode("utf-8", "surrogateescape")

    def read_strings(self) -> list[str]:
        count = self.read_int()
        if count > _MAX_STRING:
            raise ServeError(f"{self.where}: a reply list of {count} items; expected fewer")
        return [self.read_string() for _ in range(count)]

    # -- handshake ----------------------------------------------------------------------
    def handshake(self) -> None:
        self.write_int(SERVE_MAGIC_1)
        self.write_int(CLIENT_VERSION)
        self._flush()
        magic = self.read_int()
        if magic != SERVE_MAGIC_2:
            raise ServeError(f"{self.where}: not a Nix serve protocol server (magic {magic:#x})")
        self.server_version = self.read_int()
        if self.server_version >> 8 != 2 or self.server_version < MIN_SERVER_VERSION:
            raise ServeError(
                f"{self.where}: serve protocol version {self.server_version:#x}; "
                f"expected 2.{MIN_SERVER_VERSION & 0xFF} or later (Nix 2.4+)"
            )

    # -- commands -----------------------------------------------------------------------
    def query_valid_paths(self, paths: Sequence[str]) -> set[str]:
        """Which of `paths` the remote holds (no temp roots taken, no substitution)."""
        self.write_int(QUERY_VALID_PATHS)
        self.write_int(0)  # lock
        self.write_int(0)  # substitute
        self.write_strings(paths)
        self._flush()
        return set(self.read_strings())

    def query_path_infos(self, paths: Sequence[str]) -> dict[str, RemotePathInfo]:
        """Path infos of the valid ones among `paths` (the reply ends with an empty path)."""
        self.write_int(QUERY_PATH_INFOS)
        self.write_strings(paths)
        self._flush()
        infos: dict[str, RemotePathInfo] = {}
        while path := self.read_string():
            deriver = self.read_string()
            references = tuple(self.read_strings())
            self.read_int()  # download size: the NAR size again
            nar_size = self.read_int()
            nar_hash = _parse_hash(self.read_string(), self.where)
            ca = self.read_string()
            signatures = tuple(self.read_strings())
            infos[path] = RemotePathInfo(
                path, deriver, references, nar_size, nar_hash, ca, signatures
            )
        return infos

    def add_to_store_nar(
        self,
        path: str,
        deriver: str,
        nar_hash: Hash,
        references: Sequence[str],
        nar_size: int,
        ca: str,
        tree: Path,
        signatures: Sequence[str] = (),
    ) -> None:
        """Send one path: its metadata, then the NAR of `tree` (exactly `nar_size` bytes),
        file contents moved by the kernel straight into the pipe where it can."""
        self.write_int(ADD_TO_STORE_NAR)
        self.write_string(path)
        self.write_string(deriver)
        self.write_string(f"sha256:{nar_hash.hex}")
        self.write_strings(references)
        self.write_int(0)  # registration time: the remote's own clock
        self.write_int(nar_size)
        self.write_int(0)  # not "ultimately trusted": the remote built nothing here
        self.write_strings(signatures)
        self.write_string(ca)
        try:
            dump(tree, self._out)
        except (BrokenPipeError, ConnectionResetError):
            raise ServeError(f"{self.where}: the connection was closed while sending") from None
        self._flush()
        if self.read_int() != 1:
            raise ServeError(f"{self.where}: did not accept {path}")

    def build_derivation(
        self, drv_path: str, drv: Derivation, inputs: Sequence[str], settings: BuildSettings
    ) -> BuildResult:
        """Build a "basic" derivation: its input derivations replaced by their output paths,
        which must already be valid on the remote, as `inputs`."""
        self.write_int(BUILD_DERIVATION)
        self.write_string(drv_path)
        self.write_int(len(drv.outputs))
        for name, out in drv.outputs.items():
            self.write_string(name)
            self.write_string(out.path)
            self.write_string(out.hash_algo)
            self.write_string(out.hash)
        self.write_strings(sorted(set(inputs)))
        self.write_string(drv.system)
        self.write_string(drv.builder)
        self.write_strings(drv.args)
        self.write_int(len(drv.env))
        for key, value in drv.env.items():
            self.write_string(key)
            self.write_string(value)
        self.write_int(settings.max_silent_seconds)
        self.write_int(settings.timeout_seconds)
        self.write_int(settings.max_log_size)
        self.write_int(0)  # repeats
        self.write_int(0)  # enforce determinism
        self._flush()
        status = self.read_int()
        error = self.read_string()
        times_built = self.read_int()
        self.read_int()  # is non-deterministic
        start, stop = self.read_int(), self.read_int()
        for _ in range(self.read_int()):  # realisations
            self.read_string()
            self.read_string()
        return BuildResult(status, error, times_built, start, stop)

    def dump_store_path(self, path: str, nar_size: int) -> Iterator[bytes]:
        """The NAR of `path`: exactly `nar_size` bytes (the size QueryPathInfos gave), which
        the caller must read to the end before the next command."""
        self.write_int(DUMP_STORE_PATH)
        self.write_string(path)
        self._flush()
        remaining = nar_size
        while remaining:
            chunk = self._in.read(min(_CHUNK, remaining))
            if not chunk:
                raise ServeError(f"{self.where}: the connection closed while sending {path}")
            remaining -= len(chunk)
            yield chunk


def _parse_hash(text: str, where: str) -> Hash:
    try:
        return Hash.parse(text)
    except BootstrapError as err:
        raise ServeError(f"{where}: {err}") from None
