"""Diverse Double-Compiling of the seed: root its build in two unrelated host compilers and
show that both reach the same bytes (and the pin)."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bootstrap.errors import BootstrapError
from bootstrap.hashing import Hash
from bootstrap.seed.host_build import DEFAULT_JOBS, SeedBuild, build_seed
from bootstrap.seed.manifest import SeedManifest


@dataclass(frozen=True)
class DdcReport:
    """Seeds rooted in different host compilers, and whether they are byte-identical."""

    compilers: tuple[str, ...]  # as asked for (e.g. "gcc", "clang"), one per build
    builds: tuple[SeedBuild, ...]
    pin: Hash | None

    @property
    def identical(self) -> bool:
        return len({build.sha256 for build in self.builds}) == 1

    @property
    def matches_pin(self) -> bool:
        return self.identical and self.pin is not None and self.builds[0].sha256 == self.pin


def run_ddc(
    manifest: SeedManifest,
    compilers: tuple[str, ...] = ("gcc", "clang"),
    *,
    work_dir: Path | None = None,
    jobs: int = DEFAULT_JOBS,
) -> DdcReport:
    """Build the seed once per host compiler (in `work_dir`, default a temp dir) and compare."""
    if len(compilers) < 2:
        raise BootstrapError("diverse double-compiling needs at least two host compilers")
    with tempfile.TemporaryDirectory(prefix="bootstrap-ddc-") as scratch:
        directory = Path(work_dir or scratch)
        builds = tuple(
            build_seed(manifest, directory / f"seed-{_slug(cc)}.tar.gz", cc=cc, jobs=jobs)
            for cc in compilers
        )
    return DdcReport(compilers, builds, manifest.archive_sha256)


def _slug(cc: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", Path(cc).name)
