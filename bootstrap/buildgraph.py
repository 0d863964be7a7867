"""A build graph: derivations keyed by drv path, the local files they use, and the targets.

Pure data beside the derivation model, so the recipe evaluator that makes graphs needs nothing
of the builder. `instantiate` writes a graph into the store and says which of its outputs are
valid, in a few queries however large the graph (a no-op run of a built chain asks the
database a handful of questions, not several per derivation).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bootstrap.derivation import Derivation, add_to_store, drv_path
from bootstrap.errors import BootstrapError
from bootstrap.graphs import dependencies_first
from bootstrap.store import Store


@dataclass
class BuildGraph:
    """Derivations keyed by drv path (closed under inputs), the local files they use, targets."""

    derivations: dict[str, Derivation]
    local_sources: dict[str, Path] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)

    def topological(self, roots: Iterable[str] | None = None) -> list[str]:
        """Drv paths reachable from `roots` (default: targets), inputs before users."""
        return dependencies_first(roots if roots is not None else self.targets, self.inputs_of)

    def inputs_of(self, path: str) -> list[str]:
        if path not in self.derivations:
            raise BootstrapError(f"build graph: {path} is used but not part of the graph")
        return list(self.derivations[path].input_drvs)

    def output_paths(self) -> list[str]:
        """Every output path of every derivation."""
        return [o.path for drv in self.derivations.values() for o in drv.outputs.values()]


def outputs_valid(store: Store, drv: Derivation) -> bool:
    return all(store.is_valid(out.path) for out in drv.outputs.values())


def complete(graph: BuildGraph, valid: set[str]) -> set[str]:
    """The drv paths of `graph` whose outputs are all among the `valid` paths."""
    return {
        path
        for path, drv in graph.derivations.items()
        if all(out.path in valid for out in drv.outputs.values())
    }


def instantiate(store: Store, graph: BuildGraph) -> set[str]:
    """Write the graph's local sources and derivations (reachable from its targets) into the
    store, record the outputs of every derivation whose outputs are all valid, and return the
    valid output paths of the graph.

    A derivation is checked against its key (its computed drv path) when it is written; one
    already valid in the store is not read or written again."""
    order = graph.topological()
    valid = store.db.valid_among([*graph.local_sources, *order, *graph.output_paths()])
    for expected, file in sorted(graph.local_sources.items()):
        if expected not in valid:
            added = store.add_path(file, expected.split("-", 1)[1])
            if added != expected:
                raise BootstrapError(f"{file} changed while bootstrap was running; run again")
    for path in order:
        if path in valid:
            continue
        drv = graph.derivations[path]
        if drv_path(drv, store.store_dir) != path:
            raise BootstrapError(f"build graph: {drv.name} is keyed as {path} by mistake")
        add_to_store(store, drv)
    done = complete(graph, valid)
    store.db.set_drv_outputs(
        (path, name, out.path)
        for path in order
        if path in done
        for name, out in graph.derivations[path].outputs.items()
    )
    return valid
