"""What a target's plan holds and how far the store has got with it: each derivation's stage,
name, output and status, in build order (`bootstrap show`, `bootstrap graph`), and the build
times the store recorded for them (`show --timings`).

A status is one of:
- built: every output is valid, built here;
- substituted: every output is valid, taken from a binary cache;
- building: another process holds the output's lock;
- partial: an interrupted resumable build left its work, which the next run continues;
- missing: none of the above.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bootstrap.build import has_kept_build, outputs_valid
from bootstrap.builtins import BUILTINS
from bootstrap.derivation import Derivation
from bootstrap.recipe import TargetPlan
from bootstrap.store import Store
from bootstrap.timings import Report, Step

if TYPE_CHECKING:
    from bootstrap.buildgraph import BuildGraph
    from bootstrap.scheduler import Summary

BUILT, SUBSTITUTED, BUILDING, PARTIAL, MISSING = (
    "built",
    "substituted",
    "building",
    "partial",
    "missing",
)
STATUSES = (BUILT, SUBSTITUTED, BUILDING, PARTIAL, MISSING)
SOURCE_STAGE = "(source)"


def status_of(store: Store, drv_path: str, drv: Derivation) -> str:
    """The status of one derivation in `store` (see the module's list)."""
    if outputs_valid(store, drv):
        return SUBSTITUTED if store.db.substituted_from(drv.outputs["out"].path) else BUILT
    if store.is_locked(drv.outputs["out"].path):
        return BUILDING
    return PARTIAL if has_kept_build(store, drv_path, drv) else MISSING


@dataclass(frozen=True)
class Entry:
    """One derivation of a plan: its stage (`(source)` for a download or the seed's unpack
    outside any stage), name, .drv path, output path, status, and the drvs it takes as inputs."""

    stage: str
    name: str
    drv: str
    output: str
    status: str
    inputs: tuple[str, ...]

    @property
    def is_source(self) -> bool:
        return self.stage == SOURCE_STAGE

    def to_json(self) -> dict:
        return {
            "stage": self.stage,
            "name": self.name,
            "drv": self.drv,
            "output": self.output,
            "status": self.status,
            "inputs": list(self.inputs),
        }


def plan_entries(store: Store, plan: TargetPlan) -> list[Entry]:
    """Every derivation of `plan` in build order, inputs first, with its status."""
    graph = plan.graph
    entries = []
    for path in graph.topological():
        drv = graph.derivations[path]
        stage = plan.stage_of(path) or (SOURCE_STAGE if drv.builder in BUILTINS else "")
        entries.append(
            Entry(
                stage,
                drv.name,
                path,
                drv.outputs["out"].path,
                status_of(store, path, drv),
                tuple(graph.inputs_of(path)),
            )
        )
    return entries


def timing_report(store: Store, plan: TargetPlan) -> Report:
    """Every derivation of `plan` in build order with the time its build took, where the
    store recorded one, or its status (why it has none)."""
    steps = []
    for entry in plan_entries(store, plan):
        time = store.db.build_time(entry.output)
        note = "" if time else "no time recorded" if entry.status == BUILT else entry.status
        steps.append(Step(entry.drv, entry.name, entry.inputs, entry.stage, time, note))
    return Report(tuple(steps))


def run_json(summary: Summary, graph: BuildGraph, manifest: dict) -> dict:
    """The end of `bootstrap run --json`: what the run did to each derivation (by name and
    .drv path) and the stage hashes it recorded."""

    def named(drv: str) -> dict:
        return {"name": graph.derivations[drv].name, "drv": drv}

    return {
        "ok": summary.ok,
        "seconds": summary.seconds,
        "built": [
            {**named(o.drv_path), "outputs": o.outputs, "wall": o.seconds, "cpu": o.cpu_seconds}
            for o in summary.built
        ],
        "substituted": [{**named(drv), "from": url} for drv, url in summary.substituted.items()],
        "reused": [named(drv) for drv in summary.reused],
        "failed": [{**named(drv), "reason": why} for drv, why in summary.failed.items()],
        "skipped": [named(drv) for drv in summary.skipped],
        "stages": {
            name: {
                "hash": manifest["stages"][name]["hash"],
                "complete": manifest["stages"][name]["complete"],
            }
            for name in manifest["stageOrder"]
        },
    }
