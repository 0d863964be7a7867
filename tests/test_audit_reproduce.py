"""Reproducibility audits on real builds: manifests, rebuild-and-compare, manifest diffs."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from bootstrap.audit.manifest import (
    build_manifest,
    diff_manifests,
    load_manifest,
    stage_hash,
    summary_lines,
    write_manifest,
)
from bootstrap.audit.reproduce import DIFFERS, IDENTICAL, render, reproduce
from bootstrap.build import BuildOptions
from bootstrap.errors import BootstrapError
from bootstrap.recipe import plan_target
from bootstrap.scheduler import Scheduler
from bootstrap.store import Store

from .engine_fixtures import busybox_seed, make_recipes, offline_fetcher, requires_busybox

pytestmark = requires_busybox

STAGES_INIT = """
from bootstrap.hashing import Hash
from bootstrap.recipe import Package, Seed, Stage

seed = Seed("test-seed", Hash.parse({archive_hash!r}), Hash.parse({tree_hash!r}), ({url!r},))
steady = Package("steady", "1", "steady.sh", shell=seed)
noisy = Package("noisy", "1", "noisy.sh", shell=seed, inputs=(steady,))

TARGETS = {{"x86_64-linux": [Stage("stage0", (seed,)), Stage("stage1", (steady,)),
                             Stage("stage2", (noisy,))]}}
"""

SCRIPTS = {
    "steady.sh": textwrap.dedent("""\
        mkdir -p $out/share
        echo "always the same" > $out/share/data
        ln -s data $out/share/link
    """),
    "noisy.sh": textwrap.dedent("""\
        mkdir -p $out
        echo stable > $out/stable
        od -An -N16 -tx1 /dev/urandom > $out/random
    """),
}


@pytest.fixture
def built(tmp_path):
    seed, _ = busybox_seed(tmp_path)
    recipes = make_recipes(tmp_path, SCRIPTS)
    (recipes.stages_dir / "__init__.py").write_text(
        STAGES_INIT.format(
            archive_hash=str(seed.archive_hash), tree_hash=str(seed.tree_hash), url=seed.urls[0]
        )
    )
    store = Store(tmp_path / "main", "/bootstrap/store")
    plan = plan_target(store.store_dir, "x86_64-linux", recipes)
    options = BuildOptions(fetcher=offline_fetcher(tmp_path))
    assert Scheduler(store, options, progress=False).realise(plan.graph).ok
    return store, plan, options, tmp_path


def test_manifest_is_deterministic_and_summarised(built):
    store, plan, _, tmp = built
    manifest = build_manifest(store, plan)
    assert manifest == build_manifest(store, plan)
    assert list(manifest["stages"]) == ["stage0", "stage1", "stage2"]
    steady = manifest["stages"]["stage1"]["derivations"][0]
    assert steady["name"] == "steady-1" and steady["outputs"]["out"]["narHash"].startswith(
        "sha256-"
    )
    assert manifest["seeds"][0]["name"] == "test-seed"
    path = write_manifest(manifest, tmp / "manifests")
    assert load_manifest(path) == manifest
    summary = (tmp / "manifests" / "x86_64-linux.summary").read_text().splitlines()
    assert summary == summary_lines(manifest) and summary[1].startswith("stage1       sha256:")


def test_reproduce_finds_the_nondeterministic_file(built):
    store, plan, options, tmp = built
    check = Store(tmp / "check", "/bootstrap/store")
    reports = tmp / "diffoscope" if shutil.which("diffoscope") else None
    results = reproduce(store, check, plan, ["stage1", "stage2"], options, reports)
    by_name = {r.name: r for r in results}
    assert by_name["steady-1"].status == IDENTICAL
    assert by_name["noisy-1"].status == DIFFERS
    assert by_name["noisy-1"].differing == {"out": ["random"]}
    text = render(results)
    assert "noisy-1" in text and "out: random" in text and "1 identical, 1 differs" in text
    if reports is not None:
        (report,) = by_name["noisy-1"].reports
        assert "random" in Path(report).read_text()


def test_reproduce_refuses_the_same_store(built):
    store, plan, options, _ = built
    with pytest.raises(BootstrapError, match="different physical store"):
        reproduce(store, Store(store.root, store.store_dir), plan, ["stage1"], options)


def test_diff_finds_an_injected_difference(built):
    store, plan, _, _ = built
    a = build_manifest(store, plan)
    b = json.loads(json.dumps(a))
    entry = b["stages"]["stage1"]["derivations"][0]
    entry["outputs"]["out"]["narHash"] = "sha256-" + "A" * 43 + "="
    b["stages"]["stage1"]["hash"] = stage_hash(b["stages"]["stage1"]["derivations"])
    lines = diff_manifests(a, b)
    assert lines[0].startswith("stage stage1: sha256:")
    assert "steady-1!out: NAR hash" in lines[1]
    assert diff_manifests(a, a) == []


def test_bad_manifest_is_a_clear_error(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text('{"version": 1}')
    with pytest.raises(BootstrapError, match="field 'stages' is missing"):
        load_manifest(bad)
