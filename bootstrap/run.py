"""The `run` use case: realise a target's plan in a store, record its manifest, root its output.

The CLI turns flags into a `RunRequest`, calls `run_plan` and prints the `RunResult`. What only
a build needs (remote building, substitution, the seed's host build, downloads) is loaded when
the plan has something to build or fetch, so a no-op run of a built chain loads none of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bootstrap.audit.manifest import build_manifest, manifest_dir, write_manifest
from bootstrap.build import BuildOptions
from bootstrap.buildgraph import BuildGraph, outputs_valid
from bootstrap.builtins import is_seed, seed_archive_hash
from bootstrap.recipe import TargetPlan
from bootstrap.scheduler import Scheduler, Summary
from bootstrap.store import Store
from bootstrap.store.disk import disk_full_as_error
from bootstrap.store.gc import add_root

if TYPE_CHECKING:
    from bootstrap.fetch import Fetcher
    from bootstrap.progress import OnEvent
    from bootstrap.remote.machines import Machine
    from bootstrap.substitute import SubstituteOptions


@dataclass(frozen=True)
class RunRequest:
    """How to run: the build options and the scheduler's settings, where substitutes come from,
    the host compiler that builds a missing pinned seed, and the out link (None: none)."""

    options: BuildOptions = field(default_factory=BuildOptions)
    max_jobs: int = 1
    keep_going: bool = False
    builders: Sequence[Machine] = ()
    substitution: SubstituteOptions | None = None
    host_cc: str = "cc"
    out_link: Path | None = None
    # told what the build does (bootstrap.progress; None: the scheduler's default reporter)
    on_event: OnEvent | None = None


@dataclass(frozen=True)
class RunResult:
    summary: Summary
    manifest: dict
    manifest_file: Path
    output: str  # the `out` path of the plan's last target
    out_link: Path | None  # made only when the run succeeded

    @property
    def ok(self) -> bool:
        return self.summary.ok


def run_plan(
    store: Store,
    plan: TargetPlan,
    request: RunRequest,
    warn: Callable[[str], None],
    on_seed_line: Callable[[str], None] | None = None,
) -> RunResult:
    """Build what `plan` lacks (substituting what the caches have), write its manifest, and
    link the last target's output if everything was built."""
    options = request.options
    substituter = None
    if request.substitution is not None and request.substitution.urls:
        from bootstrap.substitute import Substituter

        substituter = Substituter(store, request.substitution, warn=warn)
    scheduler = Scheduler(
        store,
        options,
        max_jobs=request.max_jobs,
        keep_going=request.keep_going,
        substituter=substituter,
        builders=request.builders,
        before_build=lambda g: ensure_pinned_seed(
            g, store, options.fetcher, request.host_cc, on_seed_line
        ),
        root_name=f"{plan.target}-{plan.profile}",
        on_event=request.on_event,
    )
    graph = plan.graph
    summary = scheduler.realise(graph)
    manifest = build_manifest(store, plan)
    with disk_full_as_error(manifest_dir(store)):
        written = write_manifest(manifest, manifest_dir(store))
    last = graph.derivations[graph.targets[-1]].outputs["out"].path
    link = request.out_link if summary.ok else None
    if link is not None:
        add_root(store, last, link=link)
    return RunResult(summary, manifest, written, last, link)


def ensure_pinned_seed(
    graph: BuildGraph,
    store: Store,
    fetcher: Fetcher,
    host_cc: str,
    on_line: Callable[[str], None] | None = None,
) -> None:
    """Put the pinned seed archive in the download cache (fetched, or built with `host_cc`) if
    a seed path of `graph` still to build unpacks it; `on_line` hears the seed build's log."""
    wanted = {
        seed_archive_hash(drv)
        for drv in graph.derivations.values()
        if is_seed(drv) and drv.env.get("archiveHash") and not outputs_valid(store, drv)
    }
    if not wanted:
        return
    from bootstrap.seed.manifest import load_manifest
    from bootstrap.seed.verify import ensure_seed

    manifest = load_manifest()
    if manifest.archive_sha256 in wanted:
        ensure_seed(manifest, fetcher, cc=host_cc, on_line=on_line)
