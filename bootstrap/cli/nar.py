"""`bootstrap nar dump|restore`: write a path as a NAR, or recreate a tree from one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bootstrap import nar
from bootstrap.errors import BootstrapError
from bootstrap.fstree import remove_tree


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("nar", help="serialise or restore NAR archives")
    actions = parser.add_subparsers(dest="nar_action", metavar="ACTION", required=True)
    dump = actions.add_parser("dump", help="write the NAR of PATH to standard output")
    dump.add_argument("path", metavar="PATH", type=Path)
    dump.set_defaults(func=run_dump)
    restore = actions.add_parser("restore", help="recreate the tree read from standard input")
    restore.add_argument("dest", metavar="DIR", type=Path, help="must not exist yet")
    restore.set_defaults(func=run_restore)


def run_dump(args: argparse.Namespace) -> int:
    if sys.stdout.isatty():
        raise BootstrapError("refusing to write a binary NAR to a terminal: redirect stdout")
    nar.dump(args.path, sys.stdout.buffer)
    sys.stdout.buffer.flush()
    return 0


def run_restore(args: argparse.Namespace) -> int:
    tmp = args.dest.with_name(f".{args.dest.name}.restoring")
    if args.dest.exists() or args.dest.is_symlink():
        raise BootstrapError(f"{args.dest}: already exists; restore needs a new path")
    if not args.dest.parent.is_dir():
        raise BootstrapError(f"{args.dest.parent}: no such directory to restore into")
    try:
        nar.restore(sys.stdin.buffer, tmp)
        tmp.rename(args.dest)
    finally:
        remove_tree(tmp)
    return 0
