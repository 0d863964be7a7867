"""`bootstrap drv ...`: show derivations as JSON and import `.drv` files into the store."""

from __future__ import annotations

import argparse
import os
import sys

from bootstrap.cli.common import add_store_options, open_store
from bootstrap.derivation import (
    check_store_paths,
    drv_path,
    import_drv_files,
    read_drv_file,
    show_json,
)
from bootstrap.store import default_store_dir


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("drv", help="show and import derivations (.drv files)")
    actions = parser.add_subparsers(dest="drv_action", metavar="ACTION", required=True)

    show = actions.add_parser(
        "show", help="print derivations as JSON in the shape `nix show-derivation` prints"
    )
    show.add_argument(
        "paths", nargs="+", metavar="PATH.drv", help="a .drv file, or a store path in --store"
    )
    add_store_options(show)
    show.set_defaults(func=run_show)

    imp = actions.add_parser(
        "import",
        help="check .drv files (inputs first) and add them to the store; "
        "print one line per file: DRV_PATH OUTPUT=PATH...",
    )
    imp.add_argument("files", nargs="+", metavar="FILE.drv")
    add_store_options(imp)
    imp.set_defaults(func=run_import)


def _drv_file(path: str, args: argparse.Namespace) -> str:
    """A path as given if it is a file, else a logical store path mapped into --store."""
    store_dir = args.store_dir or default_store_dir()
    if os.path.exists(path) or not path.startswith(store_dir + "/"):
        return path
    return os.fspath(open_store(args).real_path(path))


def run_show(args: argparse.Namespace) -> int:
    store_dir = args.store_dir or default_store_dir()
    shown = {}
    for path in args.paths:
        drv = read_drv_file(_drv_file(path, args))
        check_store_paths(drv, store_dir, path)
        shown[drv_path(drv, store_dir)] = drv
    sys.stdout.buffer.write(show_json(shown))
    return 0


def run_import(args: argparse.Namespace) -> int:
    store = open_store(args)
    with store.gc_guard():  # the inputs checked valid stay so until the import has added all
        imported = import_drv_files(store, args.files)
    for path, drv in imported:
        outputs = " ".join(f"{name}={out.path}" for name, out in drv.outputs.items())
        print(f"{path} {outputs}")
    return 0
