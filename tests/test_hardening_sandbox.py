"""Hardening of builds (issue #17): what a builder makes is never setuid on the host nor
reachable by other users, the host never follows a builder's symlink, and builds have limits.

Real bwrap, real processes, a real busybox seed and real files: each attack is reproduced as
it was reported. Tests that switch users need root and skip without it.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bootstrap import sandbox
from bootstrap.build import BuildOptions
from bootstrap.cli import build_parser
from bootstrap.errors import BootstrapError
from bootstrap.fetch import Source
from bootstrap.hashing import hash_file
from bootstrap.recipe import Evaluator, Package
from bootstrap.sandbox import Bind, BuildLimits, SandboxSpec, run_in_sandbox
from bootstrap.scheduler import Scheduler
from bootstrap.store import Store

from .engine_fixtures import (
    busybox_seed,
    make_recipes,
    offline_fetcher,
    requires_busybox,
    wait_until,
)
from .test_sandbox import BUSYBOX_BIN, BUSYBOX_LOGICAL, make_busybox_store_path

pytestmark = requires_busybox

REPO = Path(__file__).resolve().parents[1]
NOBODY = 65534
OTHER_USER = 30001  # a second unprivileged user, for a build run as nobody
PAUSE = "61.7"  # how long a builder waits to be interrupted: unique, to find its processes
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")

SCRIPTS = {
    # the reported attack: setuid copies of a program in /build and in $out, with every
    # directory the builder can reach opened up
    "setuid.sh": textwrap.dedent(f"""\
        cp "$srcs" ./euid
        chmod 6755 euid
        mkdir $out
        cp euid $out/euid
        chmod 6755 $out/euid
        chmod 755 /build "${{out%/*}}" $out
        touch ready
        sleep {PAUSE}
    """),
    # the same in a resumable build, whose build directory outlives an interruption
    "setuid-kept.sh": textwrap.dedent(f"""\
        cp "$srcs" ./euid
        chmod 6755 euid
        chmod 755 /build
        touch ready
        sleep {PAUSE}
    """),
    # the reported attack: the first attempt leaves closure.json as a link to a host file
    "closure-link.sh": textwrap.dedent(f"""\
        if [ -f paused-once ]; then cp closure.json $out; exit 0; fi
        rm -f closure.json
        busybox ln -s "$victim" closure.json
        touch paused-once
        sleep {PAUSE}
    """),
    "hello.sh": "mkdir $out; echo hello > $out/greeting\n",
    "symlink-out.sh": 'busybox ln -s "$victim" $out\n',
    "big-output.sh": "head -c 3000000 /dev/zero > $out\n",
    "steps.sh": textwrap.dedent("""\
        if [ -f part1 ]; then echo "resuming after part 1"; else echo "part 1" > part1; fi
        cp part1 $out
    """),
}

EUID_C = (
    '#include <stdio.h>\n#include <unistd.h>\nint main(void) { printf("%d\\n", (int)geteuid()); }\n'
)


# --- helpers ----------------------------------------------------------------------------------


def setpriv(uid: int) -> list[str]:
    """The prefix that runs a program as `uid`. setpriv keeps root's capabilities until its own
    exec, so it finds a program the user could not reach (our Python lives under /root); the
    program itself then runs with none."""
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


SETPRIV_NOBODY = setpriv(NOBODY)


def as_user(uid: int, *argv: str | Path) -> subprocess.CompletedProcess:
    """Run argv as `uid`, as an attacker would: through a shell that holds no capability, so
    reaching `argv[0]` takes the user's own rights (see `setpriv`)."""
    argv = [*setpriv(uid), "/bin/sh", "-c", 'exec "$@"', "sh", *map(str, argv)]
    return subprocess.run(argv, capture_output=True, text=True, cwd="/")


def euid_program(directory: Path) -> Path:
    """A host program that prints its effective uid: run setuid-root by nobody, it prints 0."""
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("needs a host C compiler (cc) to make the setuid program of the attack")
    (directory / "euid.c").write_text(EUID_C)
    subprocess.run([cc, "-O1", "-o", directory / "euid", directory / "euid.c"], check=True)
    return directory / "euid"


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user can enter (as a store under /var/tmp is), outside pytest's
    private tmp; the store below it is 0755 like any store."""
    top = Path(tempfile.mkdtemp(prefix="hardening-"))
    top.chmod(0o755)
    yield top
    shutil.rmtree(top, ignore_errors=True)


def packages(tmp: Path, victim: Path | None = None) -> dict[str, Package]:
    seed, _ = busybox_seed(tmp)
    euid = tmp / "euid"
    source = (
        Source.of(euid.as_uri(), hash_file("sha256", euid), name="euid") if euid.exists() else None
    )
    env = {"victim": str(victim)} if victim else {}
    hello = Package("hello", "1", "hello.sh", shell=seed)
    made = {
        "hello": hello,
        "symlink-out": Package("symlink-out", "1", "symlink-out.sh", shell=seed, env=env),
        "big-output": Package("big-output", "1", "big-output.sh", shell=seed),
        "steps": Package("steps", "1", "steps.sh", shell=seed, resumable=True),
        "closure-link": Package(
            "closure-link",
            "1",
            "closure-link.sh",
            shell=seed,
            inputs=(hello,),
            env=env,
            closure_files={"closure.json": hello},
            resumable=True,
        ),
    }
    if source is not None:
        made["setuid"] = Package("setuid", "1", "setuid.sh", sources=(source,), shell=seed)
        made["setuid-kept"] = Package(
            "setuid-kept", "1", "setuid-kept.sh", sources=(source,), shell=seed, resumable=True
        )
    return made


def evaluate(store: Store, tmp: Path, target: str, victim: Path | None = None):
    recipes = make_recipes(tmp / "r", SCRIPTS)
    package = packages(tmp, victim)[target]
    return Evaluator(store.store_dir, "x86_64-linux", recipes).evaluate([package])


def realise(store: Store, tmp: Path, target: str, victim: Path | None = None, **options):
    graph = evaluate(store, tmp, target, victim)
    options = BuildOptions(fetcher=offline_fetcher(tmp), **options)
    return graph, Scheduler(store, options, progress=False).realise(graph)


RUNNER = """
import json, signal, sys
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)
config = json.loads(sys.argv[1])
sys.path.insert(0, config["repo"])
from tests.test_hardening_sandbox import realise
from bootstrap.store import Store
victim = Path(config["victim"]) if config["victim"] else None
store = Store(Path(config["root"]), "/bootstrap/store")
_, summary = realise(store, Path(config["tmp"]), config["target"], victim)
print("BUILT", len(summary.built), "FAILED", len(summary.failed), flush=True)
"""


@pytest.fixture
def run_engine() -> Iterator[Callable[..., subprocess.Popen]]:
    """Build `target` in a separate process (as `user`, if given), as `bootstrap run` would;
    whatever is still running when the test ends is killed."""
    started: list[subprocess.Popen] = []

    def run(
        tmp: Path, root: Path, target: str, victim: Path | None = None, user: int | None = None
    ):
        config = {"repo": str(REPO), "tmp": str(tmp), "root": str(root), "target": target}
        config["victim"] = str(victim) if victim else ""
        prefix = setpriv(user) if user else []
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-c", RUNNER, json.dumps(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            cwd="/",
        )
        started.append(proc)
        return proc

    yield run
    for proc in started:
        if proc.poll() is None:
            kill_hard(proc)


def prepare(tmp: Path, owner: int | None = None) -> None:
    """Recipes, seed archive and the setuid program made before a separate process uses them."""
    tmp.mkdir(parents=True, exist_ok=True)
    euid_program(tmp)
    packages(tmp)
    make_recipes(tmp / "r", SCRIPTS)
    if owner is not None:
        for path in [tmp, *tmp.rglob("*")]:
            os.chown(path, owner, owner, follow_symlinks=False)


def files_named(top: Path, name: str) -> list[Path]:
    return [Path(d, name) for d, _, files in os.walk(top) if name in files]


def setid_files(top: Path) -> list[Path]:
    found = []
    for directory, _, files in os.walk(top):
        for name in files:
            path = Path(directory, name)
            if os.lstat(path).st_mode & (stat.S_ISUID | stat.S_ISGID):
                found.append(path)
    return found


def builder_running() -> bool:
    for entry in Path("/proc").iterdir():
        try:
            if PAUSE in (entry / "cmdline").read_bytes().decode(errors="replace").split("\0"):
                return True
        except OSError:
            continue
    return False


def kill_hard(proc: subprocess.Popen) -> None:
    """SIGKILL the whole `bootstrap` process group and wait until its builder is gone."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while builder_running():
        assert time.monotonic() < deadline, "the builder outlived bootstrap's kill -9"
        time.sleep(0.1)


def assert_out_of_reach(attacker: int, store_dir: Path, paths: list[Path]) -> None:
    """`attacker` can neither run nor even stat any of `paths` (which exist), and every scratch
    directory in the store is private."""
    assert paths and all(os.path.lexists(path) for path in paths)
    for path in paths:
        run = as_user(attacker, path)
        assert run.returncode != 0 and not run.stdout, f"uid {attacker} ran {path}: {run.stdout}"
        assert as_user(attacker, "stat", path).returncode != 0, f"uid {attacker} reached {path}"
    for entry in store_dir.iterdir():
        if entry.name.startswith((".tmp-", ".partial-")):
            assert stat.S_IMODE(os.lstat(entry).st_mode) == 0o700, entry


# --- 1. nothing a builder makes is setuid on the host or reachable by other users ------------


@needs_root
def test_a_root_builds_setuid_files_are_out_of_reach_during_the_build_and_after_kill_9(
    open_dir, run_engine
):
    tmp, root = open_dir / "t", open_dir / "root"
    prepare(tmp)
    proc = run_engine(tmp, root, "setuid")
    store = Store(root, "/bootstrap/store")
    wait_until(lambda: files_named(store.physical_dir, "ready"), proc)
    planted = setid_files(store.physical_dir)
    assert len(planted) == 2  # in /build and in $out, while the builder runs
    assert_out_of_reach(NOBODY, store.physical_dir, planted)
    kill_hard(proc)
    assert_out_of_reach(NOBODY, store.physical_dir, planted)  # left until gc, still private


@needs_root
def test_a_kept_build_directory_is_private_and_has_no_setuid_files(open_dir, run_engine):
    tmp, root = open_dir / "t", open_dir / "root"
    prepare(tmp)
    proc = run_engine(tmp, root, "setuid-kept")
    store = Store(root, "/bootstrap/store")
    wait_until(lambda: files_named(store.physical_dir, "ready"), proc)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the build directory is kept for the next run
    proc.wait(timeout=60)
    [kept] = store.physical_dir.glob(".partial-*")
    [euid] = files_named(kept, "euid")
    assert setid_files(kept) == []  # cleared as soon as the builder was gone
    assert_out_of_reach(NOBODY, store.physical_dir, [euid])


@needs_root
def test_an_unprivileged_build_leaves_nothing_another_user_can_reach(open_dir, run_engine):
    tmp, root = open_dir / "t", open_dir / "root"
    root.mkdir()
    os.chown(root, NOBODY, NOBODY)
    prepare(tmp, owner=NOBODY)
    proc = run_engine(tmp, root, "setuid", user=NOBODY)
    store_dir = root / "store"
    wait_until(lambda: files_named(store_dir, "ready"), proc)
    planted = setid_files(store_dir)
    assert len(planted) == 2 and all(p.stat().st_uid == NOBODY for p in planted)
    assert_out_of_reach(OTHER_USER, store_dir, planted)
    kill_hard(proc)
    assert_out_of_reach(OTHER_USER, store_dir, planted)


# --- 2. the host never follows a builder's symlink -------------------------------------------


def test_a_kept_build_directory_cannot_redirect_the_closure_file(tmp_path, run_engine):
    victim = tmp_path / "victim"
    victim.write_text("a root-owned secret\n")
    victim.chmod(0o600)
    root, tmp = tmp_path / "root", tmp_path / "t"
    tmp.mkdir()
    packages(tmp)
    make_recipes(tmp / "r", SCRIPTS)
    proc = run_engine(tmp, root, "closure-link", victim)
    store = Store(root, "/bootstrap/store")
    wait_until(lambda: files_named(store.physical_dir, "paused-once"), proc)
    kill_hard(proc)
    [link] = files_named(store.physical_dir, "closure.json")
    assert os.readlink(link) == str(victim)  # the trap is set in the kept build directory
    out, err = run_engine(tmp, root, "closure-link", victim).communicate(timeout=120)
    assert victim.read_text() == "a root-owned secret\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert "FAILED 0" in out, err
    [built] = [p for p in store.all_paths() if p.endswith("-closure-link-1")]
    described = json.loads(store.real_path(built).read_text())
    assert any(entry["path"].endswith("-hello-1") for entry in described)


def test_fix_up_never_follows_an_output_that_links_to_the_host(store, tmp_path):
    victim = tmp_path / "host-bin"
    victim.mkdir()
    (victim / "script").write_text("#!/bin/sh\necho hi\n")
    (victim / "script").chmod(0o755)
    graph, summary = realise(store, tmp_path / "t", "symlink-out", victim)
    assert summary.ok, summary.failed
    assert (victim / "script").read_text() == "#!/bin/sh\necho hi\n"
    out = graph.derivations[graph.targets[0]].outputs["out"].path
    assert os.readlink(store.real_path(out)) == str(victim)


def test_a_build_directory_kept_by_the_previous_layout_is_continued(store, tmp_path):
    """An interrupted build kept by the version before this change (its files at the top of
    `.partial-*`) is moved into place and continued, not lost."""
    graph = evaluate(store, tmp_path / "t", "steps")
    kept = store.partial_build_dir(graph.targets[0])
    kept.mkdir()
    (kept / "part1").write_text("part 1 from before\n")
    _, summary = realise(store, tmp_path / "t", "steps")
    assert summary.ok, summary.failed
    out = graph.derivations[graph.targets[0]].outputs["out"].path
    assert store.real_path(out).read_text() == "part 1 from before\n"
    assert not kept.exists()


# --- 8. limits -------------------------------------------------------------------------------

# 200 processes that each say so; the subshell stops at the first fork that fails, then the
# builder gives the ones started the time to say so, and fails
FORK_MANY = """
( i=0; while [ $i -lt 200 ]; do { echo started; exec sleep 9; } & i=$((i+1)); done )
sleep 2
exit 3
"""


def count_started(spec: SandboxSpec, log: Path) -> tuple[int, str]:
    """How many of FORK_MANY's processes started, and the log."""
    assert run_in_sandbox(spec, log).exit_code == 3
    text = log.read_text()
    return text.count("started\n"), text


def fork_spec(busybox: Bind, build_dir: Path, limit: int) -> SandboxSpec:
    return SandboxSpec(
        command=["sh", "-c", FORK_MANY],
        build_dir=build_dir,
        env={"PATH": BUSYBOX_BIN},
        inputs=[busybox],
        limits=BuildLimits(max_processes=limit),
    )


@pytest.fixture
def sandbox_store(tmp_path) -> tuple[Bind, Path]:
    busybox = make_busybox_store_path(tmp_path / "store" / BUSYBOX_LOGICAL.rsplit("/", 1)[1])
    build_dir = tmp_path / "build"
    build_dir.mkdir()
    return Bind(busybox, BUSYBOX_LOGICAL), build_dir


def test_a_build_cannot_start_more_processes_than_its_limit(sandbox_store, tmp_path):
    started, log = count_started(fork_spec(*sandbox_store, 50), tmp_path / "log")
    if "not enforced" in log:
        pytest.skip(log.strip().splitlines()[-1])
    assert "can't fork" in log
    assert 30 <= started <= 50, log  # pid 1 and the shell count too


@needs_root
def test_the_process_limit_holds_for_an_unprivileged_user(open_dir):
    busybox = make_busybox_store_path(open_dir / "store" / BUSYBOX_LOGICAL.rsplit("/", 1)[1])
    (open_dir / "build").mkdir()
    for path in [open_dir, *open_dir.rglob("*")]:
        os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
    # nobody's other processes must not count against the build's limit
    others = [subprocess.Popen([*SETPRIV_NOBODY, "sleep", "20"]) for _ in range(40)]
    try:
        script = (
            "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
            "from tests.test_hardening_sandbox import count_started, fork_spec;"
            "from bootstrap.sandbox import Bind;"
            "spec = fork_spec(Bind(Path(sys.argv[2]), sys.argv[3]), Path(sys.argv[4]), 50);"
            "import json; print(json.dumps(count_started(spec, Path(sys.argv[4]).parent / 'log')))"
        )
        args = [script, REPO, busybox, BUSYBOX_LOGICAL, open_dir / "build"]
        run = subprocess.run(
            [*SETPRIV_NOBODY, sys.executable, "-c", *map(str, args)],
            capture_output=True,
            text=True,
            cwd="/",
        )
    finally:
        for other in others:
            other.kill()
            other.wait()
    started, log = json.loads(run.stdout or "[0, null]")
    assert "can't fork" in log and 30 <= started <= 50, (log, run.stderr)


def cgroups_of(pid: int) -> list[str]:
    """The pids cgroups a `bootstrap` process `pid` made (cgroup v1 or v2 layout)."""
    pattern = f"bootstrap-build-{pid}-*"
    return glob.glob(f"/sys/fs/cgroup/{pattern}") + glob.glob(f"/sys/fs/cgroup/*/{pattern}")


@needs_root
def test_the_cgroup_of_a_killed_build_goes_with_the_next_build(
    open_dir, run_engine, sandbox_store, tmp_path
):
    probe = sandbox._pids_cgroup(10)
    if probe is None:
        pytest.skip("no pids cgroup can be made here: the process limit is not enforced as root")
    probe.rmdir()
    tmp, root = open_dir / "t", open_dir / "root"
    prepare(tmp)
    proc = run_engine(tmp, root, "setuid")
    wait_until(lambda: files_named(root / "store", "ready"), proc)
    assert len(cgroups_of(proc.pid)) == 1  # the build's limit
    kill_hard(proc)
    assert len(cgroups_of(proc.pid)) == 1  # left behind, empty
    spec = SandboxSpec(["true"], sandbox_store[1], {"PATH": BUSYBOX_BIN}, [sandbox_store[0]])
    assert run_in_sandbox(spec, tmp_path / "log").succeeded
    assert cgroups_of(proc.pid) == []


def test_the_log_is_cut_at_its_limit_and_says_so(sandbox_store, tmp_path):
    spec = SandboxSpec(
        command=[
            "sh",
            "-c",
            "busybox yes 0123456789abcdef | busybox head -c 3000000; echo; echo done",
        ],
        build_dir=sandbox_store[1],
        env={"PATH": BUSYBOX_BIN},
        inputs=[sandbox_store[0]],
        max_seconds=60,
        limits=BuildLimits(max_log_bytes=1 << 20),
    )
    lines: list[str] = []
    result = run_in_sandbox(spec, tmp_path / "log", lines.append)
    assert result.succeeded and lines[-1] == "done"  # read to the end: the builder never blocked
    log = (tmp_path / "log").read_bytes()
    assert log.startswith(b"0123456789abcdef\n") and len(log) < (1 << 20) + 200
    assert log.endswith(
        b"\nbootstrap: log truncated: the builder printed more than 1048576 bytes; the rest is "
        b"not kept ($BOOTSTRAP_MAX_LOG sets the limit)\n"
    )


def test_an_output_over_its_size_limit_fails_the_build(store, tmp_path):
    limits = BuildLimits(max_output_bytes=2_500_000)  # the seed (2 MB) fits
    graph, summary = realise(store, tmp_path / "t", "big-output", limits=limits)
    [reason] = summary.failed.values()
    assert reason == (
        "big-output-1: its outputs hold 3000000 bytes; at most 2500000 are allowed "
        "($BOOTSTRAP_MAX_OUTPUT sets the limit)"
    )
    assert not store.is_valid(graph.derivations[graph.targets[0]].outputs["out"].path)
    assert not [e for e in store.physical_dir.iterdir() if e.name.startswith(".tmp-")]


def test_limits_have_documented_defaults_and_come_from_the_environment():
    assert BuildLimits() == BuildLimits(4096, 64 << 20, 16 << 30)
    assert BuildLimits.from_env({}) == BuildLimits()
    env = {
        "BOOTSTRAP_MAX_PROCESSES": "100",
        "BOOTSTRAP_MAX_LOG": "1M",
        "BOOTSTRAP_MAX_OUTPUT": "2G",
    }
    assert BuildLimits.from_env(env) == BuildLimits(100, 1 << 20, 2 << 30)
    with pytest.raises(BootstrapError, match=r"^BOOTSTRAP_MAX_LOG: expected .*found 'lots'$"):
        BuildLimits.from_env({"BOOTSTRAP_MAX_LOG": "lots"})


def test_run_kills_a_build_silent_for_an_hour_by_default():
    args = build_parser().parse_args(["run", "x86_64-linux"])
    assert args.max_silent == 3600
    assert build_parser().parse_args(["run", "x86_64-linux", "--max-silent", "0"]).max_silent == 0
