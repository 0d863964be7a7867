"""Options and helpers shared by command modules."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bootstrap.config import STORE, STORE_DIR, path_setting
from bootstrap.errors import BootstrapError
from bootstrap.store import Store, default_root
from bootstrap.storepath import DEFAULT_STORE_DIR

if TYPE_CHECKING:  # the recipes are imported by the commands that evaluate them, when they do
    from bootstrap.recipe import Recipes, TargetPlan

SUPPORTED_SYSTEMS = {"x86_64": "x86_64-linux"}


def add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="ROOT",
        type=Path,
        help="physical root of the store (default: $BOOTSTRAP_STORE, the config file's store, "
        "else ~/.local/share/bootstrap); files live in ROOT/store, state in ROOT/var",
    )
    parser.add_argument(
        "--store-dir",
        metavar="DIR",
        help="logical store directory that paths are named under "
        "(default: $BOOTSTRAP_STORE_DIR, the config file's store-dir, else /bootstrap/store; "
        "/nix/store works too)",
    )


# the commands that make a store where there is none: those that build or add paths
CREATING_COMMANDS = "run, build, fetch, shell, store add, copy, import, drv import"


def open_store(args: argparse.Namespace, create: bool = True, reclaim: bool = False) -> Store:
    """The store that `--store`/`--store-dir` name, else the environment or the config file
    (see `Store` for `create` and `reclaim`); its root is made absolute there, once, whatever
    the working directory. Without `create`, a root that does not exist is one error line
    saying where its name came from."""
    root, origin = path_setting(STORE, args.store)
    root = Path(root) if root is not None else default_root()
    if not create and not os.path.lexists(root):
        said = {"default": "the default", STORE.flag: "given by --store"}.get(origin)
        raise BootstrapError(
            f"no store at {os.path.abspath(root)} ({said or f'from {origin}'}); only the "
            f"commands that build or add paths make one ({CREATING_COMMANDS})"
        )
    return Store(root, store_dir_from_args(args), create=create, reclaim=reclaim)


def store_dir_from_args(args: argparse.Namespace) -> str:
    """The logical store directory: --store-dir, $BOOTSTRAP_STORE_DIR, the config file."""
    return path_setting(STORE_DIR, args.store_dir)[0] or DEFAULT_STORE_DIR


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
    args: argparse.Namespace, store: Store | str, profile: str | None = None
) -> TargetPlan:
    """The plan of the target, stages and profile the arguments name (`profile` overrides
    `--profile`), for `store` or a logical store directory."""
    target = target_from_args(args)
    recipes = recipes_from_args(args)
    known = recipes.targets()
    if target not in known:
        raise BootstrapError(f"unknown target {target!r}; known: {', '.join(sorted(known))}")
    host = SUPPORTED_SYSTEMS.get(platform.machine())
    if target != host:
        raise BootstrapError(
            f"target {target!r} cannot be built on this {platform.machine()} "
            f"host: expected {host or 'an x86_64 host'}"
        )
    from bootstrap.recipe import plan_target

    store_dir = store if isinstance(store, str) else store.store_dir
    return plan_target(store_dir, target, recipes, args.until, profile or args.profile)


def target_from_args(args: argparse.Namespace) -> str:
    return args.target_opt or getattr(args, "target", None) or "x86_64-linux"


def is_path_argument(word: str) -> bool:
    """Whether a TARGET|PATH argument names a path: it has a '/', or names something here
    (a `result` link in the working directory)."""
    return "/" in word or os.path.lexists(word)


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
