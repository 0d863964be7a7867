"""What a hermeticity audit checks, and against what: the items named (store paths, a stage's
outputs, plain files) and the host path strings each output's recipe allows.

Pure policy over a store and the target's plans; the CLI supplies the plans (evaluated only
when a stage is named or store paths need their allowances) and prints the result.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bootstrap.errors import BootstrapError
from bootstrap.recipe import TargetPlan
from bootstrap.store import Store


@dataclass(frozen=True)
class AuditItems:
    """Valid store paths (a stage expanded to its outputs), plain files, and the host path
    strings each output allows (an output no current recipe builds is allowed none)."""

    store_paths: list[str] = field(default_factory=list)
    plain: list[Path] = field(default_factory=list)
    allowed: dict[str, frozenset[str]] = field(default_factory=dict)


def classify(
    store: Store,
    items: Iterable[str],
    plan: Callable[[], TargetPlan],
    every_profile: Callable[[], Iterable[TargetPlan]],
) -> AuditItems:
    """Split `items` into valid store paths (stages, looked up in `plan()`, expand to their
    outputs) and plain files; with store paths, their allowances from `every_profile()`'s
    plans (a store path names neither its recipe nor its profile)."""
    target: TargetPlan | None = None
    store_paths: list[str] = []
    plain: list[Path] = []
    for item in items:
        if in_store(store, item):
            path = store.to_store_path(item)
            store.query_info(path)
            store_paths.append(path)
        elif Path(item).exists():
            plain.append(Path(item))
        elif "/" in item:
            raise BootstrapError(f"{item}: no such file or directory")
        else:
            target = target or plan()
            if item not in target.stages:
                raise BootstrapError(
                    f"{item!r} is neither a store path, a file nor a stage "
                    f"(stages: {', '.join(target.stages)})"
                )
            outputs = stage_outputs(target, item)
            missing = [p for p in outputs if not store.is_valid(p)]
            if missing:
                raise BootstrapError(f"stage {item} is not fully built: {missing[0]} is missing")
            store_paths += outputs
    allowed = allowances(every_profile()) if store_paths else {}
    return AuditItems(store_paths, plain, allowed)


def in_store(store: Store, item: str) -> bool:
    """Whether `item` names a store path: a logical or physical one, or a file or symlink
    (a `result` link) that resolves into the store."""
    physical = (f"{store.physical_dir}/", f"{os.path.realpath(store.physical_dir)}/")
    return item.startswith((store.store_dir + "/", *physical)) or (
        os.path.lexists(item) and os.path.realpath(item).startswith(physical)
    )


def allowances(plans: Iterable[TargetPlan]) -> dict[str, frozenset[str]]:
    """Output path -> the host path strings its recipe allows, over all `plans`."""
    allowed: dict[str, frozenset[str]] = {}
    for plan in plans:
        allowed |= plan.allowed_host_paths
    return allowed


def stage_outputs(plan: TargetPlan, stage: str) -> list[str]:
    derivations = plan.graph.derivations
    return [o.path for d in plan.stages[stage] for o in derivations[d].outputs.values()]
