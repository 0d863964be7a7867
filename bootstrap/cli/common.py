"""Options and helpers shared by command modules."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bootstrap.errors import BootstrapError
from bootstrap.store import Store

if TYPE_CHECKING:  # the recipes are imported by the commands that evaluate them, when they do
    from bootstrap.recipe import Recipes, TargetPlan

SUPPORTED_SYSTEMS = {"x86_64": "x86_64-linux"}


def add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="ROOT",
        type=Path,
        help="physical root of the store (default: $BOOTSTRAP_STORE or "
        "~/.local/share/bootstrap); files live in ROOT/store, state in ROOT/var",
    )
    parser.add_argument(
        "--store-dir",
        metavar="DIR",
        help="logical store directory that paths are named under "
        "(default: $BOOTSTRAP_STORE_DIR or /bootstrap/store; /nix/store works too)",
    )


def open_store(args: argparse.Namespace, create: bool = True, reclaim: bool = False) -> Store:
    """The store that `--store`/`--store-dir` name (see `Store` for `create` and `reclaim`);
    its root is made absolute there, once, whatever the working directory."""
    return Store(args.store, args.store_dir, create=create, reclaim=reclaim)


def print_json(value: object) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def add_target_options(parser: argparse.ArgumentParser, positional: bool = True) -> None:
    """TARGET (positional or --target, default x86_64-linux), --until/--stage, --profile,
    --stages."""
    if positional:
        parser.add_argument("target", nargs="?", help="target system (default: x86_64-linux)")
    parser.add_argument(
        "--target",
        dest="target_opt",
        metavar="TARGET",
        help=argparse.SUPPRESS if positional else "target system (default: x86_64-linux)",
    )
    parser.add_argument("--until", metavar="STAGE", help="stop after this stage")
    parser.add_argument("--stage", dest="until", metavar="STAGE", help="same as --until")
    parser.add_argument(
        "--profile",
        default="default",
        metavar="NAME",
        help="build profile, as the recipes define them (default: 'default', what users ship; "
        "the chain's 'fast' optimises the compilers' own code less and builds LLVM for X86 only: "
        "docs/stages.md)",
    )
    parser.add_argument(
        "--stages",
        type=Path,
        metavar="DIR",
        help="recipes directory (default: the stages/ beside the package)",
    )
    add_store_options(parser)


def plan_from_args(
    args: argparse.Namespace, store: Store, profile: str | None = None
) -> TargetPlan:
    """The plan of the target, stages and profile the arguments name (`profile` overrides
    `--profile`)."""
    target = args.target_opt or getattr(args, "target", None) or "x86_64-linux"
    host = SUPPORTED_SYSTEMS.get(platform.machine())
    if target != host:
        raise BootstrapError(
            f"target {target!r} cannot be built on this {platform.machine()} "
            f"host: expected {host or 'an x86_64 host'}"
        )
    from bootstrap.recipe import plan_target

    return plan_target(
        store.store_dir, target, recipes_from_args(args), args.until, profile or args.profile
    )


def store_paths_or_target(
    args: argparse.Namespace, store: Store, items: list[str], command: str
) -> list[str] | None:
    """The store paths among `items`, resolved; or None when `items` name a target instead
    (it becomes `args.target_opt`). Store paths and a target mixed, or two targets, are an
    error naming `command`."""
    paths = [item for item in items if "/" in item]
    targets = [item for item in items if "/" not in item]
    if len(targets) > 1 or (targets and paths):
        raise BootstrapError(f"{command}: give store paths, or one TARGET, not both")
    if paths:
        return [store.to_store_path(path) for path in paths]
    args.target_opt = args.target_opt or (targets[0] if targets else None)
    return None


def recipes_from_args(args: argparse.Namespace) -> Recipes:
    from bootstrap.recipe import Recipes

    return Recipes(stages_dir=args.stages) if args.stages else Recipes()
