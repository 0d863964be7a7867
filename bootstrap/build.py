"""Realising one derivation: run its builder in a sandbox, check and register its outputs.

The builder sees the closure of its inputs read-only at their logical paths and writes its
outputs into a staging area on the store's file system. Outputs are then checked (all present,
within the size limit; fixed outputs hash-checked), canonicalised, scanned for references to
the input closure and to each other, and registered. A failure registers nothing and removes
every scratch file.

Every scratch directory (the build directory's parent, the output staging directory, a kept
build directory) is private (0700) and never seen by the builder, so nothing the builder makes
is reachable by another user, whatever modes it sets, even after this process is killed; and
outputs are canonicalised (no setuid/setgid bits) before they leave it.
"""

from __future__ import annotations

import json
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bootstrap.buildgraph import outputs_valid
from bootstrap.builtins import BUILTINS, run_builtin
from bootstrap.derivation import Derivation
from bootstrap.drv_options import EXPORT_REFERENCES_GRAPH, DrvOptions
from bootstrap.errors import BootstrapError
from bootstrap.fetch import Fetcher
from bootstrap.fstree import remove_tree
from bootstrap.sandbox import (
    DEFAULT_TICK_SECONDS,
    MAX_OUTPUT,
    Bind,
    BuildLimits,
    SandboxSpec,
    run_in_sandbox,
)
from bootstrap.store import Store
from bootstrap.store.canonical import canonicalise, make_private_dir, replace_file, tree_size
from bootstrap.store.db import BuildTime
from bootstrap.store.store import check_fixed_hash, scan_tree
from bootstrap.storepath import split_store_path

if TYPE_CHECKING:  # the ELF code (pyelftools, lief) loads when an output is fixed up
    from bootstrap.elf.fixup import FixupPolicy

LOG_TAIL_LINES = 25
# the builder's /build: this directory inside a private scratch directory it never sees
BUILD_SUBDIR = "build"
# beside it, for a resumable build: the time of its interrupted attempts (`AttemptTimes`)
ATTEMPTS_FILE = "attempts.json"
DEFAULT_MAX_SILENT_SECONDS = 3600.0


class BuildError(BootstrapError):
    """A builder failed; the message names the derivation, the reason and the log file."""


@dataclass(frozen=True)
class BuildOptions:
    """How builds run. `limits` default to the environment's (`BuildLimits.from_env`)."""

    cores: int = 1
    sandboxed: bool = True
    max_seconds: float | None = None
    max_silent_seconds: float | None = DEFAULT_MAX_SILENT_SECONDS
    limits: BuildLimits = field(default_factory=BuildLimits.from_env)
    fetcher: Fetcher = field(default_factory=Fetcher)
    # how often a resumable build records its time so far (`AttemptTimes`)
    tick_seconds: float = DEFAULT_TICK_SECONDS
    # set when the run is interrupted: a build still going registers nothing
    cancelled: threading.Event = field(default_factory=threading.Event, compare=False)


@dataclass(frozen=True)
class BuildOutcome:
    """`seconds` and `cpu_seconds`: the build's wall time and the CPU time (user+system) of the
    builder's whole process tree; for a builtin (a fetch), of its own thread. For a resumed
    build, of this attempt only (the store records all of its attempts)."""

    drv_path: str
    outputs: dict[str, str]
    built: bool
    hermetic: bool
    seconds: float = 0.0
    cpu_seconds: float = 0.0


def log_path(store: Store, drv_path: str) -> Path:
    return store.log_dir() / f"{drv_path.rsplit('/', 1)[1]}.log"


def has_kept_build(store: Store, drv_path: str, drv: Derivation) -> bool:
    """Whether an interrupted build of a resumable `drv` left work its next build continues."""
    return _resumable(drv) and store.partial_build_dir(drv_path).is_dir()


def _resumable(drv: Derivation) -> bool:
    return DrvOptions.resumable_in(drv.env)


def options_of(drv: Derivation) -> DrvOptions:
    """What `drv` asks of the builder (a malformed request fails its build)."""
    try:
        return DrvOptions.from_env(drv.env, drv.name)
    except BootstrapError as err:
        raise BuildError(str(err)) from None


def realise(
    store: Store,
    drv_path: str,
    drv: Derivation,
    options: BuildOptions,
    on_line: Callable[[str], None] | None = None,
) -> BuildOutcome:
    """Make every output of `drv` valid, building it unless another process already did."""
    with claimed_outputs(store, drv) as claimed:
        if not claimed:
            paths = {name: out.path for name, out in drv.outputs.items()}
            return BuildOutcome(drv_path, paths, built=False, hermetic=True)
        return _build(store, drv_path, drv, options, on_line)


@contextmanager
def claimed_outputs(store: Store, drv: Derivation) -> Iterator[bool]:
    """Hold the locks of every output of `drv`; yield False if another process already made
    them all valid, else True, with unregistered leftovers of a crash at their paths removed."""
    paths = sorted(out.path for out in drv.outputs.values())
    with ExitStack() as locks:
        for path in paths:
            locks.enter_context(store.lock(path))
        if outputs_valid(store, drv):
            yield False
            return
        for path in paths:
            remove_tree(store.real_path(path))
        yield True


def _build(store, drv_path, drv, options, on_line) -> BuildOutcome:
    inputs = store.closure(input_paths(store, drv))
    log_file = log_path(store, drv_path)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    earlier = None
    with _build_dir(store, drv_path, drv, options) as build_dir, store.temp_dir("out") as staging:
        make_private_dir(staging)
        staged = {name: staging / name for name in drv.outputs}
        if drv.builder in BUILTINS:
            hermetic = True
            seconds, cpu = _run_builtin(drv, staged["out"], options, log_file)
        else:
            resumed = any(build_dir.iterdir())  # the kept work of an interrupted build
            _export_references_graphs(store, drv, inputs, build_dir)
            earlier = earlier_attempts(store, drv_path) if _resumable(drv) else None
            hermetic, seconds, cpu = _run_builder(
                store, drv, inputs, staged, build_dir, options, log_file, on_line, resumed, earlier
            )
        if options.cancelled.is_set():
            raise BuildError(f"{drv.name}: the run was interrupted; nothing registered")
        _register(store, drv_path, drv, staged, inputs, options, log_file)
    outputs = {n: o.path for n, o in drv.outputs.items()}
    cores = 1 if drv.builder in BUILTINS else options.cores
    # the store records the build's whole cost; the outcome, this run's share of it
    total = (earlier.wall + seconds, earlier.cpu + cpu) if earlier is not None else (seconds, cpu)
    store.db.set_build_time(outputs.values(), BuildTime(*total, cores, int(time.time())))
    return BuildOutcome(drv_path, outputs, True, hermetic, seconds, cpu)


@contextmanager
def _build_dir(
    store: Store, drv_path: str, drv: Derivation, options: BuildOptions
) -> Iterator[Path]:
    """The directory the builder sees as /build: `build` inside a private scratch directory.

    The builder can chmod /build itself, so only the scratch directory around it, which the
    builder never sees, keeps other users out. Fresh for each build; for a resumable
    derivation, the one its interrupted build left, if any. That one outlives an interruption
    (and a crash of this process), so the next attempt continues the work; a failure or a
    success removes it."""
    if not _resumable(drv):
        with store.temp_dir("build") as scratch:
            yield _private_build_dir(scratch)
        return
    kept = store.partial_build_dir(drv_path)
    _adopt_old_layout(kept)
    try:
        yield _private_build_dir(kept)
    except BaseException:
        if not options.cancelled.is_set():
            remove_tree(kept)
        raise
    remove_tree(kept)


def _private_build_dir(scratch: Path) -> Path:
    make_private_dir(scratch)
    build_dir = scratch / BUILD_SUBDIR
    make_private_dir(build_dir)
    return build_dir


def _adopt_old_layout(kept: Path) -> None:
    """Move a build directory kept by an earlier version (the build directory itself, with the
    builder's files at its top) to where this version keeps it, so its work is not lost."""
    ours = {BUILD_SUBDIR, ATTEMPTS_FILE, f"{ATTEMPTS_FILE}.new"}
    if not os.path.isdir(kept) or os.path.islink(kept) or set(os.listdir(kept)) <= ours:
        return
    moving = kept.with_name(f"{kept.name}.adopting")
    remove_tree(moving)
    make_private_dir(moving)
    os.rename(kept, moving / BUILD_SUBDIR)
    os.rename(moving, kept)


@dataclass(frozen=True)
class AttemptTimes:
    """The wall and CPU seconds of the earlier, interrupted attempts at a resumable build,
    kept in `file` beside its build directory (out of the builder's reach). A running attempt
    writes its time so far into it every minute (`record_with`), so a build whose process was
    killed loses at most that minute of its record, and the build's recorded time is the sum of
    its attempts, whatever the sessions between them."""

    file: Path
    wall: float = 0.0
    cpu: float = 0.0
    attempts: int = 0

    @classmethod
    def read(cls, file: Path) -> AttemptTimes:
        """The record in `file`; none (zeros) where it is missing or unreadable."""
        try:
            data = json.loads(file.read_text())
            return cls(file, float(data["wall"]), float(data["cpu"]), int(data["attempts"]))
        except (OSError, ValueError, KeyError, TypeError):
            return cls(file)

    def record_with(self, wall: float, cpu: float) -> None:
        """Write the earlier attempts' time plus the running one's so far."""
        data = {"wall": self.wall + wall, "cpu": self.cpu + cpu, "attempts": self.attempts + 1}
        staged = self.file.with_name(f"{self.file.name}.new")
        staged.write_text(json.dumps(data) + "\n")
        os.replace(staged, self.file)  # a kill leaves the old record or the new, never half

    def record_ended(self, wall: float, cpu: float) -> None:
        """Write the time of the attempt that just ended: its whole wall time, and the larger
        of the CPU time it was reaped with and the last record's (processes killed with the
        sandbox are never reaped by it, so their time is only in the records made while they
        ran)."""
        last = AttemptTimes.read(self.file)
        recorded = last.cpu - self.cpu if last.attempts > self.attempts else 0.0
        self.record_with(wall, max(cpu, recorded))


def earlier_attempts(store: Store, drv_path: str) -> AttemptTimes:
    """What the kept build directory of `drv_path` records of its interrupted attempts."""
    return AttemptTimes.read(store.partial_build_dir(drv_path) / ATTEMPTS_FILE)


def input_paths(store: Store, drv: Derivation) -> list[str]:
    """The paths a build of `drv` sees directly: its sources and its inputs' outputs."""
    paths = list(drv.input_srcs)
    for input_drv, names in drv.input_drvs.items():
        recorded = store.db.drv_outputs(input_drv)
        for name in names:
            if name not in recorded or not store.is_valid(recorded[name]):
                raise BuildError(f"{drv.name}: input {input_drv}!{name} has not been built")
            paths.append(recorded[name])
    return paths


def _export_references_graphs(
    store: Store, drv: Derivation, inputs: list[str], build_dir: Path
) -> None:
    for file, path in options_of(drv).closure_files:
        root = store.to_store_path(path)
        if root not in inputs:
            raise BuildError(f"{drv.name}: {EXPORT_REFERENCES_GRAPH}: {path} is not an input")
        infos = [store.query_info(p) for p in store.closure([root])]
        closure = [
            {
                "path": info.path,
                "narHash": info.nar_hash.sri,
                "narSize": info.nar_size,
                "references": list(info.references),
            }
            for info in infos
        ]
        replace_file(build_dir, file, (json.dumps(closure, indent=1) + "\n").encode())


def _run_builtin(
    drv: Derivation, out: Path, options: BuildOptions, log_file: Path
) -> tuple[float, float]:
    """Run a builtin in this thread; return its wall and CPU seconds (this thread's)."""
    start, cpu_start = time.monotonic(), _thread_cpu_seconds()
    try:
        run_builtin(drv, out, options.fetcher)
    except BootstrapError as err:
        log_file.write_text(f"{err}\n")
        raise
    log_file.write_text(f"{drv.builder}: {drv.env.get('urls', '')}\n")
    return time.monotonic() - start, _thread_cpu_seconds() - cpu_start


def _thread_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


def _run_builder(
    store, drv, inputs, staged, build_dir, options, log_file, on_line, resumed, earlier
):
    spec = SandboxSpec(
        command=[drv.builder, *drv.args],
        build_dir=build_dir,
        env=drv.env,
        inputs=[*(Bind(store.real_path(p), p) for p in inputs), *_bin_sh(store, drv)],
        outputs=[Bind(staged[name], out.path) for name, out in drv.outputs.items()],
        network=drv.is_fixed_output,
        cores=options.cores,
        store_dir=store.store_dir,
        max_seconds=options.max_seconds,
        max_silent_seconds=options.max_silent_seconds,
        sandboxed=options.sandboxed,
        append_log=resumed,
        limits=options.limits,
        tick_seconds=options.tick_seconds,
    )
    on_tick = earlier.record_with if earlier is not None else None
    result = run_in_sandbox(spec, log_file, on_line, on_tick)
    if not result.succeeded:
        if earlier is not None:  # the whole attempt, for an interrupted run's next one
            earlier.record_ended(result.duration, result.cpu_seconds)
        reason = (
            f"timed out ({result.timed_out} limit)"
            if result.timed_out
            else f"builder exited with code {result.exit_code}"
        )
        raise BuildError(f"{drv.name}: {reason}; log: {log_file}\n{tail(log_file)}")
    return result.hermetic, result.duration, result.cpu_seconds


def _bin_sh(store: Store, drv: Derivation) -> list[Bind]:
    """`/bin/sh` for a builder that is itself a store path's `bin/sh`: the same shell.

    Shebangs and libc's `system()`/`popen()` name `/bin/sh`; giving them the builder's own
    shell (an input already, so covered by the output hash) keeps the build hermetic.
    """
    if not drv.builder.endswith("/bin/sh") or not drv.builder.startswith(store.store_dir + "/"):
        return []
    owner = store.to_store_path(drv.builder)
    physical = Path(store.real_path(owner), os.path.relpath(drv.builder, owner)).resolve()
    if not physical.is_relative_to(store.physical_dir.resolve()) or not physical.is_file():
        raise BuildError(f"{drv.name}: builder {drv.builder} is not a file in the store")
    return [Bind(physical, "/bin/sh")]


def tail(log_file: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a build log, indented, for error messages."""
    text = log_file.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(f"  | {line}" for line in text)


def _register(
    store: Store,
    drv_path: str,
    drv: Derivation,
    staged: dict[str, Path],
    inputs: list[str],
    options: BuildOptions,
    log_file: Path,
) -> None:
    missing = [name for name, path in staged.items() if not os.path.lexists(path)]
    if missing:
        raise BuildError(f"{drv.name}: builder did not create output(s) {', '.join(missing)}")
    _check_size(drv, staged, options.limits.max_output_bytes)
    if drv.is_fixed_output:
        _check_fixed(drv, staged["out"])
    else:
        for name, path in staged.items():
            _fixup(store, drv, name, path, log_file)
    candidates = {
        split_store_path(path, store.store_dir)[0]: path
        for path in [*inputs, *(out.path for out in drv.outputs.values())]
    }
    references: dict[str, list[str]] = {}
    for name, path in staged.items():
        canonicalise(path)
        found = scan_tree(path, candidates)[2]
        references[name] = sorted(candidates[part] for part in found)
    for name in _output_order(drv, references):
        out = drv.outputs[name]
        ca = f"fixed:{'r:' if out.recursive else ''}{out.fixed_hash()}" if out.is_fixed else None
        store.register_output(
            staged[name], out.path, references[name], deriver=drv_path, ca=ca, scan=False
        )
        store.db.set_drv_output(drv_path, name, out.path)


def fixup_policy(store: Store, drv: Derivation) -> FixupPolicy:
    """How outputs of `drv` must load: as its options ask (`DrvOptions`: the interpreter and
    `#!` programs, where `$out` and the like name its own outputs); `#!` lines for sh point
    at the builder's `$SHELL`."""
    from bootstrap.elf.fixup import FixupPolicy
    from bootstrap.elf.paths import PathMap

    options = options_of(drv).expand({name: out.path for name, out in drv.outputs.items()})
    shebangs = dict(options.shebangs)
    if "SHELL" in drv.env:
        shebangs.setdefault("sh", drv.env["SHELL"])
    return FixupPolicy(
        store_dir=store.store_dir,
        interpreter=options.interpreter or None,
        shebangs=shebangs,
        path_map=PathMap.of([(store.store_dir, store.physical_dir)]),
    )


def _fixup(store: Store, drv: Derivation, name: str, path: Path, log_file: Path) -> None:
    """Repair interpreters, RUNPATHs and `#!` lines; fail the build on what cannot be fixed."""
    from bootstrap.elf.fixup import fixup_output

    report = fixup_output(path, drv.outputs[name].path, fixup_policy(store, drv))
    with open(log_file, "a") as log:
        for change in report.changes:
            log.write(f"fixup: {change.file}: {change.what} {change.old} -> {change.new}\n")
        for problem in report.problems:
            log.write(f"fixup problem: {problem.file}: {problem.message}\n")
    if report.problems:
        first = report.problems[0]
        raise BuildError(
            f"{drv.name}: {len(report.problems)} file(s) cannot be made to load from the store, "
            f"first {first.file}: {first.message}; log: {log_file}"
        )


def _check_size(drv: Derivation, staged: dict[str, Path], limit: int) -> None:
    size = sum(tree_size(path) for path in staged.values())
    if size > limit:
        raise BuildError(
            f"{drv.name}: its outputs hold {size} bytes; at most {limit} are allowed "
            f"(${MAX_OUTPUT.variable} sets the limit)"
        )


def _check_fixed(drv: Derivation, path: Path) -> None:
    out = drv.outputs["out"]
    try:
        check_fixed_hash(path, out.fixed_hash(), out.recursive, drv.name)
    except BootstrapError as err:
        raise BuildError(str(err)) from None


def _output_order(drv: Derivation, references: dict[str, list[str]]) -> list[str]:
    """Outputs ordered so each is registered after the sibling outputs it references."""
    by_path = {out.path: name for name, out in drv.outputs.items()}
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise BuildError(f"{drv.name}: outputs reference each other in a cycle at {name!r}")
        visiting.add(name)
        for ref in references[name]:
            if ref in by_path and by_path[ref] != name:
                visit(by_path[ref])
        order.append(name)

    for name in drv.outputs:
        visit(name)
    return order
