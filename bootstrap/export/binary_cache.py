"""Export a closure as a Nix binary cache (`file://` substituter) that Nix 2.8 reads.

Layout of the cache directory:
    nix-cache-info              StoreDir, WantMassQuery, Priority
    nar/<filehash>.nar[.xz|.zst] each path's NAR, compressed; named by the file's sha256
    <hashpart>.narinfo          what Nix needs to substitute the path (see `NarInfo`)
    log/<drv basename>          the build log of each exported path's derivation (`nix log`)

A path whose .narinfo (and the NAR it names) is already there is skipped. Each NAR is
serialised straight into its compressor and a temporary file, hashed on the way, checked
against the NAR hash the store registered, and only then renamed; the .narinfo is written
last, after those of its references, so an interrupted export leaves a usable cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from bootstrap import progress
from bootstrap.build import log_path
from bootstrap.errors import BootstrapError
from bootstrap.export.files import (
    EXTENSIONS,
    CompressedWriter,
    check_compression,
    output_directory,
    publish,
    staged_file,
    write_atomically,
)
from bootstrap.hashing import Hash
from bootstrap.nar import serialise
from bootstrap.signing import SecretKey, fingerprint
from bootstrap.store import PathInfo, Store
from bootstrap.store.copy import references_first
from bootstrap.storepath import split_store_path

PRIORITY = 40


@dataclass(frozen=True)
class NarInfo:
    """One .narinfo file: a store path, where its compressed NAR is, and its metadata."""

    info: PathInfo
    url: str
    compression: str
    file_hash: Hash
    file_size: int
    signatures: tuple[str, ...] = ()

    def render(self) -> str:
        """The text, fields in the order Nix writes them; References is present even if empty."""
        info = self.info
        lines = [
            f"StorePath: {info.path}",
            f"URL: {self.url}",
            f"Compression: {self.compression}",
            f"FileHash: {self.file_hash}",
            f"FileSize: {self.file_size}",
            f"NarHash: {info.nar_hash}",
            f"NarSize: {info.nar_size}",
            "References: " + " ".join(_basename(ref) for ref in info.references),
        ]
        if info.deriver:
            lines.append(f"Deriver: {_basename(info.deriver)}")
        lines += [f"Sig: {sig}" for sig in self.signatures]
        if info.ca:
            lines.append(f"CA: {info.ca}")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class CacheExport:
    """What an export did: the whole closure, and which of it was written or already there."""

    directory: Path
    closure: tuple[str, ...]
    written: tuple[str, ...]
    present: tuple[str, ...]
    logs: tuple[str, ...] = ()  # derivations whose build log was written


def _basename(store_path: str) -> str:
    return store_path.rsplit("/", 1)[1]


def cache_info_text(store_dir: str) -> str:
    return f"StoreDir: {store_dir}\nWantMassQuery: 1\nPriority: {PRIORITY}\n"


def export_binary_cache(
    store: Store,
    paths: Iterable[str],
    directory: Path,
    compression: str = "xz",
    sign_key: SecretKey | None = None,
    drvs: bool = True,
    logs: bool = True,
    on_event: progress.OnEvent | None = None,
) -> CacheExport:
    """Write the closure of `paths` into the binary cache at `directory` (made if missing).

    Each narinfo carries the path's signatures from the store, and one by `sign_key` if given.
    With `drvs`, the closures of the paths' derivations go in too (so a consumer can read and
    rebuild them), and with `logs` their build logs, as `log/<drv name>` (Nix's layout).
    Each path is said to `on_event` as a STEP before it is written.
    """
    check_compression(compression)
    with store.gc_guard():  # the collector waits until the closure is exported
        outputs = store.closure(paths)
        derivers = _derivers(store, outputs)
        closure = store.closure([*outputs, *derivers]) if drvs else outputs
        directory = output_directory(directory)
        (directory / "nar").mkdir(exist_ok=True)
        _claim_cache_info(directory, store.store_dir)
        written, present = [], []
        step = progress.step_events(on_event, f"exporting to {directory}", len(closure))
        for count, path in enumerate(references_first(store, closure), 1):
            step(count, path)
            narinfo = directory / f"{split_store_path(path, store.store_dir)[0]}.narinfo"
            if _complete(narinfo):
                present.append(path)
                continue
            info = store.query_info(path)
            entry = _write_nar(store, info, directory, compression)
            entry = replace(entry, signatures=_signatures(info, sign_key))
            write_atomically(narinfo, entry.render().encode())
            written.append(path)
        logged = _write_logs(store, derivers, directory) if logs else []
    return CacheExport(directory, tuple(closure), tuple(written), tuple(present), tuple(logged))


def _derivers(store: Store, paths: Iterable[str]) -> list[str]:
    """The valid derivations that built `paths`."""
    found = {store.query_info(path).deriver for path in paths}
    return sorted(d for d in found if d and store.is_valid(d))


def _write_logs(store: Store, derivers: list[str], directory: Path) -> list[str]:
    """Copy each derivation's build log to `log/<drv basename>`; return those written."""
    written = []
    for drv in derivers:
        log = log_path(store, drv)
        if log.is_file():
            (directory / "log").mkdir(exist_ok=True)
            write_atomically(directory / "log" / _basename(drv), log.read_bytes())
            written.append(drv)
    return written


def _signatures(info: PathInfo, sign_key: SecretKey | None) -> tuple[str, ...]:
    signatures = set(info.signatures)
    if sign_key is not None:
        message = fingerprint(info.path, info.nar_hash, info.nar_size, info.references)
        signatures.add(sign_key.sign(message))
    return tuple(sorted(signatures))


def _claim_cache_info(directory: Path, store_dir: str) -> None:
    """Write nix-cache-info, or check that an existing cache is for the same store dir."""
    file = directory / "nix-cache-info"
    if not file.exists():
        write_atomically(file, cache_info_text(store_dir).encode())
        return
    fields = _fields(file.read_text())
    if fields.get("StoreDir") != store_dir:
        raise BootstrapError(
            f"{file}: StoreDir is {fields.get('StoreDir')!r}, expected {store_dir!r}: "
            "export into another directory"
        )


def _fields(text: str) -> dict[str, str]:
    pairs = (line.split(": ", 1) for line in text.splitlines() if ": " in line)
    return dict(pairs)


def _complete(narinfo: Path) -> bool:
    """Whether a .narinfo exists and the NAR file it names does too."""
    if not narinfo.exists():
        return False
    url = _fields(narinfo.read_text()).get("URL", "")
    return bool(url) and (narinfo.parent / url).is_file()


def _write_nar(store: Store, info: PathInfo, directory: Path, compression: str) -> NarInfo:
    """Serialise, compress and hash one path's NAR into nar/, checking it against `info`."""
    nar_hasher = hashlib.sha256()
    nar_size = 0
    with staged_file(directory / "nar") as out:
        writer = CompressedWriter(out, compression)

        def feed(data: bytes) -> None:
            nonlocal nar_size
            nar_hasher.update(data)
            nar_size += len(data)
            writer.write(data)

        serialise(store.real_path(info.path), feed)
        file_hash = writer.finish()
        actual = Hash("sha256", nar_hasher.digest())
        if (actual, nar_size) != (info.nar_hash, info.nar_size):
            raise BootstrapError(
                f"{info.path}: contents no longer match the NAR hash registered for it "
                f"({actual} != {info.nar_hash}): run `bootstrap store verify`"
            )
        url = f"nar/{file_hash.nix32}.nar{EXTENSIONS[compression]}"
        publish(out, directory / url)
    return NarInfo(info, url, compression, file_hash, writer.size)
