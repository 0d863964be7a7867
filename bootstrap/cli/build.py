"""`bootstrap run|fetch|log`: evaluate the staged recipes and realise them."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bootstrap import seed
from bootstrap.audit.manifest import build_manifest, manifest_dir, summary_lines, write_manifest
from bootstrap.build import BuildOptions, log_path, outputs_valid
from bootstrap.builtins import BUILTINS, UNPACK
from bootstrap.cli.cache_options import add_substituter_options, substitute_options
from bootstrap.cli.common import (
    add_store_options,
    add_target_options,
    open_store,
    plan_from_args,
    print_json,
)
from bootstrap.cli.remote import add_builder_options, add_time_limit_options, builder_settings
from bootstrap.config import CORES, count_setting
from bootstrap.errors import BootstrapError
from bootstrap.fetch import Fetcher
from bootstrap.plan_status import run_json
from bootstrap.scheduler import BuildGraph, Scheduler
from bootstrap.store import Store
from bootstrap.store.disk import disk_full_as_error
from bootstrap.store.gc import add_root
from bootstrap.substitute import Substituter


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
        help="cores each build may use (default: $BOOTSTRAP_CORES, the config file's cores, "
        "else all)",
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
    run.add_argument(
        "--json",
        action="store_true",
        help="end with one JSON object on stdout (what each derivation became, the stage "
        "hashes, the manifest and the out link); the summary lines go to stderr",
    )
    add_substituter_options(run)
    run.set_defaults(func=run_run)

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
        cores=count_setting(CORES, args.cores, os.cpu_count() or 1, least=1),
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
    out = sys.stderr if args.json else sys.stdout  # --json: stdout holds the JSON alone
    print(summary.render(graph), file=out)
    manifest = build_manifest(store, plan)
    with disk_full_as_error(manifest_dir(store)):
        written = write_manifest(manifest, manifest_dir(store))
    print("stage hashes (compare with `bootstrap audit diff`):", file=out)
    print("\n".join(f"  {line}" for line in summary_lines(manifest)), file=out)
    print(f"manifest: {written}", file=out)
    last = graph.derivations[graph.targets[-1]].outputs["out"].path
    link = None if args.no_out_link or not summary.ok else Path(args.out_link)
    if link is not None:
        add_root(store, last, link=link)
        print(f"{args.out_link} -> {last}", file=out)
    if args.json:
        ended = {"manifest": str(written), "outLink": str(link) if link else None}
        print_json({**run_json(summary, graph, manifest), **ended, "output": last})
    return 0 if summary.ok else 1


def _warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _ensure_pinned_seed(graph: BuildGraph, store: Store, fetcher: Fetcher, host_cc: str) -> None:
    """Put the pinned seed archive in the download cache if a seed path still to build needs it."""
    wanted = {
        drv.env.get("archiveHash")
        for drv in graph.derivations.values()
        if drv.builder == UNPACK and not outputs_valid(store, drv)
    }
    if not wanted:
        return
    manifest = seed.load_manifest()
    if str(manifest.archive_sha256) in wanted:
        seed.ensure_seed(manifest, fetcher, cc=host_cc, on_line=_seed_progress)


def _seed_progress(line: str) -> None:
    if line.startswith(("not cached", "STEP", "FIXPOINT", "seed download failed")):
        print(f"  seed: {line.rstrip()}", file=sys.stderr)


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
    store = open_store(args, create=False)
    path = store.to_store_path(args.path)
    drv_path = path if path.endswith(".drv") else store.query_info(path).deriver
    if not drv_path:
        raise BootstrapError(f"{path} was not built by bootstrap: it has no deriver")
    log = log_path(store, drv_path)
    if not log.exists():
        raise BootstrapError(f"no build log for {drv_path}")
    sys.stdout.write(log.read_text(errors="replace"))
    return 0
