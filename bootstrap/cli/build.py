"""`bootstrap run|show|graph|fetch|log`: evaluate the staged recipes and realise them."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bootstrap import seed
from bootstrap.audit.manifest import build_manifest, manifest_dir, summary_lines, write_manifest
from bootstrap.build import (
    BuildOptions,
    has_kept_build,
    log_path,
    outputs_valid,
)
from bootstrap.builtins import BUILTINS, is_seed
from bootstrap.cli.cache_options import add_substituter_options, substitute_options
from bootstrap.cli.common import add_store_options, add_target_options, open_store, plan_from_args
from bootstrap.cli.remote import add_builder_options, add_time_limit_options, builder_settings
from bootstrap.derivation import Derivation
from bootstrap.errors import BootstrapError
from bootstrap.fetch import Fetcher
from bootstrap.recipe import TargetPlan
from bootstrap.scheduler import BuildGraph, Scheduler
from bootstrap.store import Store
from bootstrap.store.disk import disk_full_as_error
from bootstrap.store.gc import add_root
from bootstrap.substitute import Substituter
from bootstrap.timings import Report, Step, markdown_table, text_table


def register(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="build the toolchain for a target, stage by stage (resumable)",
        description="Build everything the target's stages need that is not yet in the store. "
        "Interrupt at any time; running again continues where it stopped.",
    )
    add_target_options(run)
    add_builder_options(run)
    run.add_argument(
        "--cores",
        type=_positive,
        default=os.cpu_count() or 1,
        help="cores each build may use (default: all)",
    )
    run.add_argument(
        "--keep-going", action="store_true", help="build what does not depend on a failure"
    )
    run.add_argument(
        "--no-sandbox",
        action="store_true",
        help="build without isolation "
        "(only when --store-dir is the physical store; recorded as non-hermetic)",
    )
    run.add_argument("--offline", action="store_true", help="never use the network")
    _add_host_cc(run)
    add_time_limit_options(run)
    run.add_argument(
        "--out-link",
        default="result",
        metavar="LINK",
        help="symlink to the last package's output, a GC root (default: result)",
    )
    run.add_argument("--no-out-link", action="store_true", help="create no out link")
    add_substituter_options(run)
    run.set_defaults(func=run_run)

    show = commands.add_parser(
        "show",
        help="list what a target builds, from what, and status",
        description="List every derivation of the target's stages in build order, with its "
        "status: built, substituted (taken from a binary cache), building (another process "
        "holds its lock), partial (an interrupted build left its work, which the next run "
        "continues) or missing.",
    )
    add_target_options(show)
    show.add_argument(
        "--timings",
        action="store_true",
        help="each build's wall and CPU seconds, then the critical path and core use",
    )
    show.add_argument(
        "--format",
        choices=["text", "markdown"],
        default="text",
        help="with --timings: a text table, or a Markdown one (docs/stages.md's)",
    )
    show.set_defaults(func=run_show)

    graph = commands.add_parser("graph", help="print the build graph (Graphviz dot)")
    add_target_options(graph)
    graph.add_argument("--format", choices=["dot"], default="dot")
    graph.set_defaults(func=run_graph)

    fetch = commands.add_parser(
        "fetch",
        help="download every source a target needs",
        description="Download every source of the target's stages into the download cache, "
        "and build the pinned seed there if it is missing, so that `run --offline` needs no "
        "network. A source that cannot be downloaded does not stop the others.",
    )
    add_target_options(fetch)
    fetch.add_argument("-j", "--max-jobs", type=_positive, default=4)
    _add_host_cc(fetch)
    fetch.set_defaults(func=run_fetch)

    log = commands.add_parser("log", help="print the build log of a derivation or output")
    log.add_argument("path", metavar="PATH", help="a .drv path or an output path")
    add_store_options(log)
    log.set_defaults(func=run_log)


def _add_host_cc(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host-cc",
        default="cc",
        metavar="CC",
        help="host C compiler that builds the pinned seed if it is neither cached nor "
        "downloadable (default: cc); the result must match the pin",
    )


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(text)


def run_run(args: argparse.Namespace) -> int:
    substitution = substitute_options(args)
    builders, max_jobs = builder_settings(args)
    store = open_store(args)
    plan = plan_from_args(args, store)
    graph = plan.graph
    options = BuildOptions(
        cores=args.cores,
        sandboxed=not args.no_sandbox,
        max_seconds=args.timeout,
        max_silent_seconds=args.max_silent or None,
        fetcher=Fetcher(offline=args.offline),
    )
    substituter = Substituter(store, substitution, warn=_warn)
    scheduler = Scheduler(
        store,
        options,
        max_jobs=max_jobs,
        keep_going=args.keep_going,
        substituter=substituter,
        builders=builders,
        before_build=lambda g: _ensure_pinned_seed(g, store, options.fetcher, args.host_cc),
        root_name=f"{plan.target}-{plan.profile}",
    )
    summary = scheduler.realise(graph)
    print(summary.render(graph))
    manifest = build_manifest(store, plan)
    with disk_full_as_error(manifest_dir(store)):
        written = write_manifest(manifest, manifest_dir(store))
    print("stage hashes (compare with `bootstrap audit diff`):")
    print("\n".join(f"  {line}" for line in summary_lines(manifest)))
    print(f"manifest: {written}")
    if not summary.ok:
        return 1
    last = graph.derivations[graph.targets[-1]].outputs["out"].path
    if not args.no_out_link:
        add_root(store, last, link=Path(args.out_link))
        print(f"{args.out_link} -> {last}")
    return 0


def _warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _ensure_pinned_seed(graph: BuildGraph, store: Store, fetcher: Fetcher, host_cc: str) -> None:
    """Put the pinned seed archive in the download cache if a seed path still to build needs it."""
    wanted = {
        drv.env.get("archiveHash")
        for drv in graph.derivations.values()
        if is_seed(drv) and not outputs_valid(store, drv)
    }
    if not wanted:
        return
    manifest = seed.load_manifest()
    if str(manifest.archive_sha256) in wanted:
        seed.ensure_seed(manifest, fetcher, cc=host_cc, on_line=_seed_progress)


def _seed_progress(line: str) -> None:
    if line.startswith(("not cached", "STEP", "FIXPOINT", "seed download failed")):
        print(f"  seed: {line.rstrip()}", file=sys.stderr)


def run_show(args: argparse.Namespace) -> int:
    store = open_store(args)
    plan = plan_from_args(args, store)
    if args.timings:
        report = timing_report(store, plan)
        print(markdown_table(report) if args.format == "markdown" else text_table(report))
        return 0
    graph = plan.graph
    order = graph.topological()
    width = max([len("package"), *(len(graph.derivations[p].name) for p in order)])
    print(f"{'stage':<10} {'package':<{width}} {'status':<11} output")
    for path in order:
        drv = graph.derivations[path]
        status = _status(store, path, drv)
        stage = plan.stage_of(path) or ("(source)" if drv.builder in BUILTINS else "")
        print(f"{stage:<10} {drv.name:<{width}} {status:<11} {drv.outputs['out'].path}")
    return 0


def timing_report(store: Store, plan: TargetPlan) -> Report:
    """Every derivation of `plan` in build order with the time its build took, where the
    store recorded one, or its status (why it has none)."""
    graph = plan.graph
    steps = []
    for path in graph.topological():
        drv = graph.derivations[path]
        time = store.db.build_time(drv.outputs["out"].path)
        status = _status(store, path, drv)
        note = "" if time else "no time recorded" if status == "built" else status
        stage = plan.stage_of(path) or ("(source)" if drv.builder in BUILTINS else "")
        steps.append(Step(path, drv.name, tuple(graph.inputs_of(path)), stage, time, note))
    return Report(tuple(steps))


def _status(store: Store, path: str, drv: Derivation) -> str:
    if outputs_valid(store, drv):
        return "substituted" if store.db.substituted_from(drv.outputs["out"].path) else "built"
    if store.is_locked(drv.outputs["out"].path):
        return "building"
    return "partial" if has_kept_build(store, path, drv) else "missing"


def run_graph(args: argparse.Namespace) -> int:
    plan = plan_from_args(args, open_store(args))
    graph = plan.graph
    lines = ["digraph bootstrap {", "  rankdir=LR;", "  node [shape=box];"]
    for path in graph.topological():
        drv = graph.derivations[path]
        shape = ", shape=note" if drv.builder in BUILTINS else ""
        stage = plan.stage_of(path)
        label = f"{drv.name}\\n{stage}" if stage else drv.name
        lines.append(f'  "{path}" [label="{label}"{shape}];')
        lines += [f'  "{dep}" -> "{path}";' for dep in drv.input_drvs]
    print("\n".join([*lines, "}"]))
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    store = open_store(args)
    graph = plan_from_args(args, store).graph
    fetcher = Fetcher()
    _ensure_pinned_seed(graph, store, fetcher, args.host_cc)
    fetches = [p for p in graph.topological() if graph.derivations[p].builder in BUILTINS]
    sources = BuildGraph(graph.derivations, graph.local_sources, fetches)
    options = BuildOptions(fetcher=fetcher)
    summary = Scheduler(store, options, max_jobs=args.max_jobs, keep_going=True).realise(sources)
    print(summary.render(sources))
    return 0 if summary.ok else 1


def run_log(args: argparse.Namespace) -> int:
    store = open_store(args)
    path = store.to_store_path(args.path)
    drv_path = path if path.endswith(".drv") else store.query_info(path).deriver
    if not drv_path:
        raise BootstrapError(f"{path} was not built by bootstrap: it has no deriver")
    log = log_path(store, drv_path)
    if not log.exists():
        raise BootstrapError(f"no build log for {drv_path}")
    sys.stdout.write(log.read_text(errors="replace"))
    return 0
