"""A seed checked against its pin, and the pinned seed put into the download cache: imported
from a file or URL, fetched from the manifest's URLs, or built here from source (it must
reproduce the pin exactly, or nothing enters the cache)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bootstrap.errors import BootstrapError
from bootstrap.fetch import Fetcher
from bootstrap.hashing import Hash, hash_file
from bootstrap.seed.archive import archive_file_hashes
from bootstrap.seed.host_build import DEFAULT_JOBS, SeedBuild, build_seed
from bootstrap.seed.manifest import SeedManifest, pinned_hash


@dataclass(frozen=True)
class Verification:
    """A rebuilt seed compared with the manifest's pin."""

    build: SeedBuild
    expected: Hash | None

    expected_tar: Hash | None = None

    @property
    def matches(self) -> bool:
        return self.expected is not None and self.build.sha256 == self.expected

    @property
    def content_matches(self) -> bool:
        """The tar inside is the pinned one even if this host's zlib compressed it otherwise."""
        return self.expected_tar is not None and self.build.tar_sha256 == self.expected_tar


def verify_seed(
    manifest: SeedManifest, out: Path, *, cc: str = "cc", jobs: int = DEFAULT_JOBS
) -> Verification:
    """Rebuild the seed into `out` and compare its hash with the pin."""
    build = build_seed(manifest, out, cc=cc, jobs=jobs)
    return Verification(build, manifest.archive_sha256, manifest.tar_sha256)


def pinned_archive_files(manifest: SeedManifest, fetcher: Fetcher | None = None) -> dict | None:
    """File hashes of the pinned archive if it is in the download cache (imported), else None."""
    cached = (fetcher or Fetcher()).cache_path(pinned_hash(manifest))
    return archive_file_hashes(cached) if cached.is_file() else None


def import_seed(manifest: SeedManifest, location: str, fetcher: Fetcher | None = None) -> Path:
    """Put the seed archive at `location` (a file or URL) into the download cache by hash.

    The bytes must hash to the manifest's pin; returns the cache file.
    """
    expected = pinned_hash(manifest)
    fetcher = fetcher or Fetcher()
    if "://" not in location:
        path = Path(location)
        if not path.is_file():
            raise BootstrapError(f"{location}: no such seed archive file")
        actual = hash_file("sha256", path)
        if actual != expected:
            raise BootstrapError(
                f"{location}: sha256 {actual.hex} does not match the seed pin {expected.hex} "
                f"(archive.sha256 in {manifest.path}); refusing to import it"
            )
        location = path.resolve().as_uri()
    return fetcher.download([location], expected, manifest.archive_name, manifest.archive_size)


def ensure_seed(
    manifest: SeedManifest,
    fetcher: Fetcher | None = None,
    *,
    cc: str = "cc",
    jobs: int = DEFAULT_JOBS,
    on_line: Callable[[str], None] | None = None,
) -> Path:
    """The pinned seed archive in the download cache: cached, else fetched, else built here.

    Fetching tries `archive.urls` of the manifest; building uses the host compiler `cc` and
    must reproduce the pin exactly, or nothing enters the cache.
    """
    fetcher = fetcher or Fetcher()
    expected = pinned_hash(manifest)
    cached = fetcher.cached(expected, manifest.archive_name)
    if cached is not None:
        return cached
    if on_line:
        on_line(f"not cached; fetching it or building it with {cc}")
    if manifest.archive_urls:
        try:
            urls = list(manifest.archive_urls)
            return fetcher.download(urls, expected, manifest.archive_name, manifest.archive_size)
        except BootstrapError as error:
            if on_line:
                on_line(f"seed download failed ({error}); building it from source")
    with tempfile.TemporaryDirectory(prefix="bootstrap-seed-") as scratch:
        out = Path(scratch) / manifest.archive_name
        build = build_seed(manifest, out, cc=cc, jobs=jobs, fetcher=fetcher, on_line=on_line)
        if build.sha256 != expected:
            raise BootstrapError(
                f"the seed built here has sha256 {build.sha256.hex}, not the pin {expected.hex} "
                f"(archive.sha256 in {manifest.path}); run `bootstrap seed verify` for details"
            )
        return import_seed(manifest, str(out), fetcher)
