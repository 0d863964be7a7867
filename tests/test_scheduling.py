"""Which ready derivation starts first: the one with the longest path of builds ahead of it."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

from bootstrap import progress
from bootstrap.build import BuildOptions
from bootstrap.recipe import Evaluator, Package
from bootstrap.scheduler import Scheduler
from bootstrap.timings import remaining_paths

from .engine_fixtures import busybox_seed, make_recipes, offline_fetcher, requires_busybox


def test_remaining_paths_are_the_longest_chain_to_the_end():
    inputs = {"a": [], "b": ["a"], "c": ["b"], "side": [], "top": ["c", "side", "outside"]}
    seconds = {"a": 1.0, "b": 5.0, "c": 2.0, "side": 4.0, "top": 1.0}
    order = ["a", "side", "b", "c", "top"]
    assert remaining_paths(order, inputs.__getitem__, seconds) == {
        "top": 1.0,
        "c": 3.0,
        "b": 8.0,
        "a": 9.0,
        "side": 5.0,
    }


@requires_busybox
def test_the_longer_chain_starts_before_a_side_branch_listed_first(store, tmp_path):
    seed, _ = busybox_seed(tmp_path)
    recipes = make_recipes(tmp_path / "r", {"step.sh": 'echo "$step" > $out\n'})

    def step(name, *inputs):
        return Package(name, "1", "step.sh", shell=seed, inputs=inputs, env={"step": name})

    side = step("side")
    chain = step("c3", step("c2", step("c1")))
    # two targets, the side branch first: plan order is side, c1, c2, c3
    graph = Evaluator(store.store_dir, "x86_64-linux", recipes).evaluate([side, chain])
    started = []

    def on_event(event: progress.Event) -> None:
        if event.kind == progress.START and not event.builtin:
            started.append(event.name)

    options = BuildOptions(fetcher=offline_fetcher(tmp_path))
    summary = Scheduler(store, options, max_jobs=1, on_event=on_event).realise(graph)
    assert summary.ok
    assert started[:2] == ["c1-1", "c2-1"]  # the chain's 3 builds ahead, not side's 1
    assert sorted(started) == ["c1-1", "c2-1", "c3-1", "side-1"]


@requires_busybox
def test_a_no_op_run_writes_nothing_to_the_database(store, tmp_path):
    seed, _ = busybox_seed(tmp_path)
    recipes = make_recipes(tmp_path / "r", {"step.sh": 'echo "$step" > $out\n'})
    top = seed
    for i in range(3):
        top = Package(f"s{i}", "1", "step.sh", shell=seed, inputs=(top,), env={"step": str(i)})
    graph = Evaluator(store.store_dir, "x86_64-linux", recipes).evaluate([top])
    options = BuildOptions(fetcher=offline_fetcher(tmp_path))
    assert Scheduler(store, options, progress=False, root_name="t").realise(graph).ok
    watcher = sqlite3.connect(store.db.file)
    before = watcher.execute("PRAGMA data_version").fetchone()
    again = Scheduler(store, options, progress=False, root_name="t").realise(graph)
    assert not again.built and len(again.reused) == 4
    assert watcher.execute("PRAGMA data_version").fetchone() == before  # no other commit


def test_the_evaluator_and_the_run_path_load_nothing_that_only_a_build_needs():
    builder_only = ("bootstrap.build", "bootstrap.sandbox", "bootstrap.scheduler", "bootstrap.elf")
    build_time = ("requests", "urllib3", "tqdm", "elftools", "lief", "bootstrap.seed")
    build_time += ("bootstrap.unpack", "bootstrap.remote.offload", "http.client")
    probe = (
        "import sys\n"
        "import bootstrap.recipe\n"
        f"print(sorted(m for m in {builder_only + build_time!r} if m in sys.modules))\n"
        "import bootstrap.cli.build\n"
        f"print(sorted(m for m in {build_time!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.splitlines() == ["[]", "[]"], result.stderr
