"""`bootstrap hash path|file`: print NAR or flat hashes as Nix does."""

from __future__ import annotations

import argparse
from pathlib import Path

from bootstrap.errors import BootstrapError
from bootstrap.hashing import DIGEST_SIZES, Hash, hash_file
from bootstrap.nar import nar_hash


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("hash", help="hash a path (NAR) or a file (flat)")
    kinds = parser.add_subparsers(dest="hash_kind", metavar="KIND", required=True)
    for kind, text in (
        ("path", "hash the NAR serialisation of a file or tree (as nix-hash)"),
        ("file", "hash a regular file's contents (as nix-hash --flat)"),
    ):
        sub = kinds.add_parser(kind, help=text, description=text)
        sub.add_argument("paths", nargs="+", metavar="PATH", type=Path)
        sub.add_argument("--type", default="sha256", choices=sorted(DIGEST_SIZES))
        form = sub.add_mutually_exclusive_group()
        form.add_argument("--base16", action="store_true", help="print hex")
        form.add_argument("--sri", action="store_true", help="print SRI (algo-base64)")
        sub.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for path in args.paths:
        print(_format(_hash(args.hash_kind, path, args.type), args))
    return 0


def _hash(kind: str, path: Path, algo: str) -> Hash:
    if kind == "path":
        return nar_hash(path, algo)[0]
    if not path.is_file():
        raise BootstrapError(f"{path}: not a regular file (use `bootstrap hash path` for trees)")
    return hash_file(algo, path)


def _format(value: Hash, args: argparse.Namespace) -> str:
    if args.base16:
        return value.hex
    if args.sri:
        return value.sri
    return value.nix32
