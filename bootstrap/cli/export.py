"""`bootstrap export`: write a closure as a Nix binary cache or a plain tar archive."""

from __future__ import annotations

import argparse
from pathlib import Path

from bootstrap.cli.common import (
    add_target_options,
    is_path_argument,
    open_store,
    plan_from_args,
    print_json,
    store_dir_from_args,
)
from bootstrap.cli.progress import add_progress_options, reporter
from bootstrap.export import (
    COMPRESSIONS,
    export_binary_cache,
    export_closure_tar,
    stage_outputs,
    store_path_root,
)
from bootstrap.signing import read_secret_key


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export",
        help="export a closure as a Nix binary cache or a tar archive",
        description="Export the closure of a target's stage outputs (every package of the "
        "selected stages), or of one store path given as TARGET, so that another builder "
        "can use it.",
    )
    add_target_options(parser)
    parser.add_argument("--to", required=True, type=Path, metavar="DIR", help="output directory")
    parser.add_argument(
        "--format",
        choices=["binary-cache", "tar"],
        default="binary-cache",
        help="a Nix binary cache (default), or DIR/closure.tar[.xz|.zst] with closure.json",
    )
    parser.add_argument(
        "--compression", choices=COMPRESSIONS, default="xz", help="of NARs or the tar (default xz)"
    )
    parser.add_argument(
        "--sign-key",
        type=Path,
        metavar="FILE",
        help="sign each narinfo with this secret key (from `bootstrap key generate` or "
        "`nix key generate-secret`); Nix then accepts the cache with the public key trusted",
    )
    parser.add_argument(
        "--no-drvs",
        action="store_true",
        help="leave out the derivations (.drv closures) that built the exported paths",
    )
    parser.add_argument(
        "--no-logs", action="store_true", help="leave out their build logs (log/<drv name>)"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print what was exported as JSON: the closure, and which paths were written, "
        "already present, and whose logs went with them (a tar: the archive and its size)",
    )
    add_progress_options(parser)
    parser.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    sign_key = read_secret_key(args.sign_key) if args.sign_key else None
    target = args.target_opt or args.target or ""
    # a target is checked first: a mistyped one is named as such, whatever the store
    plan = None if is_path_argument(target) else plan_from_args(args, store_dir_from_args(args))
    store = open_store(args, create=False)
    roots = [store_path_root(store, target)] if plan is None else stage_outputs(store, plan)
    if args.format == "tar":
        result = export_closure_tar(store, roots, args.to, args.compression, reporter(args))
        if args.json:
            print_json(
                {"archive": str(result.archive), "paths": list(result.closure), "size": result.size}
            )
        else:
            print(f"{result.archive}: {len(result.closure)} paths, {result.size} bytes")
        return 0
    cache = export_binary_cache(
        store,
        roots,
        args.to,
        args.compression,
        sign_key,
        drvs=not args.no_drvs,
        logs=not args.no_logs,
        on_event=reporter(args),
    )
    if args.json:
        print_json(
            {
                "directory": str(cache.directory),
                "paths": list(cache.closure),
                "written": list(cache.written),
                "present": list(cache.present),
                "logs": list(cache.logs),
            }
        )
        return 0
    print(
        f"{cache.directory}: {len(cache.closure)} paths "
        f"({len(cache.written)} written, {len(cache.present)} already present), "
        f"{len(cache.logs)} build logs"
    )
    return 0
