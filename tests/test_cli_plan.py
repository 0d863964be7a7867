"""`bootstrap show` and `bootstrap graph` as a user runs them, on a small real recipe tree:
statuses, JSON, the graph's stage clusters, colours and transitive reduction, checked with
Graphviz itself where it is installed."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from bootstrap.graph_view import COLOURS

from .conftest import run_cli
from .engine_fixtures import requires_busybox
from .test_cli_build import cli_env, make_stages

pytestmark = requires_busybox


@pytest.fixture
def half_built(tmp_path):
    """The small chain with stages 0 and 1 built and stage 2 (greet) missing."""
    stages = make_stages(tmp_path)
    env = cli_env(tmp_path)
    run_cli("run", "--until", "stage1", "--stages", stages, "--no-out-link", env=env)
    return stages, env


def test_show_json_lists_each_derivation_with_status_and_time(half_built):
    stages, env = half_built
    shown = json.loads(run_cli("show", "--json", "--stages", stages, env=env).stdout)
    by_name = {entry["name"]: entry for entry in shown}
    assert by_name["greet-2.0"]["status"] == "missing" and by_name["greet-2.0"]["time"] is None
    hello = by_name["hello-1.0"]
    assert hello["status"] == "built" and hello["stage"] == "stage1"
    assert hello["time"]["wall"] > 0 and hello["time"]["cores"] >= 1
    assert by_name["note.txt"]["stage"] == "(source)"
    assert set(hello["inputs"]) == {by_name["note.txt"]["drv"], by_name["test-seed"]["drv"]}
    assert [e["name"] for e in shown].index("hello-1.0") < [e["name"] for e in shown].index(
        "greet-2.0"
    )


def test_graph_json_is_the_transitive_reduction_unless_all_edges(half_built):
    stages, env = half_built
    graph = json.loads(run_cli("graph", "--json", "--stages", stages, env=env).stdout)
    name = {node["drv"]: node["name"] for node in graph["nodes"]}
    edges = {(name[e["from"]], name[e["to"]]) for e in graph["edges"]}
    # greet takes the seed and hello, and hello takes the seed: seed -> greet is implied
    assert edges == {
        ("note.txt", "hello-1.0"),
        ("test-seed", "hello-1.0"),
        ("hello-1.0", "greet-2.0"),
    }
    assert {n["name"]: n["cluster"] for n in graph["nodes"]} == {
        "test-seed": "stage0",
        "note.txt": "stage1",  # a download sits with the stage that uses it
        "hello-1.0": "stage1",
        "greet-2.0": "stage2",
    }
    full = run_cli("graph", "--format", "json", "--all-edges", "--stages", stages, env=env)
    implied = [e for e in json.loads(full.stdout)["edges"] if e["implied"]]
    assert [(name[e["from"]], name[e["to"]]) for e in implied] == [("test-seed", "greet-2.0")]


def test_graph_dot_has_a_cluster_per_stage_and_colours_by_status(half_built):
    stages, env = half_built
    dot = run_cli("graph", "--stages", stages, env=env).stdout.decode()
    assert dot.startswith("digraph bootstrap {")
    labels = [line.strip() for line in dot.splitlines() if line.strip().startswith("label=")]
    assert labels == ['label="stage0";', 'label="stage1";', 'label="stage2";', 'label="status";']
    assert sum("subgraph cluster_" in line for line in dot.splitlines()) == 4  # 3 + legend
    greet = next(line for line in dot.splitlines() if 'label="greet-2.0"' in line)
    hello = next(line for line in dot.splitlines() if 'label="hello-1.0"' in line)
    assert COLOURS["missing"] in greet and COLOURS["built"] in hello
    assert dot.count(" -> ") == 3
    assert run_cli("graph", "--all-edges", "--stages", stages, env=env).stdout.count(b" -> ") == 4
    if shutil.which("dot"):  # graphviz: scripts/setup --test installs it
        svg = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True, check=True)
        assert not svg.stderr
        assert svg.stdout.count(b'class="cluster"') == 4 and svg.stdout.count(b'class="edge"') == 3


def test_graph_mermaid_has_subgraphs_and_status_classes(half_built):
    stages, env = half_built
    text = run_cli("graph", "--format", "mermaid", "--stages", stages, env=env).stdout.decode()
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    assert [line.strip() for line in lines if line.strip().startswith("subgraph")] == [
        'subgraph s0["stage0"]',
        'subgraph s1["stage1"]',
        'subgraph s2["stage2"]',
    ]
    assert sum(" --> " in line for line in lines) == 3
    assert any(line.startswith("  class ") and line.endswith(" missing") for line in lines)
    assert any(line.startswith("  class ") and line.endswith(" built") for line in lines)
    assert text.count("subgraph") == text.count("  end")


def test_show_and_graph_on_a_store_that_does_not_exist_fail_in_one_line(tmp_path):
    stages = make_stages(tmp_path)
    for command in ("show", "graph"):
        result = run_cli(
            command,
            "--stages",
            stages,
            "--store",
            tmp_path / "typo",
            env=cli_env(tmp_path),
            check=False,
        )
        assert result.returncode == 1
        assert result.stderr.decode().startswith(f"bootstrap: error: no store at {tmp_path}/typo")
        assert result.stderr.count(b"\n") == 1
        assert not (tmp_path / "typo").exists()
