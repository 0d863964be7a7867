"""The seed's manifest (`seeds/<system>.json`): the sources and patches the seed is built
from, each pinned by sha256, and the pins of the seed itself (its archive's sha256, the tar's
sha256 inside it, and the NAR sha256 of the unpacked tree, which names stage 0's store path).
Every error names the file and the field."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from bootstrap.errors import BootstrapError
from bootstrap.fetch import Source
from bootstrap.hashing import Hash

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_SYSTEM = "x86_64-linux"


def default_manifest(system: str = DEFAULT_SYSTEM) -> Path:
    return PROJECT_ROOT / "seeds" / f"{system}.json"


@dataclass(frozen=True)
class SeedSource:
    """One pinned source tarball and the directory (below /build/src) it is unpacked to."""

    name: str
    urls: tuple[str, ...]
    sha256: Hash
    size: int
    unpack_to: str
    strip_top: bool

    def as_fetch_source(self) -> Source:
        return Source(self.name, self.urls, self.sha256, self.size)


@dataclass(frozen=True)
class SeedPatch:
    """One of our patches, at `path` relative to the project root, pinned by sha256."""

    path: str
    sha256: Hash


@dataclass(frozen=True)
class SeedManifest:
    """What `seeds/<system>.json` says: the seed's inputs, its contents, and its pin."""

    path: Path
    system: str
    contents: tuple[str, ...]
    sources: tuple[SeedSource, ...]
    patches: tuple[SeedPatch, ...]
    archive_name: str
    archive_sha256: Hash | None
    archive_size: int | None
    tar_sha256: Hash | None  # of the uncompressed tar: tells content from compression
    tree_sha256: Hash | None  # NAR sha256 of the unpacked tree: the seed's store path covers it
    archive_urls: tuple[str, ...]  # where a prebuilt archive may be fetched (optional)
    max_rounds: int
    source_date_epoch: int

    @property
    def root(self) -> Path:
        """The project root: patch paths are relative to it (the manifest lives in seeds/)."""
        return self.path.resolve().parent.parent

    def source(self, unpack_to: str) -> SeedSource:
        for source in self.sources:
            if source.unpack_to == unpack_to:
                return source
        raise BootstrapError(f"{self.path}: no source with unpack_to {unpack_to!r}")


def load_manifest(path: Path | None = None) -> SeedManifest:
    """Read and check a seed manifest; any problem is one BootstrapError line naming the field."""
    path = Path(path) if path else default_manifest()
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise BootstrapError(f"{path}: seed manifest not found") from None
    except (OSError, ValueError, RecursionError) as error:
        raise BootstrapError(f"{path}: cannot read seed manifest: {error}") from None
    reader = _FieldReader(path, document)
    archive = reader.table("archive")
    pin, tar_pin = archive.get("sha256"), archive.get("tar_sha256")
    tree_pin = archive.get("tree_nar_sha256")
    urls = reader.text_list(archive, "urls", "archive.") if "urls" in archive else []
    return SeedManifest(
        path=path,
        system=reader.text(document, "system"),
        contents=tuple(reader.text_list(document, "contents")),
        sources=tuple(reader.source(i, entry) for i, entry in enumerate(reader.list("sources"))),
        patches=tuple(reader.patch(i, entry) for i, entry in enumerate(reader.list("patches"))),
        archive_name=reader.text(archive, "name", "archive."),
        archive_sha256=reader.sha256(pin, "archive.sha256") if pin else None,
        archive_size=archive.get("size"),
        tar_sha256=reader.sha256(tar_pin, "archive.tar_sha256") if tar_pin else None,
        tree_sha256=reader.sha256(tree_pin, "archive.tree_nar_sha256") if tree_pin else None,
        archive_urls=tuple(urls),
        max_rounds=reader.integer(reader.table("build"), "max_rounds", "build."),
        source_date_epoch=reader.integer(reader.table("build"), "source_date_epoch", "build."),
    )


class _FieldReader:
    """Typed access to the manifest's JSON with one-line errors naming the field at fault."""

    def __init__(self, path: Path, document: object) -> None:
        if not isinstance(document, dict):
            raise BootstrapError(f"{path}: expected a JSON object at the top level")
        self.path = path
        self.document = document

    def fail(self, where: str, expected: str) -> BootstrapError:
        return BootstrapError(f"{self.path}: field {where}: expected {expected}")

    def table(self, key: str) -> dict:
        value = self.document.get(key)
        if not isinstance(value, dict):
            raise self.fail(key, "an object")
        return value

    def list(self, key: str) -> list:
        value = self.document.get(key)
        if not isinstance(value, list) or not value:
            raise self.fail(key, "a non-empty list")
        return value

    def text(self, table: dict, key: str, prefix: str = "") -> str:
        value = table.get(key)
        if not isinstance(value, str) or not value:
            raise self.fail(prefix + key, "a non-empty string")
        return value

    def text_list(self, table: dict, key: str, prefix: str = "") -> list[str]:
        value = table.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(prefix + key, "a list of strings")
        return value

    def integer(self, table: dict, key: str, prefix: str = "") -> int:
        value = table.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.fail(prefix + key, "a non-negative integer")
        return value

    def sha256(self, value: object, where: str) -> Hash:
        if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{64}", value):
            raise self.fail(where, "64 lower-case hex digits (sha256)")
        return Hash.parse(value, "sha256")

    def source(self, index: int, entry: object) -> SeedSource:
        where = f"sources[{index}]."
        if not isinstance(entry, dict):
            raise self.fail(f"sources[{index}]", "an object")
        return SeedSource(
            name=self.text(entry, "name", where),
            urls=tuple(self.text_list(entry, "urls", where)),
            sha256=self.sha256(entry.get("sha256"), where + "sha256"),
            size=self.integer(entry, "size", where),
            unpack_to=self.text(entry, "unpack_to", where),
            strip_top=bool(entry.get("strip_top", True)),
        )

    def patch(self, index: int, entry: object) -> SeedPatch:
        where = f"patches[{index}]."
        if not isinstance(entry, dict):
            raise self.fail(f"patches[{index}]", "an object")
        return SeedPatch(
            self.text(entry, "path", where), self.sha256(entry.get("sha256"), where + "sha256")
        )


def pinned_hash(manifest: SeedManifest) -> Hash:
    if manifest.archive_sha256 is None:
        raise BootstrapError(f"{manifest.path}: field archive.sha256 is empty; no seed is pinned")
    return manifest.archive_sha256


def pinned_tree_hash(manifest: SeedManifest) -> Hash:
    """The NAR hash of the unpacked seed tree, which names stage 0's store path."""
    if manifest.tree_sha256 is None:
        raise BootstrapError(
            f"{manifest.path}: field archive.tree_nar_sha256 is empty; expected the NAR sha256 "
            "of the unpacked seed"
        )
    return manifest.tree_sha256
