"""Every build measured (#23): real sandboxed builds of the busybox test target record wall and
CPU time (CPU of the whole process tree, orphaned grandchildren included), `show --timings`
reports them with the critical path and core use, and the manifest carries them outside the
hashed stages. No absolute time limits: CPU time is compared with the same work measured on
the host, with a generous margin."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

from bootstrap.audit.manifest import build_manifest
from bootstrap.plan_status import timing_report
from bootstrap.recipe import Recipes, plan_target
from bootstrap.sandbox import tree_cpu_seconds
from bootstrap.store import Store
from bootstrap.store.db import BuildTime
from bootstrap.timings import Report, Step, critical_path, markdown_table, modelled_path, wall_on

from .conftest import run_cli
from .engine_fixtures import BUSYBOX, requires_busybox
from .test_cli_build import cli_env, make_stages

# about 0.3 s of one core: a loop in busybox's shell
BURN = "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"
# greet's builder leaves the burn to an orphaned grandchild (its subshell exits at once, so
# the sandbox's pid 1 adopts and reaps it) and waits for the file it writes when done
ORPHAN_BURN = f"""( sh -c '{BURN}; touch "$TMPDIR/burnt"' & )
while [ ! -f "$TMPDIR/burnt" ]; do sleep 0.05; done
hello > $out
"""


def host_burn_cpu() -> float:
    """CPU seconds of BURN run by busybox on the host, as a direct child (the oracle)."""
    proc = subprocess.Popen([BUSYBOX, "sh", "-c", BURN])
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0
    return usage.ru_utime + usage.ru_stime


def plan(tmp_path, stages, store: Store):
    return plan_target(store.store_dir, "x86_64-linux", Recipes(stages, tmp_path / "patches"))


def times_by_name(tmp_path, stages) -> dict[str, BuildTime | None]:
    store = Store(tmp_path / "root")
    report = timing_report(store, plan(tmp_path, stages, store))
    return {step.name: step.time for step in report.steps}


@requires_busybox
def test_cpu_time_covers_an_orphaned_grandchild_and_wall_covers_a_serial_build(tmp_path):
    stages = make_stages(tmp_path)
    (stages / "builders" / "greet.sh").write_text(ORPHAN_BURN)
    hello = stages / "builders" / "hello.sh"
    hello.write_text(f"{BURN}\n" + hello.read_text())  # serial: one process at a time
    run_cli("run", "--stages", stages, "--no-out-link", env=cli_env(tmp_path))

    oracle = host_burn_cpu()
    assert oracle > 0.05  # the loop is measurable
    times = times_by_name(tmp_path, stages)
    greet, hello_time = times["greet-2.0"], times["hello-1.0"]
    assert greet is not None and hello_time is not None
    # without the grandchild's share, greet would record a few milliseconds
    assert greet.cpu > 0.5 * oracle, (greet, oracle)
    assert hello_time.cpu > 0.5 * oracle, (hello_time, oracle)
    assert hello_time.wall >= hello_time.cpu  # one process at a time cannot beat the clock
    assert greet.cores == hello_time.cores == (os.cpu_count() or 1)
    # a fetch (builtin) records its own time, on one core
    assert times["note.txt"] is not None and times["note.txt"].cores == 1


@requires_busybox
def test_show_timings_reports_each_build_the_critical_path_and_core_use(tmp_path):
    stages = make_stages(tmp_path)
    hello = stages / "builders" / "hello.sh"
    hello.write_text(f"{BURN}\n" + hello.read_text())  # the longest build by far
    env = cli_env(tmp_path)
    ran = run_cli("run", "--stages", stages, "--no-out-link", env=env).stdout.decode()
    assert "critical path: " in ran and "core use: " in ran, ran

    shown = run_cli("show", "--timings", "--stages", stages, env=env).stdout.decode()
    rows = {line.split()[1]: line.split() for line in shown.splitlines()[1:5]}
    assert set(rows) == {"test-seed", "note.txt", "hello-1.0", "greet-2.0"}, shown
    assert float(rows["hello-1.0"][3]) > 0  # CPU seconds
    path_line = next(line for line in shown.splitlines() if line.startswith("critical path:"))
    chain = [part.split()[0] for part in path_line.rsplit(": ", 1)[1].split(" -> ")]
    assert chain[1:] == ["hello-1.0", "greet-2.0"], path_line
    assert chain[0] in ("test-seed", "note.txt")  # both are hello's inputs
    assert "4 timed builds" in shown and "core use: " in shown

    markdown = run_cli(
        "show", "--timings", "--format", "markdown", "--stages", stages, env=env
    ).stdout.decode()
    assert markdown.startswith("| stage | package | wall | CPU | cores | core use |\n|---|")
    assert "| stage1 | hello-1.0 | " in markdown and "- critical path: " in markdown

    modelled = run_cli(
        "show", "--timings", "--model-cores", "8,64", "--stages", stages, env=env
    ).stdout.decode()
    assert (
        "\non 8 cores: critical path " in modelled and "\non 64 cores: critical path " in modelled
    )
    bad = run_cli(
        "show", "--timings", "--model-cores", "0", "--stages", stages, env=env, check=False
    )
    assert bad.returncode == 2
    assert "--model-cores: expected core counts such as 8,16,64; got '0'" in bad.stderr.decode()


@requires_busybox
def test_the_manifest_carries_timings_outside_the_stage_hashes(tmp_path):
    stages = make_stages(tmp_path)
    run_cli("run", "--stages", stages, "--no-out-link", env=cli_env(tmp_path))
    store = Store(tmp_path / "root")
    target = plan(tmp_path, stages, store)
    timed = build_manifest(store, target)
    assert len(timed["timings"]) == 4
    assert all(t["wall"] >= 0 and t["cpu"] >= 0 for t in timed["timings"].values())
    assert "timings" not in json.dumps(timed["stages"])

    store.db.conn.execute("DELETE FROM build_times")
    untimed = build_manifest(store, target)
    assert untimed["timings"] == {}
    hashes = {name: stage["hash"] for name, stage in timed["stages"].items()}
    assert hashes == {name: stage["hash"] for name, stage in untimed["stages"].items()}
    shown = run_cli("show", "--timings", "--stages", stages, env=cli_env(tmp_path)).stdout
    untimed_rows = [line for line in shown.decode().splitlines() if line.endswith(" recorded")]
    assert len(untimed_rows) == 4


@requires_busybox
def test_a_substituted_path_has_no_build_time(tmp_path):
    stages = make_stages(tmp_path)
    run_cli("run", "--stages", stages, "--no-out-link", env=cli_env(tmp_path))
    run_cli("export", "--stages", stages, "--to", tmp_path / "bincache", env=cli_env(tmp_path))
    env_b = {**cli_env(tmp_path / "b"), "BOOTSTRAP_CONFIG": str(tmp_path / "none.toml")}
    shutil.copytree(tmp_path / "cache", tmp_path / "b" / "cache")
    run_cli("run", "--stages", stages, "--no-out-link", "--substituters",
            f"file://{tmp_path / 'bincache'}", "--no-check-sigs", env=env_b)  # fmt: skip
    shown = run_cli("show", "--timings", "--stages", stages, env=env_b).stdout.decode()
    notes = {line.split()[1]: line.split()[-1] for line in shown.splitlines()[1:5]}
    assert notes["greet-2.0"] == notes["hello-1.0"] == notes["test-seed"] == "substituted"
    assert "0 timed builds" in shown and "critical path: unknown" in shown


def test_critical_path_is_the_longest_chain_by_wall_time_counting_unknown_as_zero():
    def step(drv: str, inputs: tuple[str, ...], wall: float | None) -> Step:
        time = None if wall is None else BuildTime(wall, wall / 2, 2, 0)
        return Step(drv, drv, inputs, time=time, note="" if time else "substituted")

    # a -> b -> d and a -> c -> d: c is the long way; e (no time) hangs off d
    steps = [
        step("a", (), 1.0),
        step("b", ("a",), 2.0),
        step("c", ("a",), 5.0),
        step("d", ("b", "c"), 1.0),
        step("e", ("d",), None),
        step("f", (), 3.0),
    ]
    path = critical_path(steps)
    assert [s.drv for s in path.steps] == ["a", "c", "d", "e"]
    assert path.wall == 7.0 and path.untimed == 1
    assert critical_path([]).steps == ()
    report = Report(tuple(steps))
    assert report.core_use == 0.25  # each build used half its wall on 1 of its 2 cores
    assert "| e | — | — | — | substituted |" in markdown_table(report)


def test_wall_on_more_cores_follows_amdahl_from_the_recorded_times():
    # 10 s on 2 cores with 18 CPU s: 16 CPU s ran in parallel (8 s of wall), 2 s serially
    parallel = BuildTime(wall=10.0, cpu=18.0, cores=2, built_at=0)
    assert wall_on(parallel, 8) == 2.0 + 16.0 / 8
    assert wall_on(parallel, 2) == 10.0
    waiting = BuildTime(wall=10.0, cpu=5.0, cores=2, built_at=0)  # half of it waited on I/O
    assert wall_on(waiting, 64) == 10.0
    assert wall_on(BuildTime(wall=10.0, cpu=10.0, cores=1, built_at=0), 64) == 10.0


def test_the_modelled_critical_path_moves_to_the_serial_build_on_many_cores():
    def step(drv: str, wall: float, cpu: float) -> Step:
        return Step(drv, drv, ("seed",), time=BuildTime(wall, cpu, 2, 0))

    steps = [
        Step("seed", "seed", (), time=BuildTime(1.0, 1.0, 2, 0)),
        step("make-j", wall=100.0, cpu=200.0),  # all parallel: 200 CPU s
        step("configure", wall=60.0, cpu=60.0),  # all serial
    ]
    assert [s.drv for s in modelled_path(steps, 2).steps] == ["seed", "make-j"]
    on_64 = modelled_path(steps, 64)
    assert [s.drv for s in on_64.steps] == ["seed", "configure"]
    assert on_64.wall == 61.0


@requires_busybox
def test_tree_cpu_counts_reaped_and_running_descendants(tmp_path):
    """What a running build reports every tick: its process tree's CPU so far."""
    done = tmp_path / "done"
    script = f"({BURN}); sh -c '{BURN}; touch {done}; sleep 60' & wait"
    proc = subprocess.Popen([BUSYBOX, "sh", "-c", script], start_new_session=True)
    try:
        while not done.exists():
            assert proc.poll() is None
            time.sleep(0.05)
        # the first burn is in the shell's share of its reaped child, the second in a live one
        so_far = tree_cpu_seconds(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    oracle = host_burn_cpu()
    assert so_far > 2 * 0.5 * oracle, (so_far, oracle)
    assert tree_cpu_seconds(proc.pid) == 0.0  # a process gone is no tree
