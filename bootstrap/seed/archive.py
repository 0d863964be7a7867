"""The seed archive, written deterministically (sorted entries under one top directory, owner
0:0, fixed mtime and modes, GNU tar format, gzip without a name or time), and read back: the
hash of each file, and the NAR hash of the unpacked tree as the store holds it."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bootstrap.errors import BootstrapError
from bootstrap.hashing import Hash, hash_bytes
from bootstrap.nar import nar_hash
from bootstrap.unpack import unpack

ARCHIVE_TOP = "seed"


@dataclass(frozen=True)
class WrittenArchive:
    files: dict[str, str]  # path inside the archive -> sha256 hex
    tar_sha256: Hash  # of the tar stream before compression


def write_archive(tree: Path, out: Path, mtime: int) -> WrittenArchive:
    """Write `tree` as a deterministic .tar.gz at `out` (via a temp name).

    Entries are sorted, under one top directory named `ARCHIVE_TOP`, owned by 0:0 with no
    user or group names, with mtime `mtime`, mode 0755 for directories and executables and
    0644 otherwise. The gzip header carries no file name and time 0.
    """
    if not tree.is_dir():
        raise BootstrapError(f"{tree}: the seed build produced no tree to archive")
    files: dict[str, str] = {}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path, name in _sorted_tree(tree, ARCHIVE_TOP):
            info, content = _tar_entry(path, name, mtime)
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
            if content is not None:
                files[name] = hashlib.sha256(content).hexdigest()
    temp = out.with_name(f".{out.name}.tmp")
    with open(temp, "wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as compressed:
        compressed.write(buffer.getvalue())
    os.replace(temp, out)
    return WrittenArchive(files, hash_bytes("sha256", buffer.getvalue()))


def _sorted_tree(root: Path, top: str) -> Iterator[tuple[Path, str]]:
    yield root, top
    for child in sorted(root.iterdir(), key=lambda p: p.name.encode()):
        if child.is_dir() and not child.is_symlink():
            yield from _sorted_tree(child, f"{top}/{child.name}")
        else:
            yield child, f"{top}/{child.name}"


def _tar_entry(path: Path, name: str, mtime: int) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if path.is_symlink():
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(path), 0o777
        return info, None
    if path.is_dir():
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        return info, None
    content = path.read_bytes()
    info.size = len(content)
    info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
    return info, content


def archive_file_hashes(archive: Path) -> dict[str, str]:
    """Path -> sha256 hex of every regular file in a (possibly compressed) tar archive."""
    files: dict[str, str] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                if member.isreg():
                    handle = tar.extractfile(member)
                    assert handle is not None
                    files[member.name] = hashlib.sha256(handle.read()).hexdigest()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise BootstrapError(f"{archive}: cannot read seed archive: {error}") from None
    return files


def tree_hash(archive: Path) -> Hash:
    """The NAR sha256 of the archive unpacked without its top directory, as the store holds it."""
    with tempfile.TemporaryDirectory(prefix="bootstrap-seed-tree-") as scratch:
        return nar_hash(unpack(archive, Path(scratch) / "tree", strip_top=True))[0]
