"""Building the seed from its pinned sources with whatever C compiler the host has:

    host cc -> tcc0 -> (musl, libtcc1, tcc1) -> (musl, libtcc1, tcc2) -> ... until a fixpoint

Round k uses tcc(k-1) to build musl, libtcc1.a and a static tcc(k); the chain stops when round
k is byte-identical to round k-1, and fails if that does not happen within `max_rounds`. The
seed tcc then builds GNU make, and with it busybox. Everything runs in a bubblewrap sandbox
with the host's /usr read-only and the build tree at /build, so no host path or time leaks in;
the archive is written deterministically (`bootstrap.seed.archive`), so its hash is the same on
every host.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bootstrap.drv_options import reproducible_env
from bootstrap.errors import BootstrapError
from bootstrap.fetch import Fetcher, Source
from bootstrap.fstree import remove_tree
from bootstrap.hashing import Hash, hash_file
from bootstrap.sandbox import Bind, SandboxSpec, run_in_sandbox
from bootstrap.seed.archive import ARCHIVE_TOP, tree_hash, write_archive
from bootstrap.seed.manifest import SeedManifest, SeedPatch
from bootstrap.seed.uapi import LINUX_MEMBERS, install_uapi_headers
from bootstrap.unpack import unpack

BUILDER_SCRIPT = Path(__file__).resolve().parent / "build.sh"
HOST_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64")
HOST_TOOLS = ("awk",)  # used by busybox's build if present; often an /etc/alternatives link
DEFAULT_JOBS = 2
LINUX_SOURCE = "linux"


@dataclass(frozen=True)
class Step:
    """One measured step of a seed build."""

    name: str
    seconds: float


@dataclass(frozen=True)
class SeedBuild:
    """The result of `build_seed`: the archive, its hash and size, and how the build went."""

    archive: Path
    sha256: Hash
    size: int
    tar_sha256: Hash
    tree_sha256: Hash  # NAR sha256 of the unpacked tree (what the store holds)
    compiler: str
    fixpoint_round: int
    steps: tuple[Step, ...]
    files: dict[str, str] = field(repr=False)  # path inside the archive -> sha256 hex
    build_dir: Path | None = None  # the build tree, when asked to keep it

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.steps)


@dataclass
class _Timer:
    steps: list[Step] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        yield
        self.steps.append(Step(name, time.monotonic() - start))


def build_seed(
    manifest: SeedManifest,
    out: Path,
    *,
    cc: str = "cc",
    jobs: int = DEFAULT_JOBS,
    fetcher: Fetcher | None = None,
    keep_build_dir: bool = False,
    on_line: Callable[[str], None] | None = None,
) -> SeedBuild:
    """Build the seed archive from source with host compiler `cc`; write it to `out`.

    The build log is kept next to `out` as `<out>.log`. Raises BootstrapError if a source or
    patch does not match its pin, the sandbox fails, or tcc reaches no fixpoint.
    """
    out = Path(out).resolve()
    compiler = resolve_host_compiler(cc)
    timer = _Timer()
    with timer.step("fetch sources"):
        cached = (fetcher or Fetcher()).fetch_many(s.as_fetch_source() for s in manifest.sources)
    build_dir = Path(tempfile.mkdtemp(prefix="bootstrap-seed-"))
    try:
        _prepare_build_dir(manifest, build_dir, cached, timer)
        round_reached = _run_builder(manifest, build_dir, compiler, jobs, out, timer, on_line)
        with timer.step("write archive"):
            tree = build_dir / "out" / ARCHIVE_TOP
            written = write_archive(tree, out, manifest.source_date_epoch)
    except BootstrapError as error:
        if keep_build_dir:
            raise BootstrapError(f"{error} (build tree kept at {build_dir})") from None
        raise
    finally:
        if not keep_build_dir:
            remove_tree(build_dir)
    return SeedBuild(
        archive=out,
        sha256=hash_file("sha256", out),
        size=out.stat().st_size,
        tar_sha256=written.tar_sha256,
        tree_sha256=tree_hash(out),
        compiler=compiler,
        fixpoint_round=round_reached,
        steps=tuple(timer.steps),
        files=written.files,
        build_dir=build_dir if keep_build_dir else None,
    )


def resolve_host_compiler(cc: str) -> str:
    """The real path of the host C compiler `cc`; it must live under /usr (bound read-only)."""
    found = shutil.which(cc)
    if not found:
        raise BootstrapError(f"host C compiler {cc!r} not found on PATH; pass --cc gcc or clang")
    real = os.path.realpath(found)
    if not real.startswith("/usr/"):
        raise BootstrapError(
            f"host C compiler {cc!r} resolves to {real}, outside /usr; the seed build sandbox "
            "only sees the host's /usr"
        )
    return real


def _prepare_build_dir(
    manifest: SeedManifest, build_dir: Path, cached: dict[Source, Path], timer: _Timer
) -> None:
    """Lay out /build: src/<name> (pristine), linux-headers/, patches/, hostbin/, build.sh."""
    archives = {source.unpack_to: cached[source.as_fetch_source()] for source in manifest.sources}
    with timer.step("unpack sources"):
        for source in manifest.sources:
            if source.unpack_to != LINUX_SOURCE:
                dest = build_dir / "src" / source.unpack_to
                unpack(archives[source.unpack_to], dest, strip_top=source.strip_top)
    with timer.step("linux uapi headers"):
        _install_linux_headers(archives[LINUX_SOURCE], build_dir)
    patches = build_dir / "patches"
    patches.mkdir()
    for patch in manifest.patches:
        _copy_pinned_patch(manifest, patch, patches)
    shutil.copyfile(BUILDER_SCRIPT, build_dir / "build.sh")
    hostbin = build_dir / "hostbin"
    hostbin.mkdir()
    for tool in HOST_TOOLS:
        if real := _host_tool(tool):
            (hostbin / tool).symlink_to(real)


def _host_tool(name: str) -> str | None:
    """The real path of a host tool, if it lives under /usr. Links through /etc/alternatives
    would dangle in the sandbox, which has its own /etc."""
    found = shutil.which(name, path="/usr/bin:/bin")
    real = os.path.realpath(found) if found else ""
    return real if real.startswith("/usr/") else None


def _copy_pinned_patch(manifest: SeedManifest, patch: SeedPatch, dest_dir: Path) -> None:
    source = manifest.root / patch.path
    if not source.is_file():
        raise BootstrapError(f"{manifest.path}: patch {patch.path} not found at {source}")
    actual = hash_file("sha256", source)
    if actual != patch.sha256:
        raise BootstrapError(
            f"{source}: sha256 {actual.hex} does not match the pin {patch.sha256.hex} in "
            f"{manifest.path}"
        )
    shutil.copyfile(source, dest_dir / Path(patch.path).name)


def _install_linux_headers(archive: Path, build_dir: Path) -> None:
    """Extract only the UAPI inputs from the Linux tarball, then install the headers."""
    linux = build_dir / "linux-src"
    linux.mkdir()
    members = [f"*/{member}" for member in LINUX_MEMBERS]
    command = ["tar", "-xf", str(archive), "-C", str(linux), "--strip-components=1"]
    command += ["--no-same-owner", "--no-wildcards-match-slash", "--wildcards", *members]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        message = " ".join(result.stderr.split())[:300]
        raise BootstrapError(f"{archive}: cannot extract the Linux UAPI sources: {message}")
    install_uapi_headers(linux, build_dir / "linux-headers" / "include")
    remove_tree(linux)


_STEP_LINE = re.compile(r"STEP (\d+\.\d+) (.+)")
_FIXPOINT_LINE = re.compile(r"FIXPOINT round (\d+)")


def _run_builder(
    manifest: SeedManifest,
    build_dir: Path,
    compiler: str,
    jobs: int,
    out: Path,
    timer: _Timer,
    on_line: Callable[[str], None] | None,
) -> int:
    """Run build.sh in the sandbox; return the round at which tcc reached its fixpoint."""
    seen: list[str] = []

    def watch(line: str) -> None:
        seen.append(line)
        if match := _STEP_LINE.fullmatch(line.strip()):
            timer.steps.append(Step(match.group(2), float(match.group(1))))
        if on_line:
            on_line(line)

    spec = SandboxSpec(
        command=["/bin/sh", "/build/build.sh"],
        build_dir=build_dir,
        env={
            "PATH": "/build/hostbin:/usr/bin:/bin",
            "HOST_CC": compiler,
            "MAX_ROUNDS": str(manifest.max_rounds),
            "JOBS": str(jobs),
            **reproducible_env(manifest.source_date_epoch),
        },
        inputs=[Bind(Path(d), d) for d in HOST_DIRS if os.path.lexists(d)],
        cores=jobs,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = out.with_name(out.name + ".log")
    result = run_in_sandbox(spec, log_path, watch)
    if not result.succeeded:
        last = next((line.strip() for line in reversed(seen) if line.strip()), "no output")
        if any(line.startswith("NO FIXPOINT") for line in seen):
            last = next(line.strip() for line in seen if line.startswith("NO FIXPOINT"))
        raise BootstrapError(
            f"seed build with {compiler} failed (exit {result.exit_code}): {last} "
            f"(full log: {log_path})"
        )
    rounds = [int(m.group(1)) for line in seen if (m := _FIXPOINT_LINE.search(line))]
    return rounds[-1] if rounds else 0
