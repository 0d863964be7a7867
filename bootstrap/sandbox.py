"""Run one builder in a fresh hermetic sandbox (bubblewrap), or explicitly without one.

The sandbox sees only what the caller binds: each input store path read-only at its logical
path, a writable build directory at /build, the logical store directory writable (backed by a
private staging directory, so a builder creates its outputs exactly as in Nix: `$out` does not
exist at start and may become a file or a directory), minimal /dev and /proc, a synthetic /etc,
no network unless asked for (fixed-output derivations), a fixed uid/gid/hostname and a clean
environment, and limits on its processes and its log (`BuildLimits`). When the builder is gone,
every setuid/setgid bit it set is cleared. See docs/sandbox.md for the design and its reasons.
"""

from __future__ import annotations

import ctypes
import functools
import json
import math
import os
import resource
import secrets
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import BinaryIO, NamedTuple

from bootstrap.errors import BootstrapError
from bootstrap.fstree import remove_tree
from bootstrap.limits import Limit
from bootstrap.store.canonical import clear_setid_bits

SANDBOX_BUILD_DIR = "/build"
HOMELESS_SHELTER = "/homeless-shelter"
PATH_NOT_SET = "/path-not-set"
SANDBOX_UID = 1000
SANDBOX_GID = 100
SANDBOX_HOSTNAME = "localhost"
DEFAULT_STORE_DIR = "/nix/store"
BWRAP_ENV_VAR = "BOOTSTRAP_BWRAP"
NO_SANDBOX_HINT = "run with --no-sandbox to build without isolation (results are non-hermetic)"

_RESERVED_DESTINATIONS = (SANDBOX_BUILD_DIR, "/proc", "/dev", "/etc")
_TMP = PurePosixPath("/tmp")
# what the sandbox sets beyond the derivation's env: exactly what Nix 2.8's sandbox sets (PATH
# only where the derivation does not), so a derivation builds the same here and there
_RESERVED_ENV = frozenset(
    {
        "HOME",
        "NIX_STORE",
        "NIX_BUILD_CORES",
        "NIX_BUILD_TOP",
        "TMPDIR",
        "TMP",
        "TEMP",
        "TEMPDIR",
        "PWD",
        "NIX_OUTPUT_CHECKED",
        "NIX_LOG_FD",
        "TERM",
    }
)
_HOST_NETWORK_FILES = ("/etc/resolv.conf", "/etc/hosts", "/etc/services", "/etc/protocols")
_READ_CHUNK = 65536
_DRAIN_SECONDS = 2.0
_STARTUP_SECONDS = 30.0  # for bwrap to report the sandbox's pid 1
_END_SECONDS = 10.0  # for the sandbox's pid 1 (and so every process in it) to be gone
_CGROUP_PREFIX = "bootstrap-build-"
_PR_SET_CHILD_SUBREAPER = 36
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# how often a running build reports its wall and CPU time so far (`run_in_sandbox`'s `on_tick`)
DEFAULT_TICK_SECONDS = 60.0

MAX_PROCESSES = Limit("BOOTSTRAP_MAX_PROCESSES", 4096)
MAX_LOG = Limit("BOOTSTRAP_MAX_LOG", 64 << 20)
MAX_OUTPUT = Limit("BOOTSTRAP_MAX_OUTPUT", 16 << 30)

LineCallback = Callable[[str], None]
# told a running build's wall seconds and its process tree's CPU seconds so far
TickCallback = Callable[[float, float], None]


class TimeoutKind(StrEnum):
    """Why a build was killed: it ran too long in total, or printed nothing for too long."""

    TOTAL = "total"
    SILENT = "silent"


@dataclass(frozen=True)
class BuildLimits:
    """What one build may use; each default is documented in docs/sandbox.md and set by an
    environment variable (`from_env`).

    `max_processes`: processes and threads alive at once in the sandbox (its pid 1 included).
    `max_log_bytes`: builder output kept in the log per attempt; the rest is dropped, and the
    log says so. `max_output_bytes`: the outputs' size (file contents and symlink targets),
    checked when the builder is done (by the builder layer).
    """

    max_processes: int = MAX_PROCESSES.default
    max_log_bytes: int = MAX_LOG.default
    max_output_bytes: int = MAX_OUTPUT.default

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BuildLimits:
        """The defaults, with $BOOTSTRAP_MAX_PROCESSES, $BOOTSTRAP_MAX_LOG and
        $BOOTSTRAP_MAX_OUTPUT (sizes such as 64M or 16G) where set."""
        return cls(MAX_PROCESSES.get(environ), MAX_LOG.get(environ), MAX_OUTPUT.get(environ))


class Bind(NamedTuple):
    """A host path (`physical`) that the builder sees at `logical`."""

    physical: Path
    logical: str


@dataclass(frozen=True)
class SandboxSpec:
    """Everything one builder run needs.

    `inputs` are mounted read-only; `outputs` name where each output should end up on the host
    (`physical`, which must not exist yet) and its store path (`logical`). All outputs share one
    logical store directory. The builder can change the modes of everything it is given
    (`build_dir` itself included), so `build_dir` and the outputs' directory must lie in a
    directory only the caller can enter (docs/sandbox.md, "Other users"). `env` is the
    derivation's environment; the sandbox adds what Nix 2.8's sandbox adds (HOME, TMPDIR,
    NIX_BUILD_CORES from `cores`, NIX_STORE from `store_dir`, ...) and refuses to let `env`
    override it. `sandboxed=False` is
    the explicit no-sandbox mode: it needs physical == logical for every bind. `append_log`
    adds to the log file instead of replacing it (a resumed build's log keeps every attempt).
    """

    command: Sequence[str]
    build_dir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    inputs: Sequence[Bind] = ()
    outputs: Sequence[Bind] = ()
    network: bool = False
    cores: int = 1
    store_dir: str = DEFAULT_STORE_DIR
    max_seconds: float | None = None
    max_silent_seconds: float | None = None
    sandboxed: bool = True
    append_log: bool = False
    limits: BuildLimits = field(default_factory=BuildLimits)
    tick_seconds: float = DEFAULT_TICK_SECONDS


@dataclass(frozen=True)
class SandboxResult:
    """How a builder run ended. `exit_code` is 128+N when the builder died of signal N.
    `cpu_seconds` is the user+system CPU time of the builder's whole process tree (in no-sandbox
    mode: of the builder and the processes it waited for)."""

    exit_code: int
    duration: float
    timed_out: TimeoutKind | None
    hermetic: bool
    log_path: Path
    cpu_seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and self.timed_out is None


def run_in_sandbox(
    spec: SandboxSpec,
    log_path: Path,
    on_line: LineCallback | None = None,
    on_tick: TickCallback | None = None,
) -> SandboxResult:
    """Run `spec.command`, stream its merged stdout/stderr to `log_path` (and `on_line`);
    every `spec.tick_seconds` while it runs, tell `on_tick` its wall and CPU seconds so far.

    On success each declared output the builder created is moved to its physical path; after a
    failure or timeout nothing is left there (except in no-sandbox mode, which writes in place).
    The whole process tree is killed on exit, timeout, or any exception (Ctrl-C included).
    """
    inputs, outputs = _validated_binds(spec)
    _check_env(spec.env)
    if spec.sandboxed:
        bwrap = check_sandbox_available()
        return _run_sandboxed(spec, bwrap, inputs, outputs, Path(log_path), on_line, on_tick)
    return _run_unsandboxed(spec, Path(log_path), on_line, on_tick)


def check_sandbox_available() -> str:
    """Return the bwrap executable after proving it can create all namespaces we need."""
    bwrap = os.environ.get(BWRAP_ENV_VAR) or shutil.which("bwrap")
    if not bwrap:
        raise BootstrapError(
            f"sandbox: bubblewrap (bwrap) not found on PATH or in ${BWRAP_ENV_VAR}; "
            f"install the 'bubblewrap' package or {NO_SANDBOX_HINT}"
        )
    problem = _probe_bwrap(bwrap)
    if problem:
        raise BootstrapError(
            f"sandbox: {bwrap} cannot create namespaces ({problem}); {NO_SANDBOX_HINT}"
        )
    return bwrap


@functools.cache
def _probe_bwrap(bwrap: str) -> str:
    """Run a trivial command with the same isolation flags; return '' or bwrap's complaint."""
    true = shutil.which("true") or "/bin/true"
    argv = [bwrap, *_isolation_flags(network=False), "--ro-bind", "/", "/", true]
    try:
        probe = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if probe.returncode == 0:
        return ""
    lines = probe.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit code {probe.returncode}"


def sandbox_environment(spec: SandboxSpec, build_top: str) -> dict[str, str]:
    """The exact environment the builder sees: the derivation's env plus what Nix 2.8's
    sandbox adds (nothing else: SOURCE_DATE_EPOCH, LC_ALL and the like are the derivation's)."""
    env = {"PATH": PATH_NOT_SET, **spec.env}
    env.update(
        HOME=HOMELESS_SHELTER,
        NIX_STORE=spec.store_dir,
        NIX_BUILD_CORES=str(spec.cores),
        NIX_BUILD_TOP=build_top,
        TMPDIR=build_top,
        TEMPDIR=build_top,
        TMP=build_top,
        TEMP=build_top,
        PWD=build_top,
    )
    if spec.network:  # only fixed-output derivations get the network, as in Nix
        env["NIX_OUTPUT_CHECKED"] = "1"
    env.update(NIX_LOG_FD="2", TERM="xterm-256color")
    return env


# --- validation -------------------------------------------------------------------------------


def _validated_binds(spec: SandboxSpec) -> tuple[list[Bind], list[Bind]]:
    if not spec.command:
        raise BootstrapError("sandbox spec: command is empty; expected an argv list")
    if spec.cores < 1:
        raise BootstrapError(f"sandbox spec: cores is {spec.cores}; expected a positive integer")
    if not Path(spec.build_dir).is_dir():
        raise BootstrapError(f"sandbox spec: build_dir {spec.build_dir} is not a directory")
    inputs = [_checked_bind(b, "input") for b in spec.inputs]
    outputs = [_checked_bind(b, "output") for b in spec.outputs]
    for bind in inputs:
        if not os.path.lexists(bind.physical):
            raise BootstrapError(f"sandbox spec: input {bind.physical} does not exist")
    for bind in outputs:
        if os.path.lexists(bind.physical):
            raise BootstrapError(f"sandbox spec: output {bind.physical} already exists")
    _check_unique([b.logical for b in inputs + outputs])
    if len({str(PurePosixPath(b.logical).parent) for b in outputs}) > 1:
        raise BootstrapError("sandbox spec: outputs must all live in one logical store directory")
    if not spec.sandboxed:
        _check_identity_mapping(inputs + outputs)
    return sorted(inputs, key=lambda b: b.logical), outputs


def _checked_bind(bind: Bind | tuple[Path | str, str], role: str) -> Bind:
    physical, logical = bind
    if not os.path.isabs(physical):
        raise BootstrapError(f"sandbox spec: {role} path {physical} must be absolute")
    pure = PurePosixPath(logical)
    if not pure.is_absolute() or str(pure) != logical or ".." in pure.parts or pure == pure.parent:
        raise BootstrapError(
            f"sandbox spec: {role} logical path {logical!r} must be absolute, normalized, not /"
        )
    for reserved in _RESERVED_DESTINATIONS:
        if pure == PurePosixPath(reserved) or pure.is_relative_to(reserved):
            raise BootstrapError(
                f"sandbox spec: {role} logical path {logical} collides with sandbox {reserved}"
            )
    return Bind(Path(physical), logical)


def _check_unique(logicals: list[str]) -> None:
    seen: set[str] = set()
    for logical in logicals:
        if logical in seen:
            raise BootstrapError(f"sandbox spec: logical path {logical} is bound twice")
        seen.add(logical)


def _check_identity_mapping(binds: list[Bind]) -> None:
    for bind in binds:
        if os.path.normpath(bind.physical) != bind.logical:
            raise BootstrapError(
                f"no-sandbox mode: {bind.physical} would have to appear at {bind.logical}, which "
                "needs a sandbox; without one the physical store must equal the logical store"
            )


def _check_env(env: Mapping[str, str]) -> None:
    for name, value in env.items():
        if name in _RESERVED_ENV:
            raise BootstrapError(
                f"sandbox spec: env variable {name} is set by the sandbox; remove it from env"
            )
        if not name or "=" in name or "\0" in name or "\0" in value:
            raise BootstrapError(f"sandbox spec: env variable {name!r} has an invalid name/value")


# --- sandboxed mode ---------------------------------------------------------------------------


def _isolation_flags(network: bool) -> list[str]:
    flags = ["--unshare-all", "--die-with-parent", "--new-session"]
    flags += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID), "--hostname", SANDBOX_HOSTNAME]
    return [*flags, "--share-net"] if network else flags


def _run_sandboxed(
    spec: SandboxSpec,
    bwrap: str,
    inputs: list[Bind],
    outputs: list[Bind],
    log_path: Path,
    on_line: LineCallback | None,
    on_tick: TickCallback | None,
) -> SandboxResult:
    env = sandbox_environment(spec, SANDBOX_BUILD_DIR)
    with (
        _staging_dir(outputs) as staging,
        _etc_files(spec.network) as etc_fds,
        _PidOne(spec.limits.max_processes) as pid_one,
    ):
        argv = [bwrap, *_isolation_flags(spec.network), *pid_one.flags, "--tmpfs", "/"]
        argv += _mount_args(spec, inputs, outputs, staging, etc_fds)
        argv += ["--remount-ro", "/", "--chdir", SANDBOX_BUILD_DIR, "--clearenv"]
        for name, value in env.items():
            argv += ["--setenv", name, value]
        argv += ["--", *spec.command]
        pass_fds = [*etc_fds.values(), *pid_one.child_fds]
        with _clearing_setid_bits(spec.build_dir, staging):
            code, seconds, timed_out, cpu = _supervise(
                argv, spec, {}, pass_fds, log_path, on_line, on_tick, pid_one=pid_one
            )
            result = SandboxResult(code, seconds, timed_out, True, log_path, cpu)
        if staging is not None and result.succeeded:
            _collect_outputs(staging, outputs)
    return result


@contextmanager
def _clearing_setid_bits(*trees: Path | None) -> Iterator[None]:
    """Clear every setuid/setgid bit in `trees` once the builder is gone, however its run
    ended (a kept build directory outlives an interruption)."""
    try:
        yield
    finally:
        for tree in trees:
            if tree is not None:
                clear_setid_bits(tree)


def _mount_args(
    spec: SandboxSpec,
    inputs: list[Bind],
    outputs: list[Bind],
    staging: Path | None,
    etc_fds: Mapping[str, int],
) -> list[str]:
    args: list[str] = []
    for directory in _ancestors([b.logical for b in inputs + outputs]):
        args += ["--perms", "0755", "--dir", directory]
    if staging is not None:
        args += ["--bind", str(staging), str(PurePosixPath(outputs[0].logical).parent)]
    for bind in inputs:
        if bind.physical.is_symlink():
            args += ["--symlink", os.readlink(bind.physical), bind.logical]
        else:
            args += ["--ro-bind", str(bind.physical), bind.logical]
    args += ["--bind", str(spec.build_dir), SANDBOX_BUILD_DIR, "--proc", "/proc", "--dev", "/dev"]
    if not any(PurePosixPath(b.logical).is_relative_to(_TMP) for b in inputs + outputs):
        args += ["--perms", "1777", "--tmpfs", str(_TMP)]  # a writable /tmp, as Nix's has
    for destination, fd in etc_fds.items():
        args += ["--ro-bind-data", str(fd), destination]
    if spec.network:
        for name in _HOST_NETWORK_FILES:
            args += ["--ro-bind-try", name, name]
    return args


def _ancestors(logicals: list[str]) -> list[str]:
    """Every proper ancestor directory of the given paths, parents first."""
    found = {str(a) for p in logicals for a in PurePosixPath(p).parents if str(a) != "/"}
    return sorted(found, key=lambda a: (a.count("/"), a))


def _etc_text(network: bool) -> dict[str, str]:
    """/etc as Nix 2.8's sandbox writes it (its build user is `nixbld`)."""
    passwd = (
        f"root:x:0:0:Nix build user:{SANDBOX_BUILD_DIR}:/noshell\n"
        f"nixbld:x:{SANDBOX_UID}:{SANDBOX_GID}:Nix build user:{SANDBOX_BUILD_DIR}:/noshell\n"
        "nobody:x:65534:65534:Nobody:/:/noshell\n"
    )
    group = f"root:x:0:\nnixbld:!:{SANDBOX_GID}:\nnogroup:x:65534:\n"
    files = {"/etc/passwd": passwd, "/etc/group": group}
    if not network:
        files["/etc/hosts"] = f"127.0.0.1 {SANDBOX_HOSTNAME}\n::1 {SANDBOX_HOSTNAME}\n"
    return files


@contextmanager
def _etc_files(network: bool) -> Iterator[dict[str, int]]:
    """Pipes holding the synthetic /etc files, read by bwrap's --ro-bind-data."""
    fds: dict[str, int] = {}
    try:
        for destination, text in _etc_text(network).items():
            read_end, write_end = os.pipe()
            fds[destination] = read_end
            with os.fdopen(write_end, "w") as writer:
                writer.write(text)
        yield fds
    finally:
        for fd in fds.values():
            os.close(fd)


@contextmanager
def _staging_dir(outputs: list[Bind]) -> Iterator[Path | None]:
    """A private directory on the outputs' filesystem, mounted as the logical store dir."""
    if not outputs:
        yield None
        return
    parent = outputs[0].physical.parent
    if not parent.is_dir():
        raise BootstrapError(f"sandbox spec: output directory {parent} does not exist")
    staging = Path(tempfile.mkdtemp(prefix=".sandbox-", dir=parent))
    try:
        yield staging
    finally:
        remove_tree(staging)


def _collect_outputs(staging: Path, outputs: list[Bind]) -> None:
    for bind in outputs:
        built = staging / PurePosixPath(bind.logical).name
        if os.path.lexists(built):
            os.rename(built, bind.physical)  # the entry itself, a symlink included


# --- no-sandbox mode --------------------------------------------------------------------------


def _run_unsandboxed(
    spec: SandboxSpec, log_path: Path, on_line: LineCallback | None, on_tick: TickCallback | None
) -> SandboxResult:
    """Run the builder directly, in the real build directory, with the same clean env."""
    if os.path.lexists(HOMELESS_SHELTER):
        raise BootstrapError(f"no-sandbox mode: {HOMELESS_SHELTER} exists; remove it")
    build_top = str(Path(spec.build_dir).resolve())
    env = sandbox_environment(spec, build_top)
    with _clearing_setid_bits(spec.build_dir):
        code, seconds, timed_out, cpu = _supervise(
            list(spec.command), spec, env, [], log_path, on_line, on_tick, cwd=build_top
        )
    return SandboxResult(code, seconds, timed_out, False, log_path, cpu)


# --- process supervision ----------------------------------------------------------------------


@dataclass
class _Clock:
    """Deadlines for the total and the silent timeout."""

    max_seconds: float | None
    max_silent_seconds: float | None
    start: float = field(default_factory=time.monotonic)
    last_output: float = field(default_factory=time.monotonic)

    def _deadlines(self) -> list[tuple[float, TimeoutKind]]:
        deadlines = []
        if self.max_seconds is not None:
            deadlines.append((self.start + self.max_seconds, TimeoutKind.TOTAL))
        if self.max_silent_seconds is not None:
            deadlines.append((self.last_output + self.max_silent_seconds, TimeoutKind.SILENT))
        return deadlines

    def expired(self, now: float) -> TimeoutKind | None:
        return next((kind for deadline, kind in self._deadlines() if now >= deadline), None)

    def wait_milliseconds(self, now: float) -> int | None:
        """How long to wait for an event: until the next deadline, or forever without one."""
        deadlines = [deadline for deadline, _ in self._deadlines()]
        return _milliseconds(min(deadlines) - now) if deadlines else None


class _Ticker:
    """Tells `on_tick` every `seconds` the build's wall time and the CPU time of the process
    tree under `root` so far (what an interrupted build's next attempt adds its time to)."""

    def __init__(
        self, on_tick: TickCallback | None, seconds: float, start: float, root: int
    ) -> None:
        self.on_tick = on_tick
        self.seconds = seconds
        self.start = start
        self.root = root
        self.due = start + seconds

    def tick_if_due(self, now: float) -> None:
        if self.on_tick is None or now < self.due:
            return
        self.due = now + self.seconds
        self.on_tick(now - self.start, tree_cpu_seconds(self.root))

    def wait_milliseconds(self, now: float) -> int | None:
        if self.on_tick is None:
            return None
        return _milliseconds(self.due - now)


def _milliseconds(seconds: float) -> int:
    """A poll timeout for `seconds` from now (0 when that is past)."""
    return max(0, math.ceil(seconds * 1000))


def _sooner(first: int | None, second: int | None) -> int | None:
    """The shorter of two poll timeouts in milliseconds (None: forever)."""
    if first is None or second is None:
        return second if first is None else first
    return min(first, second)


def tree_cpu_seconds(root: int) -> float:
    """The CPU seconds (user+system) used so far by the live process tree under `root`: each
    process's own, plus what it has reaped of its children (a dead child's time is in exactly
    one live ancestor's reaped share, or still in its own zombie entry)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        ticks[pid] = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return sum(ticks[pid] for pid in _descendants(parents, root)) / _CLOCK_TICKS


def _descendants(parents: Mapping[int, int], root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    tree, todo = [], [root] if root in parents else []
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


class _LineSplitter:
    """Feeds complete lines of a byte stream to a callback."""

    def __init__(self, on_line: LineCallback | None) -> None:
        self.on_line = on_line
        self.pending = b""

    def feed(self, chunk: bytes) -> None:
        if self.on_line is None:
            return
        *lines, self.pending = (self.pending + chunk).split(b"\n")
        for line in lines:
            self.on_line(line.decode("utf-8", "replace"))

    def finish(self) -> None:
        if self.on_line is not None and self.pending:
            self.on_line(self.pending.decode("utf-8", "replace"))
        self.pending = b""


class _Log:
    """The build log: the builder's output up to `limit` bytes, then one line saying the rest
    is dropped (the output is still read to its end, so the builder never blocks on it)."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self.stream = stream
        self.limit = limit
        self.received = 0
        self.last_byte = b"\n"

    def write(self, chunk: bytes) -> None:
        room = self.limit - self.received
        self.received += len(chunk)
        if room > 0:
            self.stream.write(chunk[:room])
            self.last_byte = chunk[:room][-1:]
        if room >= 0 and self.received > self.limit:  # the first byte over the limit
            self.note(
                f"log truncated: the builder printed more than {self.limit} bytes; the rest is "
                f"not kept (${MAX_LOG.variable} sets the limit)"
            )
        self.stream.flush()

    def note(self, message: str) -> None:
        """A line of our own in the log."""
        start = b"" if self.last_byte == b"\n" else b"\n"
        self.stream.write(start + f"bootstrap: {message}\n".encode())
        self.stream.flush()


class _PidOne:
    """The sandbox's pid 1: held back until its process limit is set, awaited at the end.

    bwrap reports pid 1 on its --info-fd and waits on its --block-fd before starting the
    builder. The limit is RLIMIT_NPROC set on pid 1 once its user namespace exists, so it
    counts only the sandbox's processes (set on bwrap beforehand, it would count every process
    of the calling user). The kernel never applies RLIMIT_NPROC to the host's root, so when we
    run as root the limit is a pids cgroup instead, where one can be made. When pid 1 is gone,
    every process of the sandbox is (the kernel kills the rest of its pid namespace first), so
    nothing changes the builder's files any more.

    pid 1 reaps every process of the sandbox, so its CPU time with its children's is the whole
    build's. bwrap's outer process (our child) exits as soon as the builder does, often without
    reaping pid 1; this process is therefore a child subreaper, so that pid 1 is then ours to
    reap, with that CPU time (`wait_gone`).
    """

    def __init__(self, max_processes: int) -> None:
        self.max_processes = max_processes
        self.info_read, self.info_write = os.pipe()
        self.block_read, self.block_write = os.pipe()
        self.open_fds = {self.info_read, self.info_write, self.block_read, self.block_write}
        self.pid: int | None = None
        self.pid_fd: int | None = None
        self.cgroup: Path | None = None

    @property
    def flags(self) -> list[str]:
        return ["--info-fd", str(self.info_write), "--block-fd", str(self.block_read)]

    @property
    def child_fds(self) -> list[int]:
        return [self.info_write, self.block_read]

    def __enter__(self) -> _PidOne:
        _become_subreaper()
        return self

    def __exit__(self, *_exc: object) -> None:
        for fd in list(self.open_fds):
            self._close(fd)
        self._remove_cgroup()

    def _close(self, fd: int) -> None:
        if fd in self.open_fds:
            self.open_fds.discard(fd)
            os.close(fd)

    def release(self, log: _Log) -> None:
        """Once bwrap runs: limit its pid 1, then let it start the builder."""
        self._close(self.info_write)
        self._close(self.block_read)
        pid = self._read_pid()
        if pid is None:
            return  # bwrap stopped before making the sandbox; it said why in the log
        self.pid = pid
        self.pid_fd = os.pidfd_open(pid)
        self.open_fds.add(self.pid_fd)
        self._limit(pid, log)
        os.write(self.block_write, b"go")
        self._close(self.block_write)

    def _read_pid(self) -> int | None:
        data = b""
        deadline = time.monotonic() + _STARTUP_SECONDS
        while _readable(self.info_read, deadline - time.monotonic()):
            chunk = os.read(self.info_read, _READ_CHUNK)
            if not chunk:
                return None
            data += chunk
            with suppress(ValueError, KeyError):
                return int(json.loads(data)["child-pid"])
        raise BootstrapError(f"sandbox: bwrap did not start within {_STARTUP_SECONDS:.0f} s")

    def _limit(self, pid: int, log: _Log) -> None:
        """Apply the process limit to pid 1, or say in the log why it cannot be."""
        limit = self.max_processes
        try:
            if os.geteuid() != 0:
                resource.prlimit(pid, resource.RLIMIT_NPROC, (limit, limit))
                return
            self.cgroup = _pids_cgroup(limit)
            if self.cgroup is not None:
                (self.cgroup / "cgroup.procs").write_text(f"{pid}\n")
                return
            problem = "running as root, and no pids cgroup can be made"
        except OSError as err:
            problem = err.strerror or str(err)
        log.note(f"the process limit ({limit}) is not enforced: {problem}")

    def wait_gone(self) -> float:
        """Kill pid 1 (and so the whole sandbox) if it still runs; return once it is gone, with
        the CPU seconds of pid 1 and all it reaped if they were not counted in bwrap's outer
        process (which must be reaped first): 0.0 if that one reaped pid 1 itself."""
        if self.pid_fd is None:
            return 0.0
        with suppress(ProcessLookupError):
            signal.pidfd_send_signal(self.pid_fd, signal.SIGKILL)
        if not _readable(self.pid_fd, _END_SECONDS):
            raise BootstrapError(
                f"sandbox: its processes did not end {_END_SECONDS:.0f} s after SIGKILL"
            )
        self._remove_cgroup()
        return self._reap_orphan()

    def _reap_orphan(self) -> float:
        """Reap pid 1 if it is our child now; the pidfd names that very process, so a
        recycled pid number is never waited for (a zombie keeps its number until reaped)."""
        assert self.pid is not None and self.pid_fd is not None
        try:
            os.waitid(os.P_PIDFD, self.pid_fd, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return 0.0  # reaped by bwrap's outer process (or by init, without a subreaper)
        return _cpu_seconds(os.wait4(self.pid, 0)[2])

    def _remove_cgroup(self) -> None:
        """Remove our cgroup; a moment after pid 1's end it may still count dying tasks."""
        deadline = time.monotonic() + _END_SECONDS
        while self.cgroup is not None:
            try:
                self.cgroup.rmdir()
                self.cgroup = None
            except OSError:
                if time.monotonic() > deadline:
                    return  # an empty cgroup left behind; harmless
                time.sleep(0.05)


@functools.cache
def _become_subreaper() -> None:
    """Make this process the reaper of its descendants' orphans (once; where it cannot be,
    a sandboxed build's CPU time counts less than its whole tree)."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _cpu_seconds(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def _readable(fd: int, seconds: float) -> bool:
    """Whether `fd` becomes readable (or hung up) within `seconds`."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(_milliseconds(seconds)))


def _pids_cgroup(limit: int) -> Path | None:
    """A new cgroup whose pids.max is `limit`, or None where none can be made (not root, or no
    cgroup hierarchy with the pids controller). Its name holds our pid, so that the empty
    cgroups of a `bootstrap` that was killed are removed here later."""
    for mount in _cgroup_mounts():
        path = mount / f"{_CGROUP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
        try:
            path.mkdir()
        except OSError:
            continue
        _remove_dead_cgroups(mount)
        try:
            (path / "pids.max").write_text(f"{limit}\n")
            return path
        except OSError:  # a cgroup2 hierarchy without the pids controller
            path.rmdir()
    return None


def _remove_dead_cgroups(mount: Path) -> None:
    """Remove the cgroups left by a `bootstrap` process that no longer exists (rmdir refuses
    one that still holds a process)."""
    for path in mount.glob(f"{_CGROUP_PREFIX}*-*"):
        owner = path.name.removeprefix(_CGROUP_PREFIX).split("-")[0]
        if owner.isdigit() and not _alive(int(owner)):
            with suppress(OSError):
                path.rmdir()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def _cgroup_mounts() -> list[Path]:
    """Where cgroup hierarchies are mounted: cgroup v1 ones with the pids controller, and v2."""
    mounts = []
    with open("/proc/self/mountinfo") as table:
        for line in table:
            fields, _, super_fields = line.partition(" - ")
            fstype, _source, options = super_fields.split()[:3]
            if fstype == "cgroup2" or (fstype == "cgroup" and "pids" in options.split(",")):
                mounts.append(Path(fields.split()[4]))
    return mounts


def _supervise(
    argv: list[str],
    spec: SandboxSpec,
    env: Mapping[str, str],
    pass_fds: list[int],
    log_path: Path,
    on_line: LineCallback | None,
    on_tick: TickCallback | None,
    cwd: str | None = None,
    pid_one: _PidOne | None = None,
) -> tuple[int, float, TimeoutKind | None, float]:
    """Start argv in its own session, pump its output, kill its whole group when done (and,
    for a sandbox, return only once every process in it is gone). Returns the exit code, the
    wall and CPU seconds (user+system, of every process reaped: the whole sandbox) and the
    timeout that fired, if any."""
    clock = _Clock(spec.max_seconds, spec.max_silent_seconds)
    splitter = _LineSplitter(on_line)
    with open(log_path, "ab" if spec.append_log else "wb") as stream:
        log = _Log(stream, spec.limits.max_log_bytes)
        proc = _start(argv, env, pass_fds, cwd)
        assert proc.stdout is not None
        try:
            if pid_one is not None:
                pid_one.release(log)
            root = pid_one.pid if pid_one is not None and pid_one.pid is not None else proc.pid
            ticker = _Ticker(on_tick, spec.tick_seconds, clock.start, root)
            timed_out = _pump(proc, proc.stdout, log, splitter, clock, ticker)
        finally:
            _kill_group(proc)
            cpu = _reap(proc)
            if pid_one is not None:
                cpu += pid_one.wait_gone()
        _drain(proc.stdout, log, splitter)
        proc.stdout.close()
    splitter.finish()
    code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
    return code, time.monotonic() - clock.start, timed_out, cpu


def _start(
    argv: list[str], env: Mapping[str, str], pass_fds: list[int], cwd: str | None
) -> subprocess.Popen:
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            pass_fds=pass_fds,
            start_new_session=True,
            umask=0o022,
        )
    except OSError as exc:
        raise BootstrapError(f"sandbox: cannot start builder {argv[0]}: {exc.strerror}") from None


def _pump(
    proc: subprocess.Popen,
    stream: BinaryIO,
    log: _Log,
    splitter: _LineSplitter,
    clock: _Clock,
    ticker: _Ticker,
) -> TimeoutKind | None:
    """Copy output until the main process exits (-> None) or a timeout fires (-> its kind),
    ticking `ticker` on the way.

    The exit is seen through a pidfd, which wakes the loop at once but leaves the process an
    unreaped zombie, so its process group id cannot be reused before `_kill_group` runs.
    """
    out_fd = stream.fileno()
    pid_fd = os.pidfd_open(proc.pid)
    poller = select.poll()
    poller.register(out_fd, select.POLLIN)
    poller.register(pid_fd, select.POLLIN)
    try:
        while not (kind := clock.expired(now := time.monotonic())):
            ticker.tick_if_due(now)
            wait = _sooner(clock.wait_milliseconds(now), ticker.wait_milliseconds(now))
            ready = dict(poller.poll(wait))
            if out_fd in ready:
                _copy_chunk(out_fd, poller, log, splitter, clock)
            elif pid_fd in ready:
                return None
        return kind
    finally:
        os.close(pid_fd)


def _copy_chunk(
    fd: int, poller: select.poll, log: _Log, splitter: _LineSplitter, clock: _Clock
) -> None:
    chunk = os.read(fd, _READ_CHUNK)
    if not chunk:
        poller.unregister(fd)  # EOF; the builder may still be running
        return
    log.write(chunk)
    splitter.feed(chunk)
    clock.last_output = time.monotonic()


def _reap(proc: subprocess.Popen) -> float:
    """Wait for `proc` (setting its returncode); return its CPU seconds and those of every
    process it or they waited for (os.wait4: per process, unlike RUSAGE_CHILDREN, so builds
    in parallel threads do not mix)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return _cpu_seconds(usage)


def _kill_group(proc: subprocess.Popen) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _drain(stream: BinaryIO, log: _Log, splitter: _LineSplitter) -> None:
    """Copy what is left in the pipe; give up after a moment if an escaped process holds it."""
    fd = stream.fileno()
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + _DRAIN_SECONDS
    while (remaining := deadline - time.monotonic()) > 0 and poller.poll(remaining * 1000):
        chunk = os.read(fd, _READ_CHUNK)
        if not chunk:
            return
        log.write(chunk)
        splitter.feed(chunk)
