"""The stage-0 seed: a small static toolchain (tcc, musl, busybox, GNU make) pinned by hash.

The seed is described by a manifest (`seeds/<system>.json`): the sources and patches it is
built from, each pinned by sha256, and the sha256 of the seed archive itself (the pin).
`build_seed` rebuilds the archive from those sources with whatever C compiler the host has:

    host cc -> tcc0 -> (musl, libtcc1, tcc1) -> (musl, libtcc1, tcc2) -> ... until a fixpoint

Round k uses tcc(k-1) to build musl, libtcc1.a and a static tcc(k); the chain stops when round
k is byte-identical to round k-1, and fails if that does not happen within `max_rounds`. The
seed tcc then builds GNU make, and with it busybox. Everything runs in a bubblewrap sandbox
with the host's /usr read-only and the build tree at /build, so no host path or time leaks in;
the archive is written deterministically (sorted entries, owner 0, fixed mtime and modes, gzip
without a name or time), so its hash is the same on every host.

`run_ddc` is Diverse Double-Compiling: root the chain with two unrelated compilers and show
that both reach the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bootstrap.errors import BootstrapError
from bootstrap.fetch import Fetcher, Source
from bootstrap.hashing import Hash, hash_file
from bootstrap.nar import nar_hash
from bootstrap.sandbox import Bind, SandboxSpec, reproducible_env, run_in_sandbox
from bootstrap.seed_build.uapi import LINUX_MEMBERS, install_uapi_headers
from bootstrap.unpack import unpack

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SYSTEM = "x86_64-linux"
BUILDER_SCRIPT = Path(__file__).resolve().parent / "seed_build" / "build.sh"
ARCHIVE_TOP = "seed"
HOST_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64")
HOST_TOOLS = ("awk",)  # used by busybox's build if present; often an /etc/alternatives link
DEFAULT_JOBS = 2
LINUX_SOURCE = "linux"


def default_manifest(system: str = DEFAULT_SYSTEM) -> Path:
    return PROJECT_ROOT / "seeds" / f"{system}.json"


# --- manifest ---------------------------------------------------------------------------------


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


# --- build ------------------------------------------------------------------------------------


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
            _remove_tree(build_dir)
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


def tree_hash(archive: Path) -> Hash:
    """The NAR sha256 of the archive unpacked without its top directory, as the store holds it."""
    with tempfile.TemporaryDirectory(prefix="bootstrap-seed-tree-") as scratch:
        return nar_hash(unpack(archive, Path(scratch) / "tree", strip_top=True))[0]


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
    _remove_tree(linux)


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


def _remove_tree(path: Path) -> None:
    def make_writable(function: Callable, name: str, _error: object) -> None:
        os.chmod(os.path.dirname(name), 0o755)
        function(name)

    shutil.rmtree(path, onerror=make_writable)


# --- deterministic archive --------------------------------------------------------------------


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
    return WrittenArchive(files, Hash("sha256", hashlib.sha256(buffer.getvalue()).digest()))


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


# --- verify and import ------------------------------------------------------------------------


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


# --- diverse double-compiling -----------------------------------------------------------------


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


def render_file_table(columns: dict[str, dict[str, str]]) -> str:
    """A table of every file's sha256 under each named column; differing rows are marked."""
    names = sorted(set().union(*(files.keys() for files in columns.values())))
    labels = list(columns)
    widths = [max(16, len(label)) for label in labels]
    lines = [_table_row("  ", labels, widths, "file")]
    for name in names:
        digests = [columns[label].get(name, "-") for label in labels]
        mark = "  " if len(set(digests)) == 1 else "!="
        lines.append(_table_row(mark, [digest[:16] for digest in digests], widths, name))
    return "\n".join(lines)


def _table_row(mark: str, cells: list[str], widths: list[int], name: str) -> str:
    padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
    return "  ".join([mark, *padded, name])


def render_ddc(report: DdcReport) -> str:
    """A reviewer's summary: each compiler's archive hash, the verdict, and the file table."""
    lines = ["Diverse double-compiling of the stage-0 seed", ""]
    for name, build in zip(report.compilers, report.builds, strict=True):
        lines.append(
            f"  rooted in {name} ({build.compiler}): sha256 {build.sha256.hex}, {build.size} "
            f"bytes, tcc fixpoint at round {build.fixpoint_round}, {build.seconds:.0f} s"
        )
    verdict = "IDENTICAL" if report.identical else "DIFFERENT"
    lines += ["", f"  archives: {verdict}"]
    if report.pin is not None:
        lines.append(f"  pin {report.pin.hex}: {'matches' if report.matches_pin else 'DIFFERS'}")
    columns = {
        f"{name} sha256": build.files
        for name, build in zip(report.compilers, report.builds, strict=True)
    }
    header = "  file sha256 (first 16 hex digits); rows marked != differ"
    return "\n".join([*lines, "", header, render_file_table(columns)])


def render_steps(build: SeedBuild) -> str:
    rows = [f"  {step.seconds:7.2f} s  {step.name}" for step in build.steps]
    return "\n".join([*rows, f"  {build.seconds:7.2f} s  total"])
