"""`bootstrap copy` and `bootstrap import`: paths in from binary caches or archives, and out to
machines running Nix."""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from bootstrap.cli.cache_options import add_substituter_options, substitute_options
from bootstrap.cli.common import (
    add_store_options,
    add_target_options,
    open_store,
    plan_from_args,
    store_paths_or_target,
)
from bootstrap.errors import BootstrapError
from bootstrap.export.tar_import import import_closure_tar
from bootstrap.remote.copy import copy_to_machine
from bootstrap.remote.machines import parse_store_uri
from bootstrap.store import Store
from bootstrap.substitute import Substituter


def register(commands: argparse._SubParsersAction) -> None:
    copy = commands.add_parser(
        "copy",
        help="copy paths and their closures from a binary cache, or to a machine running Nix",
        description="Copy store paths, with their closures, from a binary cache (file:// or "
        "http(s)://) into the store, checking signatures and hashes as `run --substituters` "
        "does; or, with --to ssh://..., into the store of a machine running Nix, over Nix's "
        "serve protocol (as `nix copy --to ssh://`; the remote runs `nix-store --serve "
        "--write`), sending only what it lacks. Give store paths, or a TARGET (with "
        "--until/--profile) for its stage outputs. To write a cache, use `bootstrap export "
        "--to DIR`.",
    )
    copy.add_argument(
        "paths", nargs="*", metavar="PATH|TARGET", help="store paths, or one target system"
    )
    add_target_options(copy, positional=False)
    where = copy.add_mutually_exclusive_group(required=True)
    where.add_argument("--from", dest="source", metavar="URL", help="the cache to copy from")
    where.add_argument(
        "--to",
        dest="destination",
        metavar="URI",
        help="the machine to copy to: ssh://[user@]host[:port], with the query parameters "
        "remote-program, remote-store, ssh-key and base64-ssh-public-host-key as Nix takes them",
    )
    add_substituter_options(copy)
    copy.set_defaults(func=run_copy)

    load = commands.add_parser(
        "import",
        help="load a closure archive written by `export --format tar`",
        description="Add every path of a closure archive (closure.tar, .tar.xz or .tar.zst) "
        "to the store; each path's NAR hash is checked against the archive's closure.json "
        "before anything is registered.",
    )
    load.add_argument("archive", type=Path, metavar="FILE")
    add_store_options(load)
    load.set_defaults(func=run_import)


def _wanted(args: argparse.Namespace, store: Store) -> list[str]:
    paths = store_paths_or_target(args, store, args.paths, "copy")
    if paths is not None:
        return paths
    plan = plan_from_args(args, store)
    drvs = [plan.graph.derivations[d] for paths in plan.stages.values() for d in paths]
    return sorted({out.path for drv in drvs for out in drv.outputs.values()})


def run_copy(args: argparse.Namespace) -> int:
    if args.destination:
        return _copy_to_machine(args)
    options = substitute_options(args)
    store = open_store(args)
    wanted = _wanted(args, store)
    options = replace(options, urls=(args.source,))
    substituter = Substituter(store, options, warn=lambda m: print(m, file=sys.stderr))
    missing = [p for p in wanted if not substituter.substitute([p])]
    copied = len(substituter.origins)
    print(
        f"copied {copied} paths from {args.source}; {len(wanted) - len(missing)} of "
        f"{len(wanted)} wanted paths are valid"
    )
    if missing:
        raise BootstrapError(f"{len(missing)} paths could not be copied, first {missing[0]}")
    return 0


def _copy_to_machine(args: argparse.Namespace) -> int:
    machine = parse_store_uri(args.destination, "--to")
    store = open_store(args)
    with tempfile.TemporaryDirectory(prefix="bootstrap-copy-") as scratch:
        sent = copy_to_machine(store, _wanted(args, store), machine, Path(scratch) / "ssh.log")
    print(
        f"copied {len(sent.paths)} paths ({sent.nar_bytes / 2**20:.1f} MiB of NAR) to "
        f"{machine.uri}; {sent.present} were there already"
    )
    return 0


def run_import(args: argparse.Namespace) -> int:
    result = import_closure_tar(open_store(args), args.archive)
    print(f"{args.archive}: {len(result.closure)} paths, {len(result.added)} added")
    return 0
