"""The build engine end to end: recipes -> derivations -> sandboxed builds -> store."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bootstrap.build import ATTEMPTS_FILE, AttemptTimes, BuildOptions, log_path, realise
from bootstrap.elf.inspect import read_elf
from bootstrap.errors import BootstrapError
from bootstrap.fetch import Source
from bootstrap.hashing import hash_bytes
from bootstrap.nar import nar_hash
from bootstrap.recipe import Evaluator, Package, Recipes, Seed
from bootstrap.sandbox import DEFAULT_TICK_SECONDS, Bind, SandboxSpec, run_in_sandbox
from bootstrap.scheduler import Scheduler
from bootstrap.store import Store
from bootstrap.store.gc import collect_garbage
from bootstrap.store.verify import verify_store

from .engine_fixtures import (
    busybox_seed,
    make_recipes,
    offline_fetcher,
    requires_busybox,
    wait_until,
)

pytestmark = requires_busybox

SCRIPTS = {
    "hello.sh": textwrap.dedent("""\
        mkdir -p $out/bin
        printf '#!%s\\necho hello from %s\\n' "$SHELL" "$name" > $out/bin/hello
        chmod +x $out/bin/hello
    """),
    "user.sh": textwrap.dedent("""\
        unpack_sources
        apply_patches
        mkdir -p $out
        "$hello/bin/hello" > $out/greeting  # each input is a variable named after it
        cat data.txt >> $out/greeting
    """),
    "peek.sh": "ls /usr > $out\n",
    "slow.sh": "sleep 8; echo done > $out\n",
    "fail.sh": "echo about to fail; exit 3\n",
    "random.sh": "od -An -N8 -tx1 /dev/urandom > $out\n",
    # a resumable builder: its first attempt stops in the middle (for a test to interrupt it),
    # each attempt after some CPU work (for its recorded time)
    "steps.sh": textwrap.dedent("""\
        if [ -f part1 ]; then echo "resuming after part 1"; else echo "part 1" > part1; fi
        i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done
        [ -f paused-once ] || { touch paused-once; sleep 30; }
        cp part1 $out
    """),
}


def chain(tmp: Path, data: bytes = b"payload\n"):
    """seed -> hello -> user (which also fetches a file:// source and applies a patch)."""
    tmp.mkdir(parents=True, exist_ok=True)
    seed, _ = busybox_seed(tmp)
    if not (tmp / "data.txt").exists():
        (tmp / "data.txt").write_bytes(data)
    src = Source.of((tmp / "data.txt").as_uri(), hash_bytes("sha256", data), name="data.txt")
    hello = Package("hello", "1.0", "hello.sh", shell=seed)
    user = Package(
        "user",
        "1.0",
        "user.sh",
        sources=(src,),
        shell=seed,
        inputs=(hello,),
        patches=("fix.patch",),
    )
    return seed, hello, user


PATCH = "--- a/data.txt\n+++ b/data.txt\n@@ -1 +1 @@\n-payload\n+patched payload\n"


def make_scheduler(store, tmp, tick_seconds=DEFAULT_TICK_SECONDS, **kw) -> Scheduler:
    options = BuildOptions(fetcher=offline_fetcher(tmp), tick_seconds=tick_seconds)
    return Scheduler(store, options, progress=False, **kw)


def recipes_in(tmp: Path):
    return make_recipes(tmp / "r", SCRIPTS, {"fix.patch": PATCH})


def evaluate(store, tmp, *targets):
    recipes = recipes_in(tmp)
    return Evaluator(store.store_dir, "x86_64-linux", recipes).evaluate(list(targets))


def test_chain_builds_with_references_logs_and_reuse(store, tmp_path):
    _seed, _hello, user = chain(tmp_path)
    graph = evaluate(store, tmp_path, user)
    summary = make_scheduler(store, tmp_path).realise(graph)
    assert summary.ok and len(summary.built) == 4  # seed, the data.txt download, hello, user
    user_drv = graph.derivations[graph.targets[0]]
    out = user_drv.outputs["out"].path
    assert store.real_path(out).joinpath("greeting").read_text() == (
        "hello from hello-1.0\npatched payload\n"
    )
    hello_out = next(p for p, d in graph.derivations.items() if d.name == "hello-1.0")
    hello_path = graph.derivations[hello_out].outputs["out"].path
    seed_path = next(d for d in graph.derivations.values() if d.name == "test-seed")
    # hello's script names the seed's shell, so hello references the seed; user references
    # nothing (its greeting is plain text).
    assert store.references(hello_path) == [seed_path.outputs["out"].path]
    assert store.references(out) == []
    assert store.query_info(out).deriver == graph.targets[0]
    assert "building user-1.0" in log_path(store, graph.targets[0]).read_text()
    again = make_scheduler(store, tmp_path).realise(graph)
    assert again.built == [] and len(again.reused) == len(graph.derivations)
    assert verify_store(store).ok


def test_without_a_progress_bar_a_build_reports_how_long_it_has_run(store, tmp_path, capsys):
    _seed, _hello, user = chain(tmp_path)
    graph = evaluate(store, tmp_path, user)
    scheduler = make_scheduler(store, tmp_path, heartbeat_seconds=0)
    assert scheduler.realise(graph).ok
    # user.sh applies its patch, and the prelude says so
    assert "  user-1.0: 0 min, at: applying fix.patch" in capsys.readouterr().err.splitlines()


def test_builds_are_bit_identical_in_two_stores(tmp_path):
    hashes = []
    for where in ("one", "two"):
        store = Store(tmp_path / where, "/bootstrap/store")
        _, _, user = chain(tmp_path / f"t-{where}")
        graph = evaluate(store, tmp_path / f"t-{where}", user)
        make_scheduler(store, tmp_path / f"t-{where}").realise(graph)
        # .drv files differ (the file:// URLs differ); outputs must not.
        outputs = [p for p in store.all_paths() if not p.endswith(".drv")]
        hashes.append({p: store.query_info(p).nar_hash for p in outputs})
    assert hashes[0] == hashes[1] and len(hashes[0]) == 8  # 4 outputs, 4 local files


def test_builder_cannot_see_host_usr(store, tmp_path):
    seed, _, _ = chain(tmp_path)
    graph = evaluate(store, tmp_path, Package("peek", "1", "peek.sh", shell=seed))
    summary = make_scheduler(store, tmp_path).realise(graph)
    assert list(summary.failed) == graph.targets
    assert "No such file or directory" in log_path(store, graph.targets[0]).read_text()


def test_failure_reports_log_tail_and_registers_nothing(store, tmp_path):
    seed, _, _ = chain(tmp_path)
    graph = evaluate(store, tmp_path, Package("bad", "1", "fail.sh", shell=seed))
    summary = make_scheduler(store, tmp_path).realise(graph)
    reason = summary.failed[graph.targets[0]]
    assert "exited with code 3" in reason and "about to fail" in reason
    out = graph.derivations[graph.targets[0]].outputs["out"].path
    assert not store.is_valid(out) and not store.real_path(out).exists()
    assert not [e for e in store.physical_dir.iterdir() if e.name.startswith(".tmp-")]


def test_wrong_source_hash_leaves_store_unchanged(store, tmp_path):
    seed, _, _ = chain(tmp_path)
    (tmp_path / "real.txt").write_text("real")
    bad = Source.of((tmp_path / "real.txt").as_uri(), hash_bytes("sha256", b"fake"), "real.txt")
    pkg = Package("user", "1.0", "user.sh", sources=(bad,), shell=seed)
    graph = evaluate(store, tmp_path, pkg)
    summary = make_scheduler(store, tmp_path).realise(graph)
    (failed_reason,) = summary.failed.values()
    assert "hash mismatch" in failed_reason and hashlib.sha256(b"fake").hexdigest() in failed_reason
    fetch_out = next(d for d in graph.derivations.values() if d.name == "real.txt")
    assert not store.is_valid(fetch_out.outputs["out"].path)
    assert graph.targets[0] in summary.skipped


def test_keep_going_builds_independent_work(store, tmp_path):
    seed, hello, _ = chain(tmp_path)
    bad = Package("bad", "1", "fail.sh", shell=seed)
    graph = evaluate(store, tmp_path, bad, hello)
    summary = make_scheduler(store, tmp_path, keep_going=True, max_jobs=2).realise(graph)
    assert len(summary.failed) == 1
    assert store.is_valid(graph.derivations[graph.targets[1]].outputs["out"].path)


def test_one_job_at_a_time_announces_each_build_when_it_starts(store, tmp_path, capsys):
    seed, _, _ = chain(tmp_path)
    first, second = (Package(name, "1", "hello.sh", shell=seed) for name in ("a", "b"))
    graph = evaluate(store, tmp_path, first, second)
    summary = make_scheduler(store, tmp_path, max_jobs=1).realise(graph)
    assert len(summary.built) == 3  # the seed, a and b
    events = [line.split()[0] for line in capsys.readouterr().err.splitlines()]
    assert events == ["building", "built"] * 3


def test_unsandboxed_run_is_refused_when_store_is_remapped(store, tmp_path):
    _seed, hello, _ = chain(tmp_path)
    graph = evaluate(store, tmp_path, hello)
    options = BuildOptions(fetcher=offline_fetcher(tmp_path), sandboxed=False)
    summary = Scheduler(store, options, progress=False).realise(graph)
    assert any("needs a sandbox" in reason for reason in summary.failed.values())


# SIGINT is taken as Python does by default even when the tests were started with it ignored
# (as everything started with `&` from a script is).
RUN_SCRIPT = """
import signal, sys
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, sys.argv[3])
from tests.test_engine import chain, evaluate, make_scheduler
from bootstrap.recipe import Package
from bootstrap.store import Store
tmp = Path(sys.argv[1])
store = Store(Path(sys.argv[2]), "/bootstrap/store")
seed, hello, user = chain(tmp)
if sys.argv[4:] == ["steps"]:
    targets = [Package("steps", "1", "steps.sh", shell=seed, resumable=True)]
else:
    targets = [Package("slow", "1", "slow.sh", shell=seed, inputs=(hello,)), user]
scheduler = make_scheduler(store, tmp, tick_seconds=0.2, max_jobs=2)
summary = scheduler.realise(evaluate(store, tmp, *targets))
print("BUILT", len(summary.built), "FAILED", len(summary.failed), flush=True)
"""


def run_engine(tmp_path: Path, root: Path, *targets: str) -> subprocess.Popen:
    repo = Path(__file__).resolve().parent.parent
    return subprocess.Popen(
        [sys.executable, "-c", RUN_SCRIPT, tmp_path, root, repo, *targets],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_run_resumes(tmp_path, sig):
    root = tmp_path / "root"
    chain(tmp_path / "t")
    recipes_in(tmp_path / "t")
    proc = run_engine(tmp_path / "t", root)
    log_dir = root / "var" / "bootstrap" / "logs"
    wait_until(lambda: any("slow" in p.name for p in log_dir.glob("*.log")), proc)
    time.sleep(0.5)
    os.killpg(proc.pid, sig)
    proc.wait(timeout=30)
    store = Store(root, "/bootstrap/store")
    assert verify_store(store).ok
    done_before = len(store.all_paths())
    assert not any(p.endswith("-slow-1") for p in store.all_paths())
    assert not subprocess.run(["pgrep", "-f", "sleep 8"], capture_output=True).stdout
    again = run_engine(tmp_path / "t", root)
    out, err = again.communicate(timeout=120)
    assert "FAILED 0" in out, err
    assert any(p.endswith("-slow-1") for p in store.all_paths())
    assert done_before > 2  # the earlier builds were kept and reused


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_resumable_build_continues_where_it_stopped(tmp_path, sig):
    root = tmp_path / "root"
    chain(tmp_path / "t")
    recipes_in(tmp_path / "t")
    proc = run_engine(tmp_path / "t", root, "steps")
    store = Store(root, "/bootstrap/store")
    paused = ".partial-*-steps-1/build/paused-once"
    wait_until(lambda: list(store.physical_dir.glob(paused)), proc)
    [kept] = store.physical_dir.glob(".partial-*")
    # its time so far is recorded while it runs: the CPU work before the pause, and the pause
    wait_until(lambda: AttemptTimes.read(kept / ATTEMPTS_FILE).wall > 0.5, proc)
    os.killpg(proc.pid, sig)
    proc.wait(timeout=30)
    first = AttemptTimes.read(kept / ATTEMPTS_FILE)
    assert first.attempts == 1 and first.cpu > 0.1, first
    assert (kept / "build" / "part1").read_text() == "part 1\n"
    assert not any(p.endswith("-steps-1") for p in store.all_paths())
    assert verify_store(store).ok
    assert os.fspath(kept) in collect_garbage(store, dry_run=True).garbage_files
    out, err = run_engine(tmp_path / "t", root, "steps").communicate(timeout=60)
    assert "FAILED 0" in out, err
    assert "building steps-1 (resuming its interrupted build: 1 attempt(s) so far," in err
    [built] = [p for p in store.all_paths() if p.endswith("-steps-1")]
    assert store.real_path(built).read_text() == "part 1\n"
    took = store.db.build_time(built)  # both attempts: the second did the CPU work again
    assert took.wall > first.wall and took.cpu > first.cpu + 0.1, (took, first)
    log = log_path(store, store.query_info(built).deriver).read_text()
    assert log.count("building steps-1 with steps.sh") == 2  # both attempts
    assert log.index("resuming after part 1") > log.rindex("building steps-1 with steps.sh")
    assert not kept.exists()


def test_a_resumable_build_that_fails_starts_afresh_next_time(store, tmp_path):
    seed, _, _ = chain(tmp_path)
    bad = Package("bad", "1", "fail.sh", shell=seed, resumable=True)
    graph = evaluate(store, tmp_path, bad)
    summary = make_scheduler(store, tmp_path).realise(graph)
    assert "exited with code 3" in summary.failed[graph.targets[0]]
    assert not list(store.physical_dir.glob(".partial-*"))


def test_two_concurrent_runs_share_work(tmp_path):
    root = tmp_path / "root"
    chain(tmp_path / "t")  # the shared input files exist before both runs start
    recipes_in(tmp_path / "t")
    procs = [run_engine(tmp_path / "t", root) for _ in range(2)]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert all("FAILED 0" in out for out, _ in outputs), outputs
    built = [int(out.split()[1]) for out, _ in outputs]
    store = Store(root, "/bootstrap/store")
    drvs = [p for p in store.all_paths() if p.endswith(".drv")]
    assert sum(built) == len(drvs)  # every derivation built exactly once between the two
    assert verify_store(store).ok


def test_a_build_that_finishes_after_an_interrupt_registers_nothing(store, tmp_path):
    """The scheduler sets `cancelled` on Ctrl-C; a build whose sandbox started too late to be
    killed still must not register its outputs."""
    _seed, hello, _ = chain(tmp_path)
    graph = evaluate(store, tmp_path, hello)
    make_scheduler(store, tmp_path).instantiate(graph)
    seed_drv, hello_drv = graph.topological()[-2:]
    options = BuildOptions(fetcher=offline_fetcher(tmp_path))
    realise(store, seed_drv, graph.derivations[seed_drv], options)
    options.cancelled.set()
    with pytest.raises(BootstrapError, match="interrupted; nothing registered"):
        realise(store, hello_drv, graph.derivations[hello_drv], options)
    assert not store.is_valid(graph.derivations[hello_drv].outputs["out"].path)
    assert verify_store(store).ok


def test_recipe_without_shell_is_a_clear_error(tmp_path):
    stages = tmp_path / "stages"
    stages.mkdir()
    (stages / "__init__.py").write_text(
        "from bootstrap.recipe import Package\n"
        'lonely = Package("lonely", "1", "hello.sh")\n'
        "TARGETS = {}\n"
    )
    with pytest.raises(BootstrapError) as err:
        Recipes(stages_dir=stages).targets()
    assert str(err.value).startswith(f"{stages / '__init__.py'}:2: TypeError")
    assert "'shell'" in str(err.value)


def test_a_seed_without_pins_is_a_clear_error(store, tmp_path):
    with pytest.raises(BootstrapError, match="seed bare: give archive_hash and tree_hash, or"):
        evaluate(store, tmp_path, Seed("bare"))


def test_inputs_that_share_a_variable_name_are_refused(store, tmp_path):
    seed, hello, _ = chain(tmp_path)
    twin = Package("hello", "2.0", "hello.sh", shell=seed)
    with pytest.raises(
        BootstrapError, match="two inputs, or an input and an env key, are named 'hello'"
    ):
        evaluate(
            store, tmp_path, Package("both", "1", "hello.sh", shell=seed, inputs=(hello, twin))
        )
    clash = Package("clash", "1", "hello.sh", shell=seed, inputs=(hello,), env={"hello": "x"})
    with pytest.raises(BootstrapError, match="named 'hello'"):
        evaluate(store, tmp_path, clash)


def test_an_input_whose_name_is_no_variable_name_is_refused(store, tmp_path):
    seed, _, _ = chain(tmp_path)
    cxx = Package("g++", "1", "hello.sh", shell=seed)
    with pytest.raises(BootstrapError, match=r"package user-1: input 'g\+\+': its name is no"):
        evaluate(store, tmp_path, Package("user", "1", "hello.sh", shell=seed, inputs=(cxx,)))


def test_the_shell_comes_first_on_path_unless_the_inputs_place_it(store, tmp_path):
    seed, hello, _ = chain(tmp_path)
    graph = evaluate(store, tmp_path, Package("a", "1", "hello.sh", shell=seed, inputs=(hello,)))
    env = graph.derivations[graph.targets[0]].env
    seed_out, hello_out = env["test_seed"], env["hello"]
    assert env["PATH"] == f"{seed_out}/bin:{hello_out}/bin"
    placed = Package("b", "1", "hello.sh", shell=seed, inputs=(hello, seed))
    graph = evaluate(store, tmp_path, placed)
    assert graph.derivations[graph.targets[0]].env["PATH"] == f"{hello_out}/bin:{seed_out}/bin"


FIXUP_SCRIPTS = {
    "script.sh": "mkdir -p $out/bin\nprintf '#!/bin/sh\\necho hi\\n' > $out/bin/hi\n",
    "copy.sh": "unpack_sources\nmkdir -p $out/bin\ncp hello $out/bin/hello\n",
}


def test_fixup_points_shebangs_into_the_store(store, tmp_path):
    seed, _, _ = chain(tmp_path)
    recipes = make_recipes(tmp_path / "fx", FIXUP_SCRIPTS)
    pkg = Package("script", "1", "script.sh", shell=seed)
    graph = Evaluator(store.store_dir, "x86_64-linux", recipes).evaluate([pkg])
    assert make_scheduler(store, tmp_path).realise(graph).ok
    drv = graph.derivations[graph.targets[0]]
    script = store.real_path(drv.outputs["out"].path) / "bin" / "hi"
    assert script.read_text().splitlines()[0] == f"#!{drv.env['SHELL']}"
    assert "fixup: " in log_path(store, graph.targets[0]).read_text()


def test_fixup_refuses_a_host_linked_binary(store, tmp_path):
    seed, _, _ = chain(tmp_path)
    (tmp_path / "hello.c").write_text("int main(void) { return 0; }\n")
    subprocess.run(["gcc", "-o", tmp_path / "hello", tmp_path / "hello.c"], check=True)
    binary = Source.of(
        (tmp_path / "hello").as_uri(),
        hashlib.sha256((tmp_path / "hello").read_bytes()).hexdigest(),
        name="hello",
    )
    recipes = make_recipes(tmp_path / "fx", FIXUP_SCRIPTS)
    pkg = Package("copy", "1", "copy.sh", sources=(binary,), shell=seed)
    graph = Evaluator(store.store_dir, "x86_64-linux", recipes).evaluate([pkg])
    summary = make_scheduler(store, tmp_path).realise(graph)
    reason = summary.failed[graph.targets[0]]
    assert "cannot be made to load from the store" in reason and "static world" in reason
    assert not store.is_valid(graph.derivations[graph.targets[0]].outputs["out"].path)


LIBC_SCRIPTS = {
    "libc.sh": "unpack_sources\nmkdir -p $out/lib $out/bin\n"
    "cp ld-linux-x86-64.so.2 libc.so.6 hello $out/lib/\nchmod 555 $out/lib/*\n"
    "mv $out/lib/hello $out/bin/\n",
    "user.sh": "unpack_sources\nmkdir -p $out/bin\ncp hello $out/bin/\nchmod 555 $out/bin/hello\n",
}


def _file_source(path: Path, name: str) -> Source:
    return Source.of(path.as_uri(), hashlib.sha256(path.read_bytes()).hexdigest(), name=name)


def test_a_libc_and_its_users_load_with_its_loader(store, tmp_path):
    """A package that names its `loader` (here the host's glibc, copied) gets it for its own
    programs; one that names it as its `libc` gets it too, and the programs run from the store."""
    seed, _, _ = chain(tmp_path)
    (tmp_path / "hello.c").write_text('#include <stdio.h>\nint main(void) { puts("hi"); }\n')
    subprocess.run(["gcc", "-o", tmp_path / "hello", tmp_path / "hello.c"], check=True)
    libc_so = subprocess.check_output(["gcc", "-print-file-name=libc.so.6"], text=True).strip()
    sources = (
        _file_source(Path("/lib64/ld-linux-x86-64.so.2").resolve(), "ld-linux-x86-64.so.2"),
        _file_source(Path(libc_so).resolve(), "libc.so.6"),
        _file_source(tmp_path / "hello", "hello"),
    )
    recipes = make_recipes(tmp_path / "libc", LIBC_SCRIPTS)
    loader = "lib/ld-linux-x86-64.so.2"
    libc = Package("libc", "1", "libc.sh", sources=sources, shell=seed, loader=loader)
    user = Package(
        "user", "1", "user.sh", sources=sources[2:], shell=seed, inputs=(libc,), libc=libc
    )
    evaluator = Evaluator(store.store_dir, "x86_64-linux", recipes)
    graph = evaluator.evaluate([user])
    assert make_scheduler(store, tmp_path).realise(graph).ok
    libc_out, user_out = evaluator.output_path(libc), evaluator.output_path(user)
    for program in (f"{libc_out}/bin/hello", f"{user_out}/bin/hello"):
        info = read_elf(store.real_path(program))
        assert (info.interpreter, info.runpath) == (f"{libc_out}/{loader}", f"{libc_out}/lib")
    assert store.references(user_out) == [libc_out]
    spec = SandboxSpec(
        command=[f"{user_out}/bin/hello"],
        build_dir=tmp_path / "run",
        inputs=[Bind(store.real_path(p), p) for p in store.closure([user_out])],
    )
    (tmp_path / "run").mkdir()
    assert run_in_sandbox(spec, tmp_path / "run.log").succeeded
    assert (tmp_path / "run.log").read_text() == "hi\n"


def test_a_libc_that_is_not_an_input_is_a_clear_error(store, tmp_path):
    seed, _, _ = chain(tmp_path)
    libc = Package("libc", "1", "hello.sh", shell=seed, loader="lib/ld.so")
    with pytest.raises(BootstrapError, match="libc must be one of its inputs"):
        evaluate(store, tmp_path, Package("user", "1", "hello.sh", shell=seed, libc=libc))


SHEBANG_SCRIPTS = {
    "scripts.sh": textwrap.dedent("""\
        mkdir -p $out/bin
        printf '#!/usr/bin/env hello -v\\n' > $out/bin/greet
        printf '#! /usr/local/bin/own\\n' > $out/bin/self
        printf '#!/bin/sh\\necho\\n' > $out/bin/plain
        printf 'own\\n' > $out/bin/own
    """),
}


def test_shebangs_point_at_the_programs_a_recipe_names(store, tmp_path):
    """`shebangs` maps the program a `#!` line asks for to a path in an input's output or the
    package's own; `sh` goes to the builder's shell."""
    seed, hello, _ = chain(tmp_path)
    recipes = make_recipes(tmp_path / "sb", {**SCRIPTS, **SHEBANG_SCRIPTS})
    pkg = Package(
        "scripts",
        "1",
        "scripts.sh",
        shell=seed,
        inputs=(hello,),
        shebangs={"hello": (hello, "bin/hello"), "own": "bin/own"},
    )
    evaluator = Evaluator(store.store_dir, "x86_64-linux", recipes)
    assert make_scheduler(store, tmp_path).realise(evaluator.evaluate([pkg])).ok
    out, hello_out = evaluator.output_path(pkg), evaluator.output_path(hello)
    first_lines = {
        name: store.real_path(f"{out}/bin/{name}").read_text().splitlines()[0]
        for name in ("greet", "self", "plain")
    }
    assert first_lines == {
        "greet": f"#!{hello_out}/bin/hello -v",
        "self": f"#!{out}/bin/own",
        "plain": f"#!{evaluator.output_path(seed)}/bin/sh",
    }


def test_shebangs_must_name_an_input(store, tmp_path):
    seed, hello, _ = chain(tmp_path)
    pkg = Package("scripts", "1", "hello.sh", shell=seed, shebangs={"hi": (hello, "bin/hi")})
    with pytest.raises(BootstrapError, match=r"shebangs\['hi'\] must name one of its inputs"):
        evaluate(store, tmp_path, pkg)


CLOSURE_SCRIPTS = {"closure.sh": "cp closure.json $out\n"}


def test_closure_files_describe_an_inputs_closure(store, tmp_path):
    seed, hello, _ = chain(tmp_path)
    recipes = make_recipes(tmp_path / "cl", {**SCRIPTS, **CLOSURE_SCRIPTS})
    pkg = Package(
        "closure",
        "1",
        "closure.sh",
        shell=seed,
        inputs=(hello,),
        closure_files={"closure.json": hello},
    )
    graph = Evaluator(store.store_dir, "x86_64-linux", recipes).evaluate([pkg])
    assert make_scheduler(store, tmp_path).realise(graph).ok
    out = graph.derivations[graph.targets[0]].outputs["out"].path
    described = json.loads(store.real_path(out).read_text())
    hello_path = next(d for d in graph.derivations.values() if d.name == "hello-1.0")
    hello_path = hello_path.outputs["out"].path
    seed_path = store.references(hello_path)[0]
    assert [entry["path"] for entry in described] == sorted([hello_path, seed_path])
    for entry in described:
        digest, size = nar_hash(store.real_path(entry["path"]))
        assert (entry["narHash"], entry["narSize"]) == (digest.sri, size)
        assert entry["references"] == store.references(entry["path"])
    # the file names the closure's paths, so the output references them too
    assert store.references(out) == sorted([hello_path, seed_path])


def test_closure_files_must_name_an_input(store, tmp_path):
    seed, hello, _ = chain(tmp_path)
    pkg = Package("closure", "1", "hello.sh", shell=seed, closure_files={"c.json": hello})
    expected = r"package closure-1: closure_files\['c.json'\] must be one of its inputs"
    with pytest.raises(BootstrapError, match=expected):
        evaluate(store, tmp_path, pkg)


def test_a_profile_a_recipe_names_must_exist(store, tmp_path):
    seed, _, _ = chain(tmp_path)
    pkg = Package("quick", "1", "hello.sh", shell=seed, profiles={"turbo": {"x": "1"}})
    with pytest.raises(BootstrapError, match="package quick-1: profiles names 'turbo': expected"):
        evaluate(store, tmp_path, pkg)
