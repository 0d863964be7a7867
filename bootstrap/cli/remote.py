"""`bootstrap build DRV...`: realise derivations already in the store, here or on remote
builders; and the `--builders`/`--max-jobs` options `run` shares."""

from __future__ import annotations

import argparse
import os
import sys

from bootstrap.build import DEFAULT_MAX_SILENT_SECONDS, BuildOptions
from bootstrap.buildgraph import BuildGraph
from bootstrap.cli.cache_options import add_substituter_options, substitute_options
from bootstrap.cli.common import add_store_options, open_store
from bootstrap.cli.progress import add_progress_options, reporter
from bootstrap.config import BUILDERS, CORES, MAX_JOBS, count_setting, text_setting
from bootstrap.derivation import DRV_EXTENSION, Derivation, read_drv_file
from bootstrap.errors import BootstrapError
from bootstrap.remote.machines import Machine, parse_machines
from bootstrap.scheduler import Scheduler
from bootstrap.store import Store
from bootstrap.substitute import Substituter


def register(commands: argparse._SubParsersAction) -> None:
    build = commands.add_parser(
        "build",
        help="realise derivations in the store (as nix-store --realise), here or remotely",
        description="Build every output of the given derivations (and whatever they need) "
        "that is not valid yet, then print the output paths, one per line. The derivations "
        "must be in the store (ours, or imported with `drv import`).",
    )
    build.add_argument("drvs", nargs="+", metavar="DRV", help="a .drv store path")
    add_store_options(build)
    add_builder_options(build)
    add_substituter_options(build)
    build.add_argument(
        "--cores",
        type=_count,
        help="cores each build may use (default: $BOOTSTRAP_CORES, the config file's cores, "
        "else all)",
    )
    build.add_argument(
        "--keep-going", action="store_true", help="build what does not depend on a failure"
    )
    add_time_limit_options(build)
    add_progress_options(build)
    build.set_defaults(func=run_build)


def add_time_limit_options(parser: argparse.ArgumentParser) -> None:
    """--timeout and --max-silent, as every command that builds takes them."""
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="kill a build after this")
    parser.add_argument(
        "--max-silent",
        type=float,
        default=DEFAULT_MAX_SILENT_SECONDS,
        metavar="SECONDS",
        help="kill a build that prints nothing for this long "
        f"(default {DEFAULT_MAX_SILENT_SECONDS:.0f}; 0: no limit)",
    )


def add_builder_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-j",
        "--max-jobs",
        type=_count,
        metavar="N",
        help="derivations built here at once; 0 builds nothing here (default: "
        "$BOOTSTRAP_MAX_JOBS, the config file's max-jobs, else one per core: a build beside "
        "one with a longer path ahead of it runs niced, in the cycles that one leaves idle)",
    )
    parser.add_argument(
        "--builders",
        metavar="SPEC",
        help="remote machines running Nix, in Nix's syntax: 'ssh://[user@]host[:port] "
        "[system [ssh-key [max-jobs [speed-factor [features [mandatory [host-key]]]]]]]', "
        "several separated by ';' or newlines, or @FILE (default: $BOOTSTRAP_BUILDERS, "
        "then the config file's builders)",
    )


def builder_settings(args: argparse.Namespace) -> tuple[list[Machine], int]:
    """The remote machines and the local job count, from flags, environment or config."""
    spec, origin = text_setting(BUILDERS, args.builders)
    machines = parse_machines(spec, origin) if spec.strip() else []
    max_jobs = count_setting(MAX_JOBS, args.max_jobs, os.cpu_count() or 1)
    if max_jobs == 0 and not machines:
        raise BootstrapError(
            "max-jobs is 0 and no builders are set: nothing could build; give --builders "
            "or a positive --max-jobs"
        )
    return machines, max_jobs


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number (0 or more), got {text!r}")
    return int(text)


def run_build(args: argparse.Namespace) -> int:
    builders, max_jobs = builder_settings(args)
    substitution = substitute_options(args)
    store = open_store(args)
    graph = graph_from_store(store, [store.to_store_path(path) for path in args.drvs])
    options = BuildOptions(
        cores=max(1, count_setting(CORES, args.cores, os.cpu_count() or 1)),
        max_seconds=args.timeout,
        max_silent_seconds=args.max_silent or None,
    )
    scheduler = Scheduler(
        store,
        options,
        max_jobs=max_jobs,
        keep_going=args.keep_going,
        builders=builders,
        substituter=Substituter(store, substitution, warn=lambda m: print(m, file=sys.stderr)),
        on_event=reporter(args),
    )
    summary = scheduler.realise(graph)
    print(summary.render(graph), file=sys.stderr)
    if not summary.ok:
        return 1
    for target in graph.targets:
        for out in graph.derivations[target].outputs.values():
            print(out.path)
    return 0


def graph_from_store(store: Store, targets: list[str]) -> BuildGraph:
    """The graph of `targets` and every derivation they need, read from the store."""
    derivations: dict[str, Derivation] = {}
    todo = list(targets)
    while todo:
        path = todo.pop()
        if path in derivations:
            continue
        if not path.endswith(DRV_EXTENSION) or not store.is_valid(path):
            raise BootstrapError(
                f"{path}: not a derivation in the store at {store.root} "
                "(add it with `bootstrap drv import`)"
            )
        derivations[path] = read_drv_file(store.real_path(path))
        todo.extend(derivations[path].input_drvs)
    return BuildGraph(derivations, targets=list(dict.fromkeys(targets)))
