"""Real recipes for engine tests: a seed made from Debian's static busybox, built for real.

The host's busybox is an explicit input here (the seed of these tests), never something the
sandbox lets builders find on their own.
"""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bootstrap.fetch import Fetcher
from bootstrap.hashing import hash_file
from bootstrap.nar import nar_hash
from bootstrap.recipe import REPO_DIR, Recipes, Seed
from bootstrap.unpack import unpack

BUSYBOX = shutil.which("busybox")
APPLETS = (
    "sh",
    "echo",
    "cat",
    "ls",
    "mkdir",
    "cp",
    "chmod",
    "sleep",
    "date",
    "tar",
    "wc",
    "head",
    "true",
    "false",
    "touch",
    "rm",
    "env",
    "sed",
    "grep",
    "od",
    "find",
)

requires_busybox = pytest.mark.skipif(not BUSYBOX, reason="needs Debian's busybox-static")


def make_seed_archive(dest: Path) -> Path:
    """A deterministic tar.gz holding bin/busybox and applet symlinks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = Path(BUSYBOX).read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode, info.mtime = len(data), 0o755, 1
        tar.addfile(info, io.BytesIO(data))
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname, link.mode, link.mtime = tarfile.SYMTYPE, "busybox", 0o777, 1
            tar.addfile(link)
    dest.write_bytes(gzip.compress(buf.getvalue(), mtime=0))
    return dest


def busybox_seed(tmp: Path) -> tuple[Seed, Path]:
    """A Seed for the test busybox and the archive file behind it (reachable by file:// URL)."""
    archive = tmp / "test-seed.tar.gz"
    if not archive.exists():
        make_seed_archive(archive)
    tree = unpack(archive, Path(tempfile.mkdtemp(dir=tmp)) / "seed")
    seed = Seed(
        name="test-seed",
        archive_hash=hash_file("sha256", archive),
        tree_hash=nar_hash(tree)[0],
        urls=(archive.as_uri(),),
    )
    return seed, archive


def make_recipes(tmp: Path, scripts: dict[str, str], patches: dict[str, str] | None = None):
    """A recipes directory with the real prelude and the given builder scripts (made once)."""
    recipes = Recipes(stages_dir=tmp / "stages", patches_dir=tmp / "patches")
    builders = tmp / "stages" / "builders"
    if builders.exists():
        return recipes
    builders.mkdir(parents=True)
    shutil.copy(REPO_DIR / "stages" / "builders" / "prelude.sh", builders)
    for name, text in scripts.items():
        (builders / name).write_text(text)
    (tmp / "patches").mkdir()
    for name, text in (patches or {}).items():
        (tmp / "patches" / name).write_text(text)
    return recipes


def offline_fetcher(tmp: Path) -> Fetcher:
    return Fetcher(cache_dir=tmp / "cache", progress=False)


def wait_until(ready: Callable[[], object], proc: subprocess.Popen, seconds: float = 60) -> None:
    """Poll until `ready()` holds, failing with the process's output if it exits or time runs
    out first."""
    deadline = time.monotonic() + seconds
    while not ready():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
