"""Load a closure archive written by `export --format tar` into a store, trusting nothing in it.

The archive's `closure.json` says which paths it holds and their NAR hashes, sizes and
references. Every member must lie inside one of those paths; only directories, regular files
and symlinks are taken; a member is only created inside a directory an earlier member made, so
no symlink in the archive is ever followed. Each path is restored into a scratch directory,
its NAR hash checked against closure.json, and only when every path has been checked are they
registered, references first. A path already valid in the store is skipped.
"""

from __future__ import annotations

import json
import os
import stat
import tarfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from bootstrap.errors import BootstrapError
from bootstrap.export.closure_tar import MANIFEST_NAME, REGISTRATION_NAME
from bootstrap.graphs import dependencies_first
from bootstrap.hashing import Hash
from bootstrap.nar import nar_hash
from bootstrap.store import PathInfo, Store
from bootstrap.storepath import split_store_path

MAX_MANIFEST_BYTES = 64 << 20


@dataclass(frozen=True)
class TarImport:
    closure: tuple[str, ...]
    added: tuple[str, ...]


def import_closure_tar(store: Store, archive: Path) -> TarImport:
    """Add every path of `archive` (closure.tar, .tar.xz or .tar.zst) to `store`."""
    archive = Path(archive)
    with _open_archive(archive) as tar, store.gc_guard(), ExitStack() as scratch:
        infos = _read_manifest(tar, archive, store.store_dir)
        wanted = {info.path: info for info in infos if not store.is_valid(info.path)}
        trees = {path: scratch.enter_context(store.temp_dir("import")) for path in wanted}
        _restore_members(tar, archive, store.store_dir, trees, infos)
        for path, tree in trees.items():
            _check_tree(archive, wanted[path], tree)
        added = _register(store, archive, wanted, trees)
    return TarImport(tuple(info.path for info in infos), tuple(added))


@contextmanager
def _open_archive(archive: Path) -> Iterator[tarfile.TarFile]:
    try:
        raw = open(archive, "rb")  # noqa: SIM115 (closed by the with below)
    except OSError as err:
        raise BootstrapError(f"{archive}: cannot read: {err.strerror}") from None
    with raw, _decompressed(raw, archive) as stream:
        try:
            with tarfile.open(fileobj=stream, mode="r|*") as tar:
                yield tar
        except (tarfile.TarError, EOFError, OSError) as err:
            raise BootstrapError(f"{archive}: not a readable closure archive: {err}") from None


@contextmanager
def _decompressed(raw: IO[bytes], archive: Path) -> Iterator[IO[bytes]]:
    if raw.read(4) != b"\x28\xb5\x2f\xfd":  # not zstd: tarfile reads plain and xz itself
        raw.seek(0)
        yield raw
        return
    raw.seek(0)
    import zstandard

    with zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True) as stream:
        yield stream


def _read_manifest(tar: tarfile.TarFile, archive: Path, store_dir: str) -> list[PathInfo]:
    member = tar.next()
    if member is None or member.name != MANIFEST_NAME or not member.isfile():
        raise BootstrapError(f"{archive}: the first member is not {MANIFEST_NAME}")
    if member.size > MAX_MANIFEST_BYTES:
        raise BootstrapError(f"{archive}: {MANIFEST_NAME} is larger than 64 MiB")
    try:
        manifest = json.loads(tar.extractfile(member).read())
        if manifest["storeDir"] != store_dir:
            raise BootstrapError(
                f"{archive}: its store dir is {manifest['storeDir']!r}, expected {store_dir!r}: "
                "import into a store with that --store-dir"
            )
        return [_path_info(entry, store_dir) for entry in manifest["paths"]]
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise BootstrapError(f"{archive}: {MANIFEST_NAME} is malformed ({err})") from None


def _path_info(entry: dict, store_dir: str) -> PathInfo:
    for path in [entry["path"], *entry["references"]]:
        split_store_path(path, store_dir)
    return PathInfo(
        path=entry["path"],
        nar_hash=Hash.parse(entry["narHash"]),
        nar_size=int(entry["narSize"]),
        references=tuple(entry["references"]),
        deriver=entry.get("deriver"),
        ca=entry.get("ca"),
    )


def _restore_members(
    tar: tarfile.TarFile,
    archive: Path,
    store_dir: str,
    trees: dict[str, Path],
    infos: list[PathInfo],
) -> None:
    known = {info.path for info in infos}
    made_dirs: set[PurePosixPath] = set()
    for member in tar:
        if member.name in (MANIFEST_NAME, REGISTRATION_NAME):
            continue  # read already / for Nix's --load-db
        name = PurePosixPath("/" + member.name)
        path, relative = _split_member(name, store_dir, archive)
        if path not in known:
            raise BootstrapError(f"{archive}: member {member.name} is outside the closure")
        if path not in trees:
            continue  # already valid here
        try:
            _restore_member(tar, member, trees[path], relative, made_dirs, path, archive)
        except OSError as err:
            raise BootstrapError(
                f"{archive}: cannot restore {member.name}: {err.strerror}"
            ) from None


def _split_member(name: PurePosixPath, store_dir: str, archive: Path) -> tuple[str, PurePosixPath]:
    root = PurePosixPath(store_dir)
    if ".." in name.parts or not name.is_relative_to(root) or name == root:
        raise BootstrapError(f"{archive}: member {name} is not inside {store_dir}")
    rest = name.relative_to(root)
    return f"{store_dir}/{rest.parts[0]}", PurePosixPath(*rest.parts[1:])


def _restore_member(tar, member, tree: Path, relative, made_dirs, path: str, archive) -> None:
    key = PurePosixPath(path) / relative
    if relative.parts and key.parent not in made_dirs:
        raise BootstrapError(
            f"{archive}: member {member.name} comes before its directory (or under a link)"
        )
    target = os.path.join(tree, *relative.parts) if relative.parts else os.fspath(tree)
    if member.isdir():
        os.mkdir(target, 0o755)
        made_dirs.add(key)
    elif member.issym():
        os.symlink(member.linkname, target)
    elif member.isfile():
        _write_file(tar.extractfile(member), target, member.mode & stat.S_IXUSR)
    else:
        raise BootstrapError(f"{archive}: member {member.name} is not a file, directory or link")


def _write_file(source: IO[bytes], target: str, executable: int) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(1 << 20):
            out.write(chunk)
        os.fchmod(out.fileno(), 0o555 if executable else 0o444)


def _check_tree(archive: Path, info: PathInfo, tree: Path) -> None:
    if not os.path.lexists(tree):
        raise BootstrapError(f"{archive}: holds nothing for {info.path}")
    actual, size = nar_hash(tree, info.nar_hash.algo)
    if (actual, size) != (info.nar_hash, info.nar_size):
        raise BootstrapError(
            f"{archive}: {info.path} does not match closure.json: NAR hash {actual}, "
            f"expected {info.nar_hash}"
        )


def _register(
    store: Store, archive: Path, wanted: dict[str, PathInfo], trees: dict[str, Path]
) -> list[str]:
    """Register every wanted path, references first, once all their references are known to
    be in the archive or the store."""
    for info in wanted.values():
        missing = [r for r in info.references if r not in wanted and not store.is_valid(r)]
        if missing:
            raise BootstrapError(
                f"{archive}: {info.path}: its reference {missing[0]} is neither in the archive "
                "nor in the store"
            )
    added: list[str] = []
    order = dependencies_first(wanted, lambda path: wanted[path].references, within=wanted)
    for path in order:
        with store.lock(path):
            if not store.is_valid(path):
                store.register_verified(trees[path], wanted[path])  # hash checked by _check_tree
                added.append(path)
    return added
