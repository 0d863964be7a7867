"""The build graph drawn for people: one cluster per stage, each derivation coloured by its
status, and by default only the edges that are not implied by others (the transitive
reduction: an input that another input already depends on is not drawn). Pure: plan entries
in, Graphviz dot, Mermaid or JSON text out.

Downloads and the seed's unpacking belong to no stage; each is drawn in the cluster of the
first stage that uses it, as a note.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Sequence
from dataclasses import dataclass

from bootstrap.plan_status import (
    BUILDING,
    BUILT,
    MISSING,
    PARTIAL,
    SOURCE_STAGE,
    STATUSES,
    SUBSTITUTED,
    Entry,
)

FORMATS = ("dot", "mermaid", "json")

# fill colours by status (ColorBrewer pastels, legible in print and for most colour vision)
COLOURS = {
    BUILT: "#b2df8a",
    SUBSTITUTED: "#a6cee3",
    BUILDING: "#ffff99",
    PARTIAL: "#fdbf6f",
    MISSING: "#f0f0f0",
}


@dataclass(frozen=True)
class Edge:
    """`source` is an input of `user`; `implied` when another path of inputs already leads
    there (left out of the transitive reduction)."""

    source: str
    user: str
    implied: bool


@dataclass(frozen=True)
class GraphView:
    """Plan entries (inputs first) grouped by stage, with their edges."""

    entries: tuple[Entry, ...]
    edges: tuple[Edge, ...]
    clusters: dict[str, tuple[str, ...]]  # stage -> drv paths drawn in it, in stage order

    def drawn_edges(self, all_edges: bool) -> list[Edge]:
        return [e for e in self.edges if all_edges or not e.implied]


def graph_view(entries: Sequence[Entry]) -> GraphView:
    """The view of `entries`, which must list every input before its users."""
    index = {entry.drv: i for i, entry in enumerate(entries)}
    ancestors: dict[str, int] = {}  # drv -> bit set (by index) of everything it depends on
    edges = []
    for entry in entries:
        inputs = [d for d in dict.fromkeys(entry.inputs) if d in index]
        reach = [ancestors[d] | 1 << index[d] for d in inputs]
        ancestors[entry.drv] = _union(reach)
        for i, dep in enumerate(inputs):
            others = _union(reach[:i] + reach[i + 1 :])  # what the other inputs lead to
            edges.append(Edge(dep, entry.drv, bool(others >> index[dep] & 1)))
    return GraphView(tuple(entries), tuple(edges), _clusters(entries))


def _union(bits: Sequence[int]) -> int:
    return functools.reduce(operator.or_, bits, 0)


def _clusters(entries: Sequence[Entry]) -> dict[str, tuple[str, ...]]:
    """Stage -> its derivations, stages in build order; a source goes to the first stage that
    uses it, directly or through other sources (the seed's archive, say)."""
    order = list(dict.fromkeys(e.stage for e in entries if not e.is_source and e.stage))
    stage_of = {e.drv: e.stage for e in entries if not e.is_source and e.stage}
    users: dict[str, list[str]] = {}
    for entry in entries:
        for dep in entry.inputs:
            users.setdefault(dep, []).append(entry.drv)
    for entry in reversed(entries):  # users come after their inputs: resolve them first
        if entry.drv not in stage_of:
            used_in = {stage_of.get(user) for user in users.get(entry.drv, ())} & set(order)
            stage_of[entry.drv] = min(used_in, key=order.index) if used_in else SOURCE_STAGE
    clusters: dict[str, list[str]] = {stage: [] for stage in order}
    for entry in entries:
        clusters.setdefault(stage_of[entry.drv], []).append(entry.drv)
    return {stage: tuple(drvs) for stage, drvs in clusters.items()}


def render_dot(view: GraphView, all_edges: bool = False) -> str:
    """Graphviz: left to right, a box per derivation filled by status (a note for a source),
    a labelled cluster per stage, the implied edges (with `all_edges`) grey and dashed."""
    by_drv = {e.drv: e for e in view.entries}
    ids = {e.drv: f"n{i}" for i, e in enumerate(view.entries)}
    lines = [
        "digraph bootstrap {",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
        '  edge [color="#555555"];',
    ]
    for number, (stage, drvs) in enumerate(view.clusters.items()):
        lines += [f"  subgraph cluster_{number} {{", f"    label={_dot_string(stage)};"]
        for drv in drvs:
            entry = by_drv[drv]
            shape = ", shape=note, style=filled" if entry.is_source else ""
            lines.append(
                f"    {ids[drv]} [label={_dot_string(entry.name)}, "
                f'fillcolor="{COLOURS[entry.status]}", tooltip={_dot_string(_tooltip(entry))}'
                f"{shape}];"
            )
        lines.append("  }")
    for edge in view.drawn_edges(all_edges):
        style = ' [color="#bbbbbb", style=dashed, constraint=false]' if edge.implied else ""
        lines.append(f"  {ids[edge.source]} -> {ids[edge.user]}{style};")
    lines += _dot_legend(view)
    return "\n".join([*lines, "}"]) + "\n"


def _dot_legend(view: GraphView) -> list[str]:
    shown = [s for s in STATUSES if any(e.status == s for e in view.entries)]
    lines = ["  subgraph cluster_legend {", '    label="status";']
    lines += [f'    legend_{s} [label="{s}", fillcolor="{COLOURS[s]}"];' for s in shown]
    return [*lines, "  }"]


def _tooltip(entry: Entry) -> str:
    return f"{entry.status}: {entry.output}"


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_mermaid(view: GraphView, all_edges: bool = False) -> str:
    """Mermaid flowchart: a subgraph per stage, a class per status, implied edges dotted."""
    by_drv = {e.drv: e for e in view.entries}
    ids = {e.drv: f"n{i}" for i, e in enumerate(view.entries)}
    lines = ["flowchart LR"]
    for number, (stage, drvs) in enumerate(view.clusters.items()):
        lines.append(f'  subgraph s{number}["{_mermaid_text(stage)}"]')
        for drv in drvs:
            entry = by_drv[drv]
            left, right = ("[/", "/]") if entry.is_source else ("(", ")")
            lines.append(f'    {ids[drv]}{left}"{_mermaid_text(entry.name)}"{right}')
        lines.append("  end")
    for edge in view.drawn_edges(all_edges):
        arrow = "-.->" if edge.implied else "-->"
        lines.append(f"  {ids[edge.source]} {arrow} {ids[edge.user]}")
    for status in STATUSES:
        members = [ids[e.drv] for e in view.entries if e.status == status]
        if members:
            lines.append(f"  classDef {status} fill:{COLOURS[status]},stroke:#555555")
            lines.append(f"  class {','.join(members)} {status}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def render_json(view: GraphView, all_edges: bool = False) -> str:
    """Nodes (each entry with its cluster) and edges, `implied` marking the ones outside the
    transitive reduction (listed only with `all_edges`)."""
    cluster_of = {drv: stage for stage, drvs in view.clusters.items() for drv in drvs}
    value = {
        "nodes": [{**e.to_json(), "cluster": cluster_of[e.drv]} for e in view.entries],
        "edges": [
            {"from": e.source, "to": e.user, "implied": e.implied}
            for e in view.drawn_edges(all_edges)
        ],
        "clusters": {stage: list(drvs) for stage, drvs in view.clusters.items()},
        "allEdges": all_edges,
    }
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


RENDERERS = {"dot": render_dot, "mermaid": render_mermaid, "json": render_json}
