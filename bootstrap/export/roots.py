"""Which store paths an export starts from: a target's stage outputs, or given store paths."""

from __future__ import annotations

from bootstrap.errors import BootstrapError
from bootstrap.recipe import TargetPlan
from bootstrap.store import Store


def stage_outputs(store: Store, plan: TargetPlan) -> list[str]:
    """Every output of every package of the plan's stages, all of which must be built.

    Sources fetched for a package are not roots; they are exported only when an output
    refers to them.
    """
    outputs = []
    for stage, drv_paths in plan.stages.items():
        for drv_path in drv_paths:
            drv = plan.graph.derivations[drv_path]
            for output in drv.outputs.values():
                if not store.is_valid(output.path):
                    raise BootstrapError(
                        f"{drv.name} (stage {stage}) is not built: run "
                        f"`bootstrap run {plan.target} --until {stage}` first"
                    )
                outputs.append(output.path)
    return sorted(set(outputs))


def store_path_root(store: Store, path: str) -> str:
    """A store path given on the command line (logical or physical), which must be valid."""
    store_path = store.to_store_path(path)
    if not store.is_valid(store_path):
        raise BootstrapError(f"{store_path} is not a valid path in the store at {store.root}")
    return store_path
