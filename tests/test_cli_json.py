"""`--json` at the end of `run`, on `export`, `store gc`, `audit diff` and `audit reproduce`,
and `result` links taken by `export` and `audit hermetic`, run as a user runs them on a small
real chain."""

from __future__ import annotations

import json
import os

import pytest

from .conftest import run_cli
from .engine_fixtures import requires_busybox
from .test_cli_build import cli_env, make_stages

pytestmark = requires_busybox


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The small chain built by `run --json`, with its `result` link and its JSON."""
    tmp = tmp_path_factory.mktemp("chain")
    stages = make_stages(tmp)
    env = cli_env(tmp)
    result = run_cli("run", "--json", "--stages", stages, "--out-link", tmp / "result", env=env)
    return tmp, stages, env, json.loads(result.stdout), result.stderr.decode()


def test_run_json_ends_with_what_each_derivation_became(built):
    tmp, _, _, report, stderr = built
    assert report["ok"] is True and report["failed"] == [] and report["skipped"] == []
    assert {b["name"] for b in report["built"]} == {
        "test-seed",
        "note.txt",
        "hello-1.0",
        "greet-2.0",
    }
    greet = next(b for b in report["built"] if b["name"] == "greet-2.0")
    assert (
        greet["outputs"]["out"]
        == report["output"]
        == os.readlink(tmp / "result").replace(f"{tmp}/root/store", "/bootstrap/store")
    )
    assert list(report["stages"]) == ["stage0", "stage1", "stage2"]
    assert all(s["hash"].startswith("sha256:") and s["complete"] for s in report["stages"].values())
    assert report["outLink"] == str(tmp / "result") and os.path.isfile(report["manifest"])
    assert "4 built" in stderr and "stage hashes" in stderr  # the summary, out of stdout's way


def test_export_takes_a_result_link_and_answers_in_json(built, monkeypatch):
    tmp, _, env, report, _ = built
    monkeypatch.chdir(tmp)  # `result` as a user types it, in the directory that holds it
    first = json.loads(run_cli("export", "result", "--to", tmp / "cache", "--json", env=env).stdout)
    assert report["output"] in first["paths"] and sorted(first["written"]) == sorted(first["paths"])
    assert first["present"] == [] and first["directory"] == str(tmp / "cache")
    again = json.loads(run_cli("export", "result", "--to", tmp / "cache", "--json", env=env).stdout)
    assert again["written"] == [] and sorted(again["present"]) == sorted(first["paths"])
    tar = run_cli("export", "result", "--to", tmp / "tar", "--format", "tar", "--json", env=env)
    archive = json.loads(tar.stdout)
    assert os.path.getsize(archive["archive"]) == archive["size"] and archive["paths"]


def test_audit_hermetic_takes_a_result_link_as_its_store_path(built, monkeypatch):
    tmp, _, env, _, _ = built
    monkeypatch.chdir(tmp)
    audited = run_cli("audit", "hermetic", "result", "--json", env=env)
    assert json.loads(audited.stdout) == []
    physical = os.readlink("result")  # the path the link holds, in ROOT/store
    assert run_cli("audit", "hermetic", physical, env=env).stdout == b"no violations\n"


def test_store_gc_json(built):
    _, _, env, report, _ = built
    gc = json.loads(run_cli("store", "gc", "--dry-run", "--json", env=env).stdout)
    assert gc["dryRun"] is True and report["output"] in gc["live"]
    assert set(gc) == {
        "dryRun",
        "roots",
        "live",
        "deleted",
        "leftovers",
        "keptPartial",
        "freedBytes",
    }
    assert gc["roots"] and not set(gc["deleted"]) & set(gc["live"])


def test_audit_diff_json_names_the_stage_and_derivation_that_differ(built):
    _, stages, env, report, _ = built
    fast = json.loads(
        run_cli(
            "run", "--json", "--profile", "fast", "--stages", stages, "--no-out-link", env=env
        ).stdout
    )
    assert fast["outLink"] is None and [b["name"] for b in fast["built"]] == ["greet-2.0"]
    a, b = report["manifest"], fast["manifest"]
    same = run_cli("audit", "diff", a, a, "--json", env=env)
    assert json.loads(same.stdout) == {"identical": True, "stages": []}
    differ = run_cli("audit", "diff", a, b, "--json", env=env, check=False)
    assert differ.returncode == 1
    (stage,) = json.loads(differ.stdout)["stages"]
    assert stage["stage"] == "stage2" and stage["a"] == report["stages"]["stage2"]["hash"]
    assert [(d["name"], d["what"]) for d in stage["derivations"]] == [
        ("greet-2.0", "recipe"),
        ("greet-2.0", "narHash"),  # the fast profile's greet writes one more line
    ]


def test_audit_reproduce_json(built):
    _, stages, env, _, _ = built
    result = run_cli(
        "audit", "reproduce", "--only", "stage1", "--json", "--stages", stages, env=env
    )
    (hello,) = json.loads(result.stdout)
    assert hello["name"] == "hello-1.0" and hello["status"] == "identical"
    assert hello["drv"].endswith("-hello-1.0.drv") and hello["differing"] == {}
