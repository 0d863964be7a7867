"""The build graph as drawn: transitive reduction, stage clusters, a colour per status. On the
real chain's recipes (evaluated, nothing built) and on small plans written out here."""

from __future__ import annotations

import json
import shutil
import subprocess

from bootstrap.graph_view import COLOURS, graph_view, render_dot, render_json, render_mermaid
from bootstrap.plan_status import SOURCE_STAGE, STATUSES, Entry

from .conftest import run_cli


def entry(name: str, stage: str, status: str, *inputs: str) -> Entry:
    return Entry(
        stage, name, f"/s/{name}.drv", f"/s/{name}", status, tuple(f"/s/{i}.drv" for i in inputs)
    )


# a source used by stage 2 and stage 3, and one status of each kind
ENTRIES = [
    entry("src", SOURCE_STAGE, "built"),
    entry("a", "stage1", "built"),
    entry("b", "stage2", "substituted", "a", "src"),
    entry("c", "stage2", "partial", "a", "b"),
    entry("d", "stage3", "building", "c", "a", "src"),
    entry("e", "stage3", "missing", "d", "b"),
]


def test_the_reduction_keeps_only_edges_no_other_chain_implies():
    view = graph_view(ENTRIES)
    kept = {(e.source[3:-4], e.user[3:-4]) for e in view.drawn_edges(all_edges=False)}
    assert kept == {("a", "b"), ("src", "b"), ("b", "c"), ("c", "d"), ("d", "e")}
    implied = {(e.source[3:-4], e.user[3:-4]) for e in view.edges if e.implied}
    assert implied == {("a", "c"), ("a", "d"), ("src", "d"), ("b", "e")}
    assert len(view.drawn_edges(all_edges=True)) == 9


def test_a_source_sits_in_the_first_stage_that_uses_it():
    clusters = graph_view(ENTRIES).clusters
    assert [(stage, [d[3:-4] for d in drvs]) for stage, drvs in clusters.items()] == [
        ("stage1", ["a"]),
        ("stage2", ["src", "b", "c"]),
        ("stage3", ["d", "e"]),
    ]


def test_every_status_has_its_colour_and_legend():
    view = graph_view(ENTRIES)
    dot = render_dot(view)
    for status in STATUSES:
        assert f'legend_{status} [label="{status}", fillcolor="{COLOURS[status]}"]' in dot
    assert f'label="e", fillcolor="{COLOURS["missing"]}"' in dot
    assert dot.count(" -> ") == 5 and "style=dashed" not in dot
    assert render_dot(view, all_edges=True).count("style=dashed") == 4
    mermaid = render_mermaid(view, all_edges=True)
    assert mermaid.count(" -.-> ") == 4 and mermaid.count(" --> ") == 5
    assert "  class n3 partial" in mermaid and "  class n4 building" in mermaid
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tsvg", "-o", "/dev/null"], input=dot.encode(), check=True)
    nodes = json.loads(render_json(view))["nodes"]
    assert [(n["name"], n["status"], n["cluster"]) for n in nodes][2] == (
        "b",
        "substituted",
        "stage2",
    )


def test_the_real_chain_reduces_to_edges_that_nothing_else_implies(tmp_path):
    run_cli("store", "add", __file__, "--store", tmp_path / "root")  # an empty store, made
    graph = json.loads(
        run_cli("graph", "--json", "--all-edges", "--store", tmp_path / "root").stdout
    )
    inputs: dict[str, set[str]] = {}
    for edge in graph["edges"]:
        inputs.setdefault(edge["to"], set()).add(edge["from"])

    def ancestors(drv: str) -> set[str]:
        seen, todo = set(), list(inputs.get(drv, ()))
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo += inputs.get(node, ())
        return seen

    for edge in graph["edges"]:
        others = inputs[edge["to"]] - {edge["from"]}
        assert edge["implied"] == any(edge["from"] in ancestors(o) for o in others)
    kept = [e for e in graph["edges"] if not e["implied"]]
    assert 0 < len(kept) < len(graph["edges"])
    assert list(graph["clusters"])[:2] == ["stage0", "stage1"]
    assert {n["status"] for n in graph["nodes"]} == {"missing"}
