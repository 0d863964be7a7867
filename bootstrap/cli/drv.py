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
from bootstrap.errors import BootstrapError
from bootstrap.store import Store, default_store_dir


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("drv", help="show and import derivations (.drv files)")
    actions = parser.add_subparsers(dest="drv_action", metavar="ACTION", required=True)

    show = actions.add_parser(
        "show", help="print derivations as JSON in the shape `nix show-derivation` prints"
    )
    show.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a .drv file, or a store path in --store: a .drv, or an output (shows its deriver)",
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
    """The .drv file to read for `path`: a file outside the store as given; else the store
    path it names (a logical or physical path, a `result` link), and for an output path the
    derivation that built it (its deriver), as `nix show-derivation OUTPUT` shows."""
    if os.path.isfile(path) and os.path.realpath(path).endswith(".drv"):
        return path  # a derivation file, in a store or not: no store to open
    try:
        store = open_store(args, create=False)
        store_path = store.to_store_path(path)
    except BootstrapError:
        if os.path.exists(path):
            return path
        raise
    if not store_path.endswith(".drv"):
        store_path = _deriver(store, store_path)
    return os.fspath(store.real_path(store_path))


def _deriver(store: Store, output: str) -> str:
    deriver = store.query_info(output).deriver
    if deriver is None:
        raise BootstrapError(f"{output}: expected a .drv or an output with a deriver; it has none")
    if not store.is_valid(deriver):
        raise BootstrapError(f"{output}: its deriver {deriver} is not in the store")
    return deriver


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
