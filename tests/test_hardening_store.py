"""Issue #17, the store's part: each fault reproduced with real processes, files and SQLite.

A gc started while a `store add` is copying; a `store add` killed mid-copy; a relative
`--store`; a tree changing while it is added; a full file system (a real tmpfs, mounted here
when run as root); broken input that once gave tracebacks; gc on a store whose chain has no
`result` link, or that holds an interrupted build; `verify --repair` of a derivation output.
The CLI runs in subprocesses, as a user runs it.
"""

from __future__ import annotations

import errno
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bootstrap.hashing import hash_bytes
from bootstrap.nar import nar_hash
from bootstrap.store import Store
from bootstrap.store.gc import collect_garbage
from bootstrap.storepath import source_path, text_path

from .engine_fixtures import busybox_seed, make_recipes, requires_busybox, wait_until

REPO = Path(__file__).resolve().parent.parent
STORE_DIR = "/bootstrap/store"


def cli_command(*args: object) -> list[str]:
    return [sys.executable, "-m", "bootstrap", *map(str, args)]


def cli_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "BOOTSTRAP_PROGRESS": "0", **extra}


def bootstrap(*args: object, cwd: Path | None = None, env: dict | None = None):
    """Run `bootstrap ARGS` (this checkout's) in a subprocess; the CompletedProcess, as text."""
    return subprocess.run(
        cli_command(*args), cwd=cwd, env=env or cli_env(), capture_output=True, text=True
    )


def start(*args: object, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        cli_command(*args), env=env or cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def assert_one_line_error(result, *words: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("bootstrap: error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def make_tree(root: Path, files: int, size: int) -> Path:
    (root / "sub").mkdir(parents=True)
    for i in range(files):
        (root / ("sub" if i % 2 else "") / f"f{i}").write_bytes(bytes([i % 256]) * size)
    return root


def temps(store_root: Path) -> list[Path]:
    physical = store_root / "store"
    return sorted(physical.glob(".tmp-*")) if physical.exists() else []


def pause_mid_copy(proc: subprocess.Popen, store_root: Path) -> Path:
    """Let `proc` run in slices of about 2 ms until its `.tmp-add-*` holds some copied files,
    and leave it stopped (SIGSTOP) there; return that directory."""
    os.kill(proc.pid, signal.SIGSTOP)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = [t for t in temps(store_root) if t.name.startswith(".tmp-add-")]
        if found and any(p.is_file() for p in found[0].rglob("*")):
            return found[0]
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.002)
        os.kill(proc.pid, signal.SIGSTOP)
    raise AssertionError("the add never started copying")


# -- 3: gc during an add -------------------------------------------------------------------


def test_gc_started_during_an_add_neither_truncates_nor_deletes_it(tmp_path):
    src = make_tree(tmp_path / "src", files=80, size=256 * 1024)
    root = tmp_path / "root"
    add = start("store", "add", src, "--store", root)
    try:
        pause_mid_copy(add, root)
        gc = bootstrap("store", "gc", "--store", root)
    finally:
        os.kill(add.pid, signal.SIGCONT)
    out, err = add.communicate(timeout=120)
    # the add holds the GC lock shared: gc does not start, and the add completes
    assert gc.returncode == 1 and "gc not started" in gc.stderr, (gc.stdout, gc.stderr)
    assert add.returncode == 0, err
    added = root / "store" / out.decode().strip().rsplit("/", 1)[1]
    assert sum(1 for p in added.rglob("*") if p.is_file()) == 80
    assert bootstrap("store", "verify", "--store", root).returncode == 0


HOLD_TEMP = """
import sys, time
from pathlib import Path
from bootstrap.store import Store
store = Store(Path(sys.argv[1]), "/bootstrap/store")
with store.temp_dir("add") as tmp:
    tmp.mkdir()
    (tmp / "copied").write_text("so far")
    print(tmp, flush=True)
    time.sleep(600)
"""


def test_gc_keeps_the_temp_dir_of_a_live_process(tmp_path):
    root = tmp_path / "root"
    owner = subprocess.Popen(
        [sys.executable, "-c", HOLD_TEMP, root], env=cli_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        tmp = Path(owner.stdout.readline().strip())
        store = Store(root, STORE_DIR)
        assert os.fspath(tmp) not in collect_garbage(store).garbage_files
        assert (tmp / "copied").read_text() == "so far"
    finally:
        owner.kill()
        owner.wait()
    assert os.fspath(tmp) in collect_garbage(store).garbage_files
    assert not tmp.exists()


# -- 10: a killed add's leftover -------------------------------------------------------------


def test_the_next_add_removes_a_killed_adds_leftover(tmp_path):
    src = make_tree(tmp_path / "src", files=80, size=256 * 1024)
    root = tmp_path / "root"
    add = start("store", "add", src, "--store", root)
    pause_mid_copy(add, root)
    add.kill()
    add.wait()
    assert temps(root), "the kill left no temp dir"
    assert bootstrap("store", "add", src, "--store", root).returncode == 0
    assert temps(root) == []
    assert bootstrap("store", "verify", "--store", root).returncode == 0


# -- 4: a relative --store -----------------------------------------------------------------------


def snapshot(root: Path) -> list[tuple]:
    """Every entry under `root`, with what a file or link holds and when it was modified (a
    directory's own mtime is left out: SQLite makes and removes its -wal and -shm files on
    every open)."""
    entries = []
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if path.is_symlink():
            entries.append((os.fspath(path.relative_to(root)), os.readlink(path)))
        elif not path.is_dir():
            entries.append((os.fspath(path.relative_to(root)), st.st_size, st.st_mtime_ns))
    return entries


def test_a_relative_store_keeps_its_roots_and_dry_run_writes_nothing(tmp_path):
    (tmp_path / "kept").write_text("rooted\n")
    (tmp_path / "sub").mkdir()
    added = bootstrap("store", "add", "kept", "--store", "rel", cwd=tmp_path)
    path = added.stdout.strip()
    bootstrap("store", "add-root", path, "--link", "result", "--store", "rel", cwd=tmp_path)
    assert (tmp_path / "result").read_text() == "rooted\n"
    before = snapshot(tmp_path / "rel")

    dry = bootstrap("store", "gc", "--dry-run", "--store", "../rel", cwd=tmp_path / "sub")
    assert dry.returncode == 0, dry.stderr
    assert path not in dry.stdout
    assert snapshot(tmp_path / "rel") == before

    gc = bootstrap("store", "gc", "--store", "../rel", cwd=tmp_path / "sub")
    assert gc.returncode == 0 and "deleted 0 paths" in gc.stdout, gc.stdout
    info = bootstrap("store", "path-info", path, "--store", "rel", cwd=tmp_path)
    assert info.returncode == 0 and (tmp_path / "result").read_text() == "rooted\n"


# -- 5: a tree that changes while it is added ----------------------------------------------------

FLIP = """
import itertools, os, sys
src, scratch = sys.argv[1:]
for i in itertools.count():
    with open(scratch, "wb") as out:
        out.write(bytes([i % 251]) * 65536)
    os.replace(scratch, os.path.join(src, "f0"))
"""


def test_a_tree_changing_during_add_gives_a_path_named_from_its_content(store, tmp_path):
    src = make_tree(tmp_path / "src", files=200, size=64 * 1024)
    flipper = subprocess.Popen([sys.executable, "-c", FLIP, src, tmp_path / "scratch"])
    try:
        added = [store.add_path(src, "moving") for _ in range(8)]
    finally:
        flipper.kill()
        flipper.wait()
    for path in added:
        digest = nar_hash(store.real_path(path))[0]
        assert source_path(digest, "moving", store.store_dir) == path
        assert store.query_info(path).ca == f"fixed:r:{digest}"
    assert bootstrap("store", "verify", "--store", store.root).returncode == 0


def test_verify_reports_paths_whose_name_or_ca_is_not_their_content(store, tmp_path):
    """What an add of a changing tree registered before: the name and `ca` from the bytes
    hashed, the NAR hash from other bytes copied (so the NAR hash check alone passes)."""
    (tmp_path / "hashed").write_text("the bytes hashed")
    named_for = nar_hash(tmp_path / "hashed")[0]
    added = source_path(named_for, "hashed", store.store_dir)
    text = text_path(b"declared", "note.txt", store.store_dir)
    registered = [
        (added, "the bytes copied", f"fixed:r:{named_for}"),
        (text, "other", f"text:{hash_bytes('sha256', b'declared')}"),
    ]
    for path, content, ca in registered:
        with store.temp_dir("add") as tmp, store.lock(path):
            tmp.write_text(content)
            store.register_output(tmp, path, [], ca=ca, scan=False)
    result = bootstrap("store", "verify", "--store", store.root)
    assert result.returncode == 1
    assert f"misnamed: {added}: its ca says {named_for}" in result.stdout
    assert f"misnamed: {text}: its ca says" in result.stdout


# -- 6: a full disk -------------------------------------------------------------------------------


@pytest.fixture
def small_fs(tmp_path):
    """A real 48 MiB tmpfs mounted for the test (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", mnt])
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", mnt], check=False)


def fill(directory: Path) -> None:
    """Write zeros into `directory/filler` until the file system is full."""
    with open(directory / "filler", "wb", buffering=0) as out:
        try:
            while True:
                out.write(bytes(1 << 16))
        except OSError as err:
            assert err.errno == errno.ENOSPC
    with open(directory / "filler", "ab", buffering=0) as out:  # the last, partial page
        for _ in itertools.count():
            try:
                out.write(b"\0")
            except OSError:
                break


def free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def test_gc_frees_space_on_a_full_disk(small_fs, tmp_path):
    root = small_fs / "root"
    (tmp_path / "big").write_bytes(os.urandom(12 << 20))
    (tmp_path / "small").write_text("keep")
    (tmp_path / "late").write_text("too late")
    bootstrap("store", "add", tmp_path / "big", "--store", root)
    small = bootstrap("store", "add", tmp_path / "small", "--store", root).stdout.strip()
    bootstrap("store", "add-root", small, "--store", root)
    fill(small_fs)

    late = bootstrap("store", "add", tmp_path / "late", "--store", root)
    assert_one_line_error(late, f"no space left on the file system mounted at {small_fs}")
    assert temps(root) == []

    gc = bootstrap("store", "gc", "--store", root)
    assert gc.returncode == 0, gc.stderr
    assert "deleted 1 paths" in gc.stdout
    assert free_bytes(small_fs) >= 8 << 20
    check = bootstrap("store", "verify", "--store", root)
    assert check.returncode == 0 and "checked 1 paths" in check.stdout


FILL_SCRIPTS = {
    # the output is made, then the build directory (on the store's file system) fills it
    "fill.sh": "echo made > $out\ncat /dev/zero > filler 2>/dev/null || true\n",
    "hello.sh": textwrap.dedent("""\
        mkdir -p $out/bin
        printf '#!%s\\necho hello\\n' "$SHELL" > $out/bin/hello
        chmod +x $out/bin/hello
    """),
    "greet.sh": 'hello > $out\nif [ -n "${speed:-}" ]; then echo "$speed" >> $out; fi\n',
    "steps.sh": textwrap.dedent("""\
        if [ -f part1 ]; then echo "resuming after part 1"; else echo "part 1" > part1; fi
        [ -f paused-once ] || { touch paused-once; sleep 30; }
        cp part1 $out
    """),
}

STAGES_INIT = """
from bootstrap.hashing import Hash
from bootstrap.recipe import Package, Seed, Stage

seed = Seed("test-seed", Hash.parse({archive_hash!r}), Hash.parse({tree_hash!r}), ({url!r},))
fill = Package("fill", "1", "fill.sh", shell=seed)
hello = Package("hello", "1", "hello.sh", shell=seed)
greet = Package(
    "greet", "1", "greet.sh", shell=seed, inputs=(hello,), profiles={{"fast": {{"speed": "1"}}}}
)
steps = Package("steps", "1", "steps.sh", shell=seed, resumable=True)

PROFILES = {{"default": "what users ship", "fast": "sooner"}}
TARGETS = {{"x86_64-linux": [Stage("stage0", (seed,)), Stage("stage1", {packages})]}}
"""


def make_stages(tmp: Path, packages: str) -> Path:
    """A recipes directory whose target builds the seed, then `packages` (a tuple's source)."""
    seed, _ = busybox_seed(tmp)
    recipes = make_recipes(tmp, FILL_SCRIPTS)
    (recipes.stages_dir / "__init__.py").write_text(
        STAGES_INIT.format(
            archive_hash=str(seed.archive_hash),
            tree_hash=str(seed.tree_hash),
            url=seed.urls[0],
            packages=packages,
        )
    )
    return recipes.stages_dir


def run_env(tmp: Path, root: Path) -> dict[str, str]:
    return cli_env(BOOTSTRAP_STORE=str(root), BOOTSTRAP_CACHE_DIR=str(tmp / "cache"))


def outputs(stages: Path, env: dict, *args: str) -> dict[str, str]:
    """Package name -> output path, as `bootstrap show` lists them."""
    shown = bootstrap("show", "--stages", stages, *args, env=env).stdout.splitlines()[1:]
    return {line.split()[1]: line.split()[-1] for line in shown}


@requires_busybox
def test_a_full_disk_fails_one_build_in_one_line_and_keep_going_goes_on(small_fs, tmp_path):
    stages = make_stages(tmp_path, "(fill, hello)")
    env = run_env(tmp_path, small_fs / "root")
    run = bootstrap("run", "--stages", stages, "--keep-going", "--no-out-link", env=env)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert "1 failed" in run.stdout, run.stdout
    failed = next(line for line in run.stdout.splitlines() if "FAILED" in line)
    assert f"FAILED fill-1: no space left on the file system mounted at {small_fs}" in failed
    built = outputs(stages, env)
    store = Store(small_fs / "root", STORE_DIR)
    assert not store.is_valid(built["fill-1"]) and not store.real_path(built["fill-1"]).exists()
    assert store.is_valid(built["hello-1"])  # built after the failure: --keep-going
    assert bootstrap("store", "verify", env=env).returncode == 0


# -- 7: one line where one line is promised -------------------------------------------------------


def test_a_link_into_a_missing_directory_is_one_line(tmp_path):
    (tmp_path / "f").write_text("x")
    root = tmp_path / "root"
    path = bootstrap("store", "add", tmp_path / "f", "--store", root).stdout.strip()
    nowhere = tmp_path / "nodir" / "result"
    linked = bootstrap("store", "add-root", path, "--link", nowhere, "--store", root)
    assert_one_line_error(linked, f"{tmp_path / 'nodir'} does not exist")
    assert not (tmp_path / "nodir").exists()


def test_a_store_root_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "plain").write_text("not a directory")
    added = bootstrap("store", "add", tmp_path / "f", "--store", tmp_path / "plain")
    assert_one_line_error(added, f"{tmp_path / 'plain'}: the store root must be a directory")


def test_a_corrupt_database_is_one_line(tmp_path):
    (tmp_path / "f").write_text("x")
    root = tmp_path / "root"
    assert bootstrap("store", "add", tmp_path / "f", "--store", root).returncode == 0
    db = root / "var" / "bootstrap" / "db.sqlite"
    db.write_bytes(os.urandom(8192))
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    for args in (("store", "add", tmp_path / "f"), ("store", "verify"), ("store", "gc")):
        assert_one_line_error(bootstrap(*args, "--store", root), f"{db}: the store's database")


def test_a_deep_tree_is_added(tmp_path):
    deep = leaf = tmp_path / "deep"
    deep.mkdir()
    for _ in range(1000):
        leaf /= "d"
        leaf.mkdir()
    (leaf / "bottom").write_text("reached")
    root = tmp_path / "root"
    try:
        added = bootstrap("store", "add", deep, "--store", root)
        assert added.returncode == 0, added.stderr[-500:]
        assert bootstrap("store", "verify", "--store", root).returncode == 0
    finally:  # pytest's own clean-up would recurse too deep
        subprocess.run(["chmod", "-R", "u+w", deep, root], check=False)
        subprocess.run(["rm", "-rf", deep, root], check=True)


def test_files_vanishing_mid_add_are_one_line_and_leave_nothing(tmp_path):
    src = make_tree(tmp_path / "src", files=80, size=256 * 1024)
    root = tmp_path / "root"
    add = start("store", "add", src, "--store", root)
    try:
        pause_mid_copy(add, root)
        for file in sorted(src.rglob("f*")):
            file.unlink()
    finally:
        os.kill(add.pid, signal.SIGCONT)
    out, err = add.communicate(timeout=120)
    result = subprocess.CompletedProcess(add.args, add.returncode, out.decode(), err.decode())
    assert_one_line_error(result, "vanished")
    assert temps(root) == []
    assert "checked 0 paths" in bootstrap("store", "verify", "--store", root).stdout


# -- gc keeps what run built, and the kept work of interrupted builds ---------------------------


@requires_busybox
def test_gc_keeps_the_last_run_of_each_target_and_profile(tmp_path):
    root = tmp_path / "root"
    stages = make_stages(tmp_path, "(hello, greet)")
    env = run_env(tmp_path, root)
    for profile in ("default", "fast"):
        run = bootstrap("run", "--stages", stages, "--profile", profile, "--no-out-link", env=env)
        assert run.returncode == 0, run.stderr
    default, fast = outputs(stages, env), outputs(stages, env, "--profile", "fast")
    assert default["greet-1"] != fast["greet-1"]
    store = Store(root, STORE_DIR)
    valid = store.all_paths()

    gc = bootstrap("store", "gc", env=env)
    assert gc.returncode == 0 and "deleted 0 paths" in gc.stdout, gc.stdout
    assert store.all_paths() == valid

    # the next run of a profile replaces its root: greet (default) is no longer held
    run = bootstrap("run", "--stages", stages, "--until", "stage0", "--no-out-link", env=env)
    assert run.returncode == 0, run.stderr
    bootstrap("store", "gc", env=env)
    assert not store.is_valid(default["greet-1"])
    assert store.is_valid(fast["greet-1"]) and store.is_valid(default["hello-1"])


@requires_busybox
def test_gc_keeps_an_interrupted_build_of_a_live_derivation(tmp_path):
    root = tmp_path / "root"
    stages = make_stages(tmp_path, "(steps,)")
    env = run_env(tmp_path, root)
    run = start("run", "--stages", stages, "--no-out-link", env=env)
    physical = root / "store"
    wait_until(lambda: list(physical.glob(".partial-*-steps-1/**/paused-once")), run)
    run.send_signal(signal.SIGTERM)
    run.wait(timeout=60)
    [kept] = physical.glob(".partial-*")

    gc = bootstrap("store", "gc", env=env)
    assert gc.returncode == 0 and f"kept {kept}" in gc.stdout, gc.stdout
    assert [p.read_text() for p in kept.rglob("part1")] == ["part 1\n"]
    bootstrap("store", "gc", "--delete-partial", env=env)
    assert not kept.exists()


# -- verify --repair rebuilds ----------------------------------------------------------------------


@requires_busybox
def test_repair_rebuilds_a_corrupt_output_and_keeps_what_refers_to_it(tmp_path):
    root = tmp_path / "root"
    stages = make_stages(tmp_path, "(hello, greet)")
    env = run_env(tmp_path, root)
    assert bootstrap("run", "--stages", stages, "--no-out-link", env=env).returncode == 0
    built = outputs(stages, env)
    seed, hello = built["test-seed"], built["hello-1"]
    store = Store(root, STORE_DIR)
    valid = store.all_paths()
    assert seed in store.references(hello)
    sh = store.real_path(seed) / "bin" / "sh"
    sh.parent.chmod(0o755)
    sh.unlink()
    sh.write_text("not busybox")

    check = bootstrap("store", "verify", env=env)
    assert check.returncode == 1 and f"corrupt: {seed}" in check.stdout
    repair = bootstrap("store", "verify", "--repair", env=env)
    assert repair.returncode == 0, (repair.stdout, repair.stderr)
    assert f"rebuilt: {seed}" in repair.stdout
    assert f"restored: {hello}" in repair.stdout
    assert "removed:" not in repair.stdout
    assert store.all_paths() == valid
    assert bootstrap("store", "verify", env=env).returncode == 0
    assert os.path.islink(sh)


def test_repair_substitutes_a_corrupt_path_it_cannot_rebuild(tmp_path):
    """An added path has no .drv; a binary cache that has it restores it (and its referrer
    is put back)."""
    root = tmp_path / "root"
    (tmp_path / "lib").write_text("library\n")
    lib = bootstrap("store", "add", tmp_path / "lib", "--store", root).stdout.strip()
    cache = tmp_path / "cache"
    exported = bootstrap("export", lib, "--to", cache, "--compression", "none", "--store", root)
    assert exported.returncode == 0, exported.stderr
    store = Store(root, STORE_DIR)
    (tmp_path / "app").write_text(f"uses {lib}\n")
    app = store.add_path(tmp_path / "app", references=[lib])
    real = store.real_path(lib)
    real.chmod(0o644)
    real.write_text("tampered\n")

    cache_flags = ("--substituters", cache.as_uri(), "--no-check-sigs")
    repair = bootstrap("store", "verify", "--repair", "--store", root, *cache_flags)
    assert repair.returncode == 0, (repair.stdout, repair.stderr)
    assert f"substituted: {lib}" in repair.stdout and f"restored: {app}" in repair.stdout
    assert real.read_text() == "library\n"
    assert bootstrap("store", "verify", "--store", root).returncode == 0
