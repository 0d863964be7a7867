"""`bootstrap shell|env`: use a built toolchain, as `nix develop` or `guix shell` do."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from bootstrap.cli.cache_options import add_substituter_options, substitute_options
from bootstrap.cli.common import add_target_options, open_store, plan_from_args, print_json
from bootstrap.cli.progress import add_progress_options, reporter, seed_sink, stage_names
from bootstrap.cli.remote import add_builder_options, builder_settings
from bootstrap.devshell import COMPILERS, DevEnv, dev_env, plan_packages, shell_argv
from bootstrap.errors import BootstrapError
from bootstrap.store import Store


def register(commands: argparse._SubParsersAction) -> None:
    shell = commands.add_parser(
        "shell",
        help="a shell (or a command) with a built toolchain: PATH, CC, CXX, "
        "CMAKE_TOOLCHAIN_FILE, ...",
        description="Open $SHELL, or run the command after `--`, with the target's toolchain "
        "and build tools on PATH and CC, CXX, AR, LD, CMAKE_TOOLCHAIN_FILE, PKG_CONFIG_PATH and "
        "the like naming them; what is missing is built first. The store is seen at its "
        "logical directory (bubblewrap binds it there). TARGET may also be a toolchain store "
        "path or a `result` link.",
    )
    _add_env_options(shell)
    add_builder_options(shell)
    add_substituter_options(shell)
    shell.add_argument(
        "--pure",
        action="store_true",
        help="see nothing of the host but the working directory: only the store, /dev, /proc, "
        "a fresh /tmp, and a cleared environment",
    )
    add_progress_options(shell)
    shell.set_defaults(func=run_shell, passthrough=[])

    env = commands.add_parser(
        "env",
        help="print a toolchain's environment as `export` lines or JSON",
        description="Print the variables `bootstrap shell` sets, as POSIX `export` lines (for "
        "`eval`, where the store is at its logical directory) or with --json. Nothing is "
        "built: a missing toolchain is an error naming the command that builds it.",
    )
    _add_env_options(env)
    env.add_argument("--json", action="store_true", help="one JSON object")
    env.set_defaults(func=run_env)


def _add_env_options(parser: argparse.ArgumentParser) -> None:
    add_target_options(parser)
    parser.add_argument(
        "--compiler",
        choices=COMPILERS,
        default="gcc",
        help="what CC, CXX and the binutils variables name (default: gcc; clang from stage7)",
    )
    parser.add_argument(
        "--with",
        dest="with_packages",
        action="append",
        default=[],
        metavar="PACKAGE",
        help="add a package of the target by name (from any stage, e.g. cmake or ninja with "
        "--until stage6); repeatable",
    )


def run_shell(args: argparse.Namespace) -> int:
    store = open_store(args)
    env = _environment(args, store, build=True)
    argv, variables = shell_argv(
        store, env, args.passthrough, Path.cwd(), args.pure, os.environ.get("PATH", "")
    )
    return subprocess.run(argv, env=variables).returncode


def run_env(args: argparse.Namespace) -> int:
    store = open_store(args, create=False)
    env = _environment(args, store, build=False)
    if args.json:
        print_json(env.as_json())
    else:
        sys.stdout.write(env.exports())
    return 0


def _environment(args: argparse.Namespace, store: Store, build: bool) -> DevEnv:
    """The environment the arguments name: a toolchain store path as it is, or the target's
    toolchain and tools (built first when `build`)."""
    target = args.target_opt or args.target or ""
    if "/" in target:
        if args.with_packages:
            raise BootstrapError("--with needs a TARGET, not a store path")
        toolchain = store.to_store_path(target)
        tools = [p for p in store.closure([toolchain]) if p != toolchain]
        return dev_env(store, toolchain, tools, args.compiler)
    until, args.until = args.until, None  # --with may take a package of a later stage
    plan = plan_from_args(args, store)
    drvs = plan_packages(plan, until, args.with_packages)
    outputs = [plan.graph.derivations[d].outputs["out"].path for d in drvs]
    missing = [d for d, out in zip(drvs, outputs, strict=True) if not store.is_valid(out)]
    if missing and not build:
        raise BootstrapError(
            f"{plan.graph.derivations[missing[0]].name} is not built yet: "
            f"`bootstrap shell` or `bootstrap run --until {plan.stage_of(missing[0])}` builds it"
        )
    if missing:
        _build(args, store, plan, missing)
    return dev_env(store, outputs[0], outputs[1:], args.compiler)


def _build(args: argparse.Namespace, store: Store, plan, targets: list[str]) -> None:
    from bootstrap.build import BuildOptions
    from bootstrap.fetch import Fetcher
    from bootstrap.run import ensure_pinned_seed
    from bootstrap.scheduler import BuildGraph, Scheduler
    from bootstrap.substitute import Substituter

    builders, max_jobs = builder_settings(args)
    options = BuildOptions(cores=os.cpu_count() or 1, fetcher=Fetcher())
    report = reporter(args, stage_names(plan))
    graph = BuildGraph(plan.graph.derivations, plan.graph.local_sources, targets)
    scheduler = Scheduler(
        store,
        options,
        max_jobs=max_jobs,
        substituter=Substituter(store, substitute_options(args), warn=_warn),
        builders=builders,
        before_build=lambda g: ensure_pinned_seed(
            g, store, options.fetcher, "cc", on_line=seed_sink(report)
        ),
        root_name=f"{plan.target}-{plan.profile}-shell",
        on_event=report,
    )
    summary = scheduler.realise(graph)
    print(summary.render(graph), file=sys.stderr)
    if not summary.ok:
        raise BootstrapError("the shell's toolchain could not be built (see above)")


def _warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
