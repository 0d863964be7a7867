"""`bootstrap seed build|verify|import`: the stage-0 seed, rebuilt from source and pinned."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bootstrap.seed.ddc import DdcReport
from bootstrap.seed.host_build import DEFAULT_JOBS, SeedBuild, build_seed
from bootstrap.seed.manifest import DEFAULT_SYSTEM, load_manifest, pinned_hash
from bootstrap.seed.verify import import_seed, pinned_archive_files, verify_seed


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
        help=f"seed manifest (default: seeds/{DEFAULT_SYSTEM}.json in the project)",
    )


def _add_build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cc", default="cc", help="host C compiler that roots the chain")
    parser.add_argument(
        "--jobs", type=int, default=DEFAULT_JOBS, help="parallel make jobs (default 2)"
    )
    _add_manifest_option(parser)


def _progress(line: str) -> None:
    if line.startswith(("STEP", "FIXPOINT", "NO FIXPOINT", "FAILED")):
        print(f"  {line.rstrip()}", file=sys.stderr)


def run_build(args: argparse.Namespace) -> int:
    manifest = load_manifest(args.manifest)
    out = args.out or Path(manifest.archive_name)
    result = build_seed(
        manifest,
        out,
        cc=args.cc,
        jobs=args.jobs,
        keep_build_dir=args.keep_build_dir,
        on_line=_progress,
    )
    print(render_steps(result))
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
    manifest = load_manifest(args.manifest)
    expected = pinned_hash(manifest)
    with tempfile.TemporaryDirectory(prefix="bootstrap-seed-verify-") as scratch:
        out = Path(scratch) / manifest.archive_name
        check = verify_seed(manifest, out, cc=args.cc, jobs=args.jobs)
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
        if (pinned := pinned_archive_files(manifest)) is not None:
            columns["pinned"] = pinned
        print(render_file_table(columns))
    return 1


def run_import(args: argparse.Namespace) -> int:
    manifest = load_manifest(args.manifest)
    cached = import_seed(manifest, args.location)
    print(cached)
    return 0


# --- rendering ----------------------------------------------------------------------------


def render_file_table(columns: dict[str, dict[str, str]]) -> str:
    """A table of every file's sha256 under each named column; differing rows are marked."""
    names = sorted(set().union(*(files.keys() for files in columns.values())))
    labels = list(columns)
    widths = [max(16, len(label)) for label in labels]
    lines = [_table_row("  ", labels, widths, "file")]
    for name in names:
        digests = [columns[label].get(name, "-") for label in labels]
        mark = "  " if len(set(digests)) == 1 else "!="
        lines.append(_table_row(mark, [digest[:16] for digest in digests], widths, name))
    return "\n".join(lines)


def _table_row(mark: str, cells: list[str], widths: list[int], name: str) -> str:
    padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
    return "  ".join([mark, *padded, name])


def render_ddc(report: DdcReport) -> str:
    """A reviewer's summary: each compiler's archive hash, the verdict, and the file table."""
    lines = ["Diverse double-compiling of the stage-0 seed", ""]
    for name, build in zip(report.compilers, report.builds, strict=True):
        lines.append(
            f"  rooted in {name} ({build.compiler}): sha256 {build.sha256.hex}, {build.size} "
            f"bytes, tcc fixpoint at round {build.fixpoint_round}, {build.seconds:.0f} s"
        )
    verdict = "IDENTICAL" if report.identical else "DIFFERENT"
    lines += ["", f"  archives: {verdict}"]
    if report.pin is not None:
        lines.append(f"  pin {report.pin.hex}: {'matches' if report.matches_pin else 'DIFFERS'}")
    columns = {
        f"{name} sha256": build.files
        for name, build in zip(report.compilers, report.builds, strict=True)
    }
    header = "  file sha256 (first 16 hex digits); rows marked != differ"
    return "\n".join([*lines, "", header, render_file_table(columns)])


def render_steps(build: SeedBuild) -> str:
    rows = [f"  {step.seconds:7.2f} s  {step.name}" for step in build.steps]
    return "\n".join([*rows, f"  {build.seconds:7.2f} s  total"])
