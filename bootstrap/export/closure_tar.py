"""Export a closure as one plain, deterministic tar archive with a closure.json manifest.

Members, in order: `closure.json`, `nix-registration` (the same metadata in the format of
`nix-store --dump-db`, so `nix-store --load-db` can make the unpacked paths valid), then every
store path of the closure (sorted) under its
logical store dir without the leading slash (`nix/store/<hash>-<name>/...`), each tree
depth-first with entries sorted by name bytes. Owner and group are 0 with no names, mtime is 1
and modes are those in the store, so the same closure always gives the same bytes. The parent
directories of the store dir are not members: unpacking at / leaves their metadata alone.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bootstrap import progress
from bootstrap.errors import BootstrapError
from bootstrap.export.files import (
    EXTENSIONS,
    CompressedWriter,
    check_compression,
    output_directory,
    publish,
    staged_file,
)
from bootstrap.store import PathInfo, Store
from bootstrap.store.canonical import CANONICAL_MTIME

MANIFEST_NAME = "closure.json"
REGISTRATION_NAME = "nix-registration"


@dataclass(frozen=True)
class TarExport:
    archive: Path
    closure: tuple[str, ...]
    size: int


def closure_manifest(store_dir: str, roots: Iterable[str], infos: Iterable[PathInfo]) -> dict:
    """The closure.json content: the store dir, the requested roots, and every path's metadata."""
    return {
        "storeDir": store_dir,
        "roots": sorted(set(roots)),
        "paths": [
            {
                "path": info.path,
                "narHash": str(info.nar_hash),
                "narSize": info.nar_size,
                "references": list(info.references),
                "deriver": info.deriver,
                "ca": info.ca,
            }
            for info in infos
        ],
    }


def nix_registration(infos: Iterable[PathInfo]) -> str:
    """Path, NAR hash (hex), NAR size, deriver, reference count and references, per path."""
    lines = []
    for info in infos:
        lines += [info.path, info.nar_hash.hex, str(info.nar_size), info.deriver or ""]
        lines += [str(len(info.references)), *info.references]
    return "".join(f"{line}\n" for line in lines)


def archive_name(compression: str) -> str:
    return f"closure.tar{EXTENSIONS[compression]}"


def export_closure_tar(
    store: Store,
    paths: Iterable[str],
    directory: Path,
    compression: str = "xz",
    on_event: progress.OnEvent | None = None,
) -> TarExport:
    """Write `directory/closure.tar[.xz|.zst]` with the closure of `paths`, replacing any;
    each path is said to `on_event` as a STEP before it is written."""
    check_compression(compression)
    roots = list(paths)
    with store.gc_guard():  # the collector waits until the closure is exported
        return _export(store, roots, output_directory(directory), compression, on_event)


def _export(store, roots: list[str], directory: Path, compression: str, on_event) -> TarExport:
    closure = store.closure(roots)
    infos = [store.query_info(path) for path in closure]
    manifest = closure_manifest(store.store_dir, roots, infos)
    final = directory / archive_name(compression)
    with staged_file(directory) as out:
        writer = CompressedWriter(out, compression)
        with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, MANIFEST_NAME, json.dumps(manifest, indent=2).encode() + b"\n")
            _add_bytes(tar, REGISTRATION_NAME, nix_registration(infos).encode())
            step = progress.step_events(on_event, f"writing {final.name}", len(closure))
            for count, path in enumerate(closure, 1):
                step(count, path)
                _add_tree(tar, store.real_path(path), path.lstrip("/"))
        writer.finish()
        publish(out, final)
    return TarExport(final, tuple(closure), writer.size)


def _member(name: str, st: os.stat_result) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.mode = stat.S_IMODE(st.st_mode)
    member.mtime = CANONICAL_MTIME
    return member


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    member = tarfile.TarInfo(name)
    member.size, member.mode, member.mtime = len(data), 0o444, CANONICAL_MTIME
    tar.addfile(member, io.BytesIO(data))


def _add_tree(tar: tarfile.TarFile, real: Path, name: str) -> None:
    """Add the file, symlink or directory at `real` as member `name`, and a directory's entries
    after it, depth first (without recursion, so at any depth)."""
    pending = [(real, name)]
    while pending:
        real, name = pending.pop()
        st = os.lstat(real)
        member = _member(name, st)
        if stat.S_ISLNK(st.st_mode):
            member.type, member.linkname = tarfile.SYMTYPE, os.readlink(real)
            tar.addfile(member)
        elif stat.S_ISREG(st.st_mode):
            member.size = st.st_size
            with open(real, "rb") as data:
                tar.addfile(member, data)
        elif stat.S_ISDIR(st.st_mode):
            member.type = tarfile.DIRTYPE
            tar.addfile(member)
            children = sorted(os.listdir(real), key=os.fsencode, reverse=True)
            pending += [(real / child, f"{name}/{child}") for child in children]
        else:
            raise BootstrapError(f"{real}: not a file, symlink or directory; cannot be exported")
