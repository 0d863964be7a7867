"""`bootstrap seed build|verify|import`: the stage-0 seed, rebuilt from source and pinned."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bootstrap import seed


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("seed", help="build, verify or import the stage-0 seed")
    actions = parser.add_subparsers(dest="seed_action", metavar="ACTION", required=True)

    build = actions.add_parser(
        "build", help="rebuild the seed archive from source with the host C compiler"
    )
    _add_build_options(build)
    build.add_argument(
        "--out", type=Path, metavar="FILE", help="archive to write (default: the manifest's name)"
    )
    build.add_argument(
        "--keep-build-dir", action="store_true", help="keep the build tree (for debugging)"
    )
    build.set_defaults(func=run_build)

    verify = actions.add_parser("verify", help="rebuild the seed and compare it with the pin")
    _add_build_options(verify)
    verify.set_defaults(func=run_verify)

    importer = actions.add_parser(
        "import", help="add a seed archive (FILE or URL) to the download cache after checking it"
    )
    importer.add_argument("location", metavar="FILE|URL")
    _add_manifest_option(importer)
    importer.set_defaults(func=run_import)


def _add_manifest_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--manifest",
        type=Path,
        metavar="FILE",
        help=f"seed manifest (default: seeds/{seed.DEFAULT_SYSTEM}.json in the project)",
    )


def _add_build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cc", default="cc", help="host C compiler that roots the chain")
    parser.add_argument(
        "--jobs", type=int, default=seed.DEFAULT_JOBS, help="parallel make jobs (default 2)"
    )
    _add_manifest_option(parser)


def _progress(line: str) -> None:
    if line.startswith(("STEP", "FIXPOINT", "NO FIXPOINT", "FAILED")):
        print(f"  {line.rstrip()}", file=sys.stderr)


def run_build(args: argparse.Namespace) -> int:
    manifest = seed.load_manifest(args.manifest)
    out = args.out or Path(manifest.archive_name)
    result = seed.build_seed(
        manifest,
        out,
        cc=args.cc,
        jobs=args.jobs,
        keep_build_dir=args.keep_build_dir,
        on_line=_progress,
    )
    print(seed.render_steps(result))
    if result.build_dir:
        print(f"build tree kept at {result.build_dir}", file=sys.stderr)
    print(f"{result.archive}: sha256 {result.sha256.hex}, {result.size} bytes")
    print(f"uncompressed tar: sha256 {result.tar_sha256.hex}")
    print(f"unpacked tree: NAR sha256 {result.tree_sha256.hex}")
    pin = manifest.archive_sha256
    if pin is not None and pin != result.sha256:
        print(f"note: differs from the pin {pin.hex} in {manifest.path}", file=sys.stderr)
    return 0


def run_verify(args: argparse.Namespace) -> int:
    manifest = seed.load_manifest(args.manifest)
    expected = seed.pinned_hash(manifest)
    with tempfile.TemporaryDirectory(prefix="bootstrap-seed-verify-") as scratch:
        out = Path(scratch) / manifest.archive_name
        check = seed.verify_seed(manifest, out, cc=args.cc, jobs=args.jobs)
        if check.matches:
            print(f"seed OK: rebuilt with {check.build.compiler}, sha256 {expected.hex}")
            return 0
        if check.content_matches:
            print(
                f"seed content OK: the uncompressed tar matches the pin; only the gzip stream "
                f"differs ({check.build.sha256.hex}), so this host's zlib deflates differently"
            )
            return 0
        print(
            f"seed MISMATCH: rebuilt sha256 {check.build.sha256.hex}, pinned {expected.hex}",
            file=sys.stderr,
        )
        columns = {"rebuilt": check.build.files}
        if (pinned := seed.pinned_archive_files(manifest)) is not None:
            columns["pinned"] = pinned
        print(seed.render_file_table(columns))
    return 1


def run_import(args: argparse.Namespace) -> int:
    manifest = seed.load_manifest(args.manifest)
    cached = seed.import_seed(manifest, args.location)
    print(cached)
    return 0
