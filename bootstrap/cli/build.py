"""`bootstrap run|fetch|log`: evaluate the staged recipes and realise them."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bootstrap.audit.manifest import summary_lines
from bootstrap.build import BuildOptions, log_path
from bootstrap.buildgraph import BuildGraph
from bootstrap.builtins import BUILTINS
from bootstrap.cli import with_user_options
from bootstrap.cli.cache_options import add_substituter_options, substitute_options
from bootstrap.cli.common import (
    add_store_options,
    add_target_options,
    open_store,
    plan_from_args,
    print_json,
    store_dir_from_args,
)
from bootstrap.cli.progress import add_progress_options, reporter, seed_sink, stage_names
from bootstrap.cli.remote import add_builder_options, add_time_limit_options, builder_settings
from bootstrap.config import CORES, count_setting
from bootstrap.errors import BootstrapError
from bootstrap.fetch import Fetcher
from bootstrap.plan_status import run_json
from bootstrap.run import RunRequest, ensure_pinned_seed, run_plan
from bootstrap.scheduler import Scheduler


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
    add_progress_options(run)
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
    add_progress_options(fetch)
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
    plan = plan_from_args(args, store_dir_from_args(args))  # a typo makes no store
    store = open_store(args)
    options = BuildOptions(
        cores=count_setting(CORES, args.cores, os.cpu_count() or 1, least=1),
        sandboxed=not args.no_sandbox,
        max_seconds=args.timeout,
        max_silent_seconds=args.max_silent or None,
        fetcher=Fetcher(offline=args.offline),
    )
    request = RunRequest(
        options,
        max_jobs=max_jobs,
        keep_going=args.keep_going,
        builders=builders,
        substitution=substitution,
        host_cc=args.host_cc,
        out_link=None if args.no_out_link else Path(args.out_link),
        on_event=reporter(args, stage_names(plan)),
    )
    result = run_plan(store, plan, request, warn=_warn, on_seed_line=seed_sink(request.on_event))
    out = sys.stderr if args.json else sys.stdout  # --json: stdout holds the JSON alone
    print(with_user_options(result.summary.render(plan.graph), args), file=out)
    print("stage hashes (compare with `bootstrap audit diff`):", file=out)
    print("\n".join(f"  {line}" for line in summary_lines(result.manifest)), file=out)
    print(f"manifest: {result.manifest_file}", file=out)
    if result.out_link is not None:
        print(f"{args.out_link} -> {result.output}", file=out)
    if args.json:
        link = str(result.out_link) if result.out_link else None
        ended = {"manifest": str(result.manifest_file), "outLink": link}
        print_json(
            {
                **run_json(result.summary, plan.graph, result.manifest),
                **ended,
                "output": result.output,
            }
        )
    return 0 if result.ok else 1


def _warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_fetch(args: argparse.Namespace) -> int:
    graph = plan_from_args(args, store_dir_from_args(args)).graph
    store = open_store(args)
    fetcher = Fetcher()
    report = reporter(args)
    ensure_pinned_seed(graph, store, fetcher, args.host_cc, on_line=seed_sink(report))
    fetches = [p for p in graph.topological() if graph.derivations[p].builder in BUILTINS]
    sources = BuildGraph(graph.derivations, graph.local_sources, fetches)
    options = BuildOptions(fetcher=fetcher)
    scheduler = Scheduler(store, options, max_jobs=args.max_jobs, keep_going=True, on_event=report)
    summary = scheduler.realise(sources)
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
