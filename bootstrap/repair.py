"""Repairing what `store verify` found broken: restore it, delete only what cannot be restored.

A broken path (missing, corrupt, or not matching its content address) is substituted from a
binary cache when one has it, else rebuilt from its `.drv` when the store still holds that
derivation and everything it was made from. Paths that only refer to it are sound: they
are set aside meanwhile and put back, checked against their registered NAR hash, once what they
refer to is valid again. Whatever cannot be restored is deleted with what refers to it, so the
store stays closed under references.

The store package cannot build, so this lives beside the scheduler.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bootstrap.build import BuildOptions
from bootstrap.buildgraph import BuildGraph
from bootstrap.derivation import Derivation, read_drv_file
from bootstrap.errors import BootstrapError
from bootstrap.fstree import remove_tree
from bootstrap.graphs import dependencies_first
from bootstrap.scheduler import Scheduler
from bootstrap.store import PathInfo, Store
from bootstrap.substitute import Substituter


@dataclass
class RepairResult:
    rebuilt: list[str] = field(default_factory=list)  # built again from their .drv
    substituted: list[str] = field(default_factory=list)  # fetched again from a cache
    restored: list[str] = field(default_factory=list)  # set aside and put back unchanged
    removed: list[str] = field(default_factory=list)  # deleted: could not be restored
    failed: dict[str, str] = field(default_factory=dict)  # drv path -> why its build failed


@dataclass
class _Plan:
    """What a repair does: `affected` is invalidated (it is closed under referrers); of it,
    the outputs of `rebuild` are built again, `held` is set aside to be put back, the rest is
    deleted (and substituted, if a cache has it)."""

    rebuild: dict[str, Derivation]
    affected: list[str]
    held: list[str]
    infos: dict[str, PathInfo]
    outputs_of: dict[str, tuple[str, str]]  # held output -> (its drv, its output name)


def repair_paths(
    store: Store,
    broken: Iterable[str],
    options: BuildOptions,
    substituter: Substituter | None = None,
    max_jobs: int = 1,
) -> RepairResult:
    """Restore the `broken` paths and what refers to them as far as possible (see above)."""
    plan = _plan(store, sorted(set(broken)))
    result = RepairResult()
    with store.temp_dir("repair") as held:
        held.mkdir()
        with store.gc_guard(exclusive=True):
            _invalidate(store, plan, held)
        with store.gc_guard():
            fetched = _rebuild(store, plan, options, substituter, max_jobs, result)
            _sort_deleted(store, plan, substituter, fetched, result)
            _put_back(store, plan, held, result)
    return result


def _rebuild(
    store: Store,
    plan: _Plan,
    options: BuildOptions,
    substituter: Substituter | None,
    max_jobs: int,
    result: RepairResult,
) -> set[str]:
    """Realise the derivations to rebuild (the scheduler substitutes what a cache has, and
    builds the rest); return the output paths that were substituted."""
    if not plan.rebuild:
        return set()
    graph = BuildGraph(_drv_closure(store, plan.rebuild), targets=sorted(plan.rebuild))
    scheduler = Scheduler(store, options, max_jobs, keep_going=True, substituter=substituter)
    summary = scheduler.realise(graph)
    result.failed = summary.failed
    drvs = [graph.derivations[d] for d in summary.substituted]
    return {out.path for drv in drvs for out in drv.outputs.values()}


def _plan(store: Store, broken: list[str]) -> _Plan:
    first = set(store.closure(broken, reverse=True))
    rebuild = {}
    for path in broken:
        drv_path = store.query_info(path).deriver
        if not drv_path or not store.is_valid(drv_path):
            continue
        if not first & set(store.closure([drv_path])):  # its .drv and inputs are all sound
            rebuild[drv_path] = read_drv_file(store.real_path(drv_path))
    outputs = {o.path for drv in rebuild.values() for o in drv.outputs.values()}
    affected = store.closure([*broken, *(o for o in outputs if store.is_valid(o))], reverse=True)
    infos = {path: store.query_info(path) for path in affected}
    held = [p for p in affected if p not in broken and p not in outputs]
    outputs_of = {}
    for path in held:
        if deriver := infos[path].deriver:
            for name, out in store.db.drv_outputs(deriver).items():
                if out == path:
                    outputs_of[path] = (deriver, name)
    return _Plan(rebuild, affected, held, infos, outputs_of)


def _invalidate(store: Store, plan: _Plan, held: Path) -> None:
    """Make every affected path invalid; set the sound ones aside, delete the rest."""
    store.db.unregister(plan.affected)
    keep = set(plan.held)
    for path in plan.affected:
        real = store.real_path(path)
        if path not in keep:
            remove_tree(real)
            continue
        if real.is_dir() and not real.is_symlink():
            real.chmod(0o755)  # renaming a directory rewrites its `..`
        os.rename(real, held / real.name)


def _drv_closure(store: Store, targets: dict[str, Derivation]) -> dict[str, Derivation]:
    """The derivations of `targets` and of all their inputs, read from the store."""
    found = dict(targets)
    todo = [d for drv in targets.values() for d in drv.input_drvs]
    while todo:
        path = todo.pop()
        if path not in found:
            found[path] = read_drv_file(store.real_path(path))
            todo.extend(found[path].input_drvs)
    return found


def _sort_deleted(
    store: Store,
    plan: _Plan,
    substituter: Substituter | None,
    fetched: set[str],
    result: RepairResult,
) -> None:
    """Sort the paths that were deleted into rebuilt, substituted (as outputs, or now by path
    if they have no derivation to rebuild them from) and removed."""
    rebuilt = {o.path for drv in plan.rebuild.values() for o in drv.outputs.values()}
    held = set(plan.held)
    for path in plan.affected:
        if path in held:
            continue
        if store.is_valid(path):
            (result.substituted if path in fetched else result.rebuilt).append(path)
        elif path not in rebuilt and substituter and substituter.substitute([path]):
            result.substituted.append(path)
        else:
            result.removed.append(path)


def _put_back(store: Store, plan: _Plan, held: Path, result: RepairResult) -> None:
    """Register the set-aside paths again, references first; one whose references did not
    all come back is deleted."""
    order = dependencies_first(
        plan.held, lambda path: plan.infos[path].references, within=set(plan.held)
    )
    for path in order:
        info = plan.infos[path]
        if store.is_valid(path):  # the rebuild made it again (its drv was an input)
            result.restored.append(path)
        elif all(store.is_valid(r) for r in info.references if r != path):
            try:
                with store.lock(path):
                    if not store.is_valid(path):
                        store.register_copy(held / store.real_path(path).name, info)
            except BootstrapError:
                result.removed.append(path)
                continue
            if path in plan.outputs_of:
                store.db.set_drv_output(*plan.outputs_of[path], path)
            result.restored.append(path)
        else:
            result.removed.append(path)
