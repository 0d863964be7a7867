"""`bootstrap store ...`: add paths, query them, verify the store and collect garbage."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bootstrap.cli.cache_options import add_substituter_options, substitute_options
from bootstrap.cli.common import add_store_options, open_store, print_json, store_dir_from_args
from bootstrap.nar import nar_hash
from bootstrap.signing import fingerprint, read_secret_key
from bootstrap.store import PathInfo
from bootstrap.store.gc import add_root, collect_garbage
from bootstrap.store.query import closure_sizes, topo_sort, tree_lines
from bootstrap.store.verify import VerifyResult, verify_store
from bootstrap.storepath import source_path

if TYPE_CHECKING:
    from bootstrap.repair import RepairResult
from bootstrap.substitute import Substituter


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("store", help="manage the content-addressed store")
    actions = parser.add_subparsers(dest="store_action", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="copy a file or tree into the store; print its path")
    add.add_argument("path", metavar="PATH", type=Path)
    add.add_argument("--name", help="store path name (default: the file's name)")
    add.add_argument("--dry-run", action="store_true", help="print the path, add nothing")
    add_store_options(add)
    add.set_defaults(func=run_add)

    info = actions.add_parser("path-info", help="show NAR hash, size and references of paths")
    info.add_argument("paths", nargs="+", metavar="PATH")
    info.add_argument("-r", "--recursive", action="store_true", help="include the closure")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.add_argument(
        "-S", "--closure-size", action="store_true", help="show each path's closure size too"
    )
    add_store_options(info)
    info.set_defaults(func=run_path_info)

    query = actions.add_parser(
        "query", help="references, referrers, requisites or tree of paths, as nix-store --query"
    )
    what = query.add_mutually_exclusive_group(required=True)
    for flag, helptext in QUERIES.items():
        what.add_argument(
            f"--{flag}", dest="query", action="store_const", const=flag, help=helptext
        )
    query.add_argument("paths", nargs="+", metavar="PATH")
    add_store_options(query)
    query.set_defaults(func=run_query)

    verify = actions.add_parser(
        "verify", help="recompute every path's NAR hash and check content addresses"
    )
    verify.add_argument(
        "--repair",
        action="store_true",
        help="rebuild (or substitute) broken paths and keep what refers to them; delete only "
        "what cannot be restored",
    )
    add_substituter_options(verify)
    add_store_options(verify)
    verify.set_defaults(func=run_verify)

    gc = actions.add_parser("gc", help="delete paths not reachable from a GC root")
    gc.add_argument(
        "--dry-run", action="store_true", help="only list what would be deleted; change nothing"
    )
    gc.add_argument(
        "--delete-partial",
        action="store_true",
        help="delete the kept work of interrupted builds even if their derivation is live",
    )
    gc.add_argument(
        "--json",
        action="store_true",
        help="print the roots, live and deleted paths, leftovers and bytes freed as JSON",
    )
    add_store_options(gc)
    gc.set_defaults(func=run_gc)

    sign = actions.add_parser(
        "sign",
        help="sign paths with a secret key (Nix's format); export then publishes the signatures",
    )
    sign.add_argument("paths", nargs="+", metavar="PATH")
    sign.add_argument("--key", required=True, type=Path, metavar="FILE", help="secret key file")
    sign.add_argument("-r", "--recursive", action="store_true", help="sign the closure")
    add_store_options(sign)
    sign.set_defaults(func=run_sign)

    root = actions.add_parser("add-root", help="protect a store path from gc")
    root.add_argument("path", metavar="PATH")
    root.add_argument("--link", type=Path, help="make LINK point to PATH, an indirect root")
    add_store_options(root)
    root.set_defaults(func=run_add_root)


def run_add(args: argparse.Namespace) -> int:
    name = args.name or args.path.name
    if args.dry_run:
        digest, _ = nar_hash(args.path)
        print(source_path(digest, name, store_dir_from_args(args)))
    else:
        print(open_store(args).add_path(args.path, name))
    return 0


QUERIES = {
    "references": "the paths each PATH references",
    "referrers": "the valid paths that reference each PATH",
    "requisites": "the closure of the PATHs, dependencies first",
    "tree": "the closure of each PATH as a tree",
}


def run_path_info(args: argparse.Namespace) -> int:
    store = open_store(args, create=False)
    paths = [store.to_store_path(p) for p in args.paths]
    infos = [store.query_info(p) for p in (store.closure(paths) if args.recursive else paths)]
    sizes = closure_sizes(store, paths) if args.closure_size else {}
    if args.json:
        print_json([_info_json(i, sizes.get(i.path)) for i in infos])
    else:
        for i in infos:
            extra = f"\t{sizes[i.path]}" if args.closure_size else ""
            print(f"{i.path}\t{i.nar_hash}\t{i.nar_size}{extra}")
    return 0


def run_query(args: argparse.Namespace) -> int:
    store = open_store(args, create=False)
    paths = [store.to_store_path(p) for p in args.paths]
    for path in paths:
        store.query_info(path)  # one line naming a path that is not valid
    if args.query == "tree":
        for path in paths:
            print("\n".join(tree_lines(store, path)))
        return 0
    if args.query == "requisites":
        found = store.closure(paths)
    else:
        step = store.references if args.query == "references" else store.referrers
        found = {linked for path in paths for linked in step(path)}
    for path in reversed(topo_sort(store, found)):
        print(path)
    return 0


def _info_json(info: PathInfo, closure: int | None = None) -> dict:
    sized = {} if closure is None else {"closureSize": closure}
    return {
        **sized,
        "path": info.path,
        "narHash": info.nar_hash.sri,
        "narSize": info.nar_size,
        "references": list(info.references),
        "deriver": info.deriver,
        "ca": info.ca,
        "registrationTime": info.registration_time,
        "signatures": list(info.signatures),
    }


def run_sign(args: argparse.Namespace) -> int:
    key = read_secret_key(args.key)
    store = open_store(args, create=False)
    paths = [store.to_store_path(p) for p in args.paths]
    for path in store.closure(paths) if args.recursive else paths:
        info = store.query_info(path)
        message = fingerprint(info.path, info.nar_hash, info.nar_size, info.references)
        store.db.add_signatures(path, [key.sign(message)])
        print(f"signed {path}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    store = open_store(args, create=args.repair)
    result = verify_store(store)
    _print_verify(result)
    if not args.repair or result.ok:
        return 0 if result.ok else 1
    # the builder is imported only here, so the other store commands start fast
    from bootstrap.build import BuildOptions
    from bootstrap.repair import repair_paths

    substituter = Substituter(store, substitute_options(args), warn=_warn)
    options = BuildOptions(cores=os.cpu_count() or 1)
    repaired = repair_paths(store, result.bad, options, substituter)
    _print_repair(repaired)
    return 1 if repaired.failed else 0


def _print_verify(result: VerifyResult) -> None:
    for path in result.missing:
        print(f"missing: {path}")
    for path, expected, actual in result.corrupt:
        print(f"corrupt: {path}: registered {expected}, found {actual}")
    for path, problem in result.misnamed:
        print(f"misnamed: {path}: {problem}")
    print(
        f"checked {result.checked} paths: {len(result.missing)} missing, "
        f"{len(result.corrupt)} corrupt, {len(result.misnamed)} misnamed"
    )


def _print_repair(repaired: RepairResult) -> None:
    for verb, paths in (
        ("rebuilt", repaired.rebuilt),
        ("substituted", repaired.substituted),
        ("restored", repaired.restored),
        ("removed", repaired.removed),
    ):
        for path in paths:
            print(f"{verb}: {path}")
    for drv, reason in repaired.failed.items():
        print(f"could not rebuild {drv}: {reason.splitlines()[0]}")


def _warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_gc(args: argparse.Namespace) -> int:
    store = open_store(args, create=False, reclaim=not args.dry_run)
    result = collect_garbage(store, dry_run=args.dry_run, delete_partial=args.delete_partial)
    if args.json:
        print_json(
            {
                "dryRun": args.dry_run,
                "roots": result.roots,
                "live": result.live,
                "deleted": result.dead,
                "leftovers": result.garbage_files,
                "keptPartial": result.kept_partial,
                "freedBytes": result.freed_bytes,
            }
        )
        return 0
    verb = "would delete" if args.dry_run else "deleted"
    for path in result.dead:
        print(f"{verb} {path}")
    for entry in result.garbage_files:
        print(f"{verb} leftover {entry}")
    for entry in result.kept_partial:
        print(f"kept {entry}: the interrupted build of a live derivation (--delete-partial)")
    print(
        f"{len(result.roots)} roots, {len(result.live)} live paths; {verb} "
        f"{len(result.dead)} paths ({result.freed_bytes / 1e6:.1f} MB)"
    )
    return 0


def run_add_root(args: argparse.Namespace) -> int:
    store = open_store(args, create=False)
    print(add_root(store, store.to_store_path(args.path), args.link))
    return 0
