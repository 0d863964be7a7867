"""`bootstrap audit ...`: hermeticity, reproducibility (rebuild, manifests, diffs)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

from bootstrap.audit.challenge import challenge
from bootstrap.audit.challenge import render as render_challenge
from bootstrap.audit.hermetic import AuditedPath, audit_hermetic, render_json, render_table
from bootstrap.audit.manifest import (
    build_manifest,
    diff_manifests,
    load_manifest,
    manifest_differences,
)
from bootstrap.audit.policy import AuditItems, classify
from bootstrap.audit.reproduce import DIFFERS, FAILED, render, reproduce
from bootstrap.build import BuildOptions
from bootstrap.cli.common import (
    add_target_options,
    open_store,
    plan_from_args,
    print_json,
    recipes_from_args,
    store_dir_from_args,
    store_paths_or_target,
)
from bootstrap.cli.progress import add_progress_options, reporter, stage_names
from bootstrap.cli.seed import render_ddc
from bootstrap.config import CORES, SUBSTITUTERS, count_setting, list_setting
from bootstrap.elf.paths import PathMap, store_path_of
from bootstrap.errors import BootstrapError
from bootstrap.export import stage_outputs
from bootstrap.fetch import Fetcher
from bootstrap.fstree import remove_tree
from bootstrap.remote.machines import Machine, parse_machines
from bootstrap.seed import ddc
from bootstrap.seed import manifest as seed_manifest
from bootstrap.seed.host_build import DEFAULT_JOBS
from bootstrap.store import Store


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("audit", help="audit hermeticity and reproducibility")
    checks = parser.add_subparsers(dest="audit_check", metavar="CHECK", required=True)
    _register_hermetic(checks)
    _register_reproduce(checks)
    _register_ddc(checks)
    _register_challenge(checks)

    text = "compare two manifests: stage hashes first, then each differing derivation"
    diff = checks.add_parser("diff", help=text, description=text)
    diff.add_argument("manifests", nargs=2, metavar="MANIFEST.json", type=Path)
    diff.add_argument(
        "--json",
        action="store_true",
        help="print the differing stages (both hashes) and derivations as JSON",
    )
    diff.set_defaults(func=run_diff)

    text = "print the stage manifest of a target as the store holds it now (JSON)"
    manifest = checks.add_parser("manifest", help=text, description=text)
    add_target_options(manifest)
    manifest.set_defaults(func=run_manifest)


def _register_hermetic(checks: argparse._SubParsersAction) -> None:
    text = (
        "check every ELF file and script: interpreters, RUNPATH and DT_NEEDED inside the store "
        "and the closure, no host paths (/usr, /bin, /lib...); exit 1 on any violation. "
        "Arguments are store paths (their whole closure is audited), stage names of the "
        "target, or plain files and directories. A store path may name the host path strings "
        "its recipe declares (allowed_host_paths in the target's stages/)"
    )
    sub = checks.add_parser("hermetic", help=text, description=text)
    sub.add_argument("items", nargs="+", metavar="PATH|STAGE")
    add_target_options(sub, positional=False)
    sub.add_argument(
        "--map",
        metavar="LOGICAL=PHYSICAL",
        action="append",
        default=[],
        help="for plain files: read logical paths under LOGICAL from PHYSICAL (repeatable)",
    )
    sub.add_argument(
        "--allow",
        metavar="STRING",
        action="append",
        default=[],
        help="a host path string that may appear (exact match; repeatable)",
    )
    sub.add_argument("--json", action="store_true", help="print violations as JSON")
    sub.set_defaults(func=run_hermetic)


def _register_challenge(checks: argparse._SubParsersAction) -> None:
    text = (
        "compare the NAR hash of every local path with what binary caches serve for it, as "
        "`guix challenge` does; exit 1 if any differs. Arguments are store paths (with their "
        "closures) or a target (its stage outputs' closure)"
    )
    sub = checks.add_parser("challenge", help=text, description=text)
    sub.add_argument("items", nargs="*", metavar="TARGET|PATH")
    add_target_options(sub, positional=False)
    sub.add_argument(
        "--substituters",
        action="append",
        metavar="URLS",
        help="caches to compare with (default: $BOOTSTRAP_SUBSTITUTERS, then the config file)",
    )
    sub.add_argument("--json", action="store_true", help="print every comparison as JSON")
    sub.add_argument(
        "--diffoscope",
        type=Path,
        metavar="DIR",
        help="fetch each differing NAR and write diffoscope reports into DIR",
    )
    sub.set_defaults(func=run_challenge)


def run_challenge(args: argparse.Namespace) -> int:
    urls = list_setting(SUBSTITUTERS, args.substituters).values
    store = open_store(args, create=False)
    roots = store_paths_or_target(args, store, args.items, "audit challenge")
    if roots is None:
        roots = stage_outputs(store, plan_from_args(args, store))
    progress = (lambda line: print(line, file=sys.stderr)) if not args.json else (lambda _: None)
    result = challenge(store, store.closure(roots), urls, args.diffoscope, progress)
    if args.json:
        print_json([v.to_json() for v in result.verdicts])
    else:
        print(render_challenge(result))
    return 0 if result.ok else 1


def _register_reproduce(checks: argparse._SubParsersAction) -> None:
    text = (
        "rebuild already-built derivations of the target's stages in a second physical store "
        "with the same store dir, and compare NAR hashes; exit 1 if any differs"
    )
    sub = checks.add_parser("reproduce", help=text, description=text)
    add_target_options(sub)
    sub.add_argument(
        "--only", action="append", metavar="STAGE", help="check only this stage (repeatable)"
    )
    sub.add_argument("--check-store", type=Path, metavar="ROOT", help="keep the rebuilt paths here")
    sub.add_argument("--diffoscope", type=Path, metavar="DIR", help="write diffoscope reports here")
    sub.add_argument(
        "--cores",
        type=int,
        help="cores each build may use (default: $BOOTSTRAP_CORES, the config file's cores, "
        "else all)",
    )
    sub.add_argument(
        "--json",
        action="store_true",
        help="print each derivation's result as JSON: name, drv, status, differing files, "
        "reason, diffoscope reports",
    )
    sub.add_argument(
        "--builders",
        metavar="SPEC",
        help="build again on this Nix machine (Nix's machine syntax, as `run --builders`; the "
        "first that fits), by real Nix in its sandbox, instead of here: a cross-engine check",
    )
    add_progress_options(sub)
    sub.set_defaults(func=run_reproduce)


def _register_ddc(checks: argparse._SubParsersAction) -> None:
    text = (
        "diverse double-compiling: rebuild the stage-0 seed once per host compiler (default gcc "
        "and clang) and show that every file is byte-identical; exit 1 if any differs"
    )
    sub = checks.add_parser("ddc", help=text, description=text)
    sub.add_argument(
        "--cc",
        action="append",
        metavar="COMPILER",
        help="a host C compiler to root the chain in (repeatable; default: gcc and clang)",
    )
    sub.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="parallel make jobs")
    sub.add_argument("--manifest", type=Path, metavar="FILE", help="seed manifest to build")
    sub.add_argument("--work-dir", type=Path, metavar="DIR", help="keep the archives here")
    sub.set_defaults(func=run_ddc)


def run_ddc(args: argparse.Namespace) -> int:
    manifest = seed_manifest.load_manifest(args.manifest)
    compilers = tuple(args.cc or ("gcc", "clang"))
    report = ddc.run_ddc(manifest, compilers, work_dir=args.work_dir, jobs=args.jobs)
    print(render_ddc(report))
    return 0 if report.identical else 1


def run_hermetic(args: argparse.Namespace) -> int:
    store_dir = store_dir_from_args(args)
    store = _store_for(args, store_dir)
    items = _classify(args, store) if store else AuditItems(plain=list(map(Path, args.items)))
    closure_paths = store.closure(items.store_paths) if store else []
    audited = [
        AuditedPath(p, store.real_path(p), items.allowed.get(p, frozenset())) for p in closure_paths
    ]
    closure = set(closure_paths)
    path_map = _path_map(args.map, store)
    for path in items.plain:
        physical = path.resolve()
        audited.append(AuditedPath(path_map.logical(physical), physical))
        if owner := store_path_of(path_map.logical(physical), store_dir):
            closure.add(owner)
    violations = audit_hermetic(audited, closure, store_dir, path_map, args.allow)
    sys.stdout.write(render_json(violations) if args.json else render_table(violations))
    return 1 if violations else 0


def _store_for(args: argparse.Namespace, store_dir: str) -> Store | None:
    """The store the items are audited against; None when it does not exist and every item
    is a plain file or directory outside it (those need no store, and none is made)."""
    in_store = [i for i in args.items if i.startswith(f"{store_dir}/")]
    for item in args.items:
        if "/" in item and item not in in_store and not os.path.lexists(item):
            raise BootstrapError(f"{item}: no such file or directory")
    plain = not in_store and all(os.path.exists(i) for i in args.items)
    try:
        return open_store(args, create=False)
    except BootstrapError:
        if plain:
            return None
        raise


def _classify(args: argparse.Namespace, store: Store) -> AuditItems:
    """The audit's items: stages from the target's plan, allowances from every profile's."""

    def every_profile():
        return (plan_from_args(args, store, p) for p in recipes_from_args(args).profiles())

    return classify(store, args.items, lambda: plan_from_args(args, store), every_profile)


def _path_map(specs: list[str], store: Store | None) -> PathMap:
    mounts: list[tuple[str, Path]] = [("/", Path("/"))]
    if store is not None:
        mounts.append((store.store_dir, store.physical_dir))
    for spec in specs:
        logical, sep, physical = spec.partition("=")
        if not sep or not logical.startswith("/") or not physical:
            raise BootstrapError(f"--map {spec!r}: expected LOGICAL=PHYSICAL, LOGICAL absolute")
        mounts.append((logical, Path(physical).resolve()))
    return PathMap.of(mounts)


def run_reproduce(args: argparse.Namespace) -> int:
    store = open_store(args, create=False)
    plan = plan_from_args(args, store)
    stages = args.only or list(plan.stages)
    unknown = [s for s in stages if s not in plan.stages]
    if unknown:
        raise BootstrapError(
            f"unknown stage {unknown[0]!r}: expected one of {', '.join(plan.stages)}"
        )
    root = args.check_store or Path(tempfile.mkdtemp(prefix="bootstrap-check-"))
    try:
        check = Store(root, store.store_dir)
        cores = count_setting(CORES, args.cores, os.cpu_count() or 1, least=1)
        options = BuildOptions(cores=cores, fetcher=Fetcher())
        machine = _reproduce_machine(args.builders, plan.target) if args.builders else None
        report = reporter(args, stage_names(plan))
        try:
            results = reproduce(
                store,
                check,
                plan,
                stages,
                options,
                args.diffoscope,
                on_event=report,
                machine=machine,
            )
        finally:
            report.close()
    finally:
        if args.check_store is None:
            remove_tree(root)
    if args.json:
        print_json([dataclasses.asdict(result) for result in results])
    else:
        print(render(results))
    return 1 if any(r.status in (DIFFERS, FAILED) for r in results) else 0


def _reproduce_machine(spec: str, system: str) -> Machine:
    machines = [m for m in parse_machines(spec, "--builders") if m.fits(system, frozenset())]
    if not machines:
        raise BootstrapError(f"--builders: no machine builds {system}")
    return machines[0]


def run_diff(args: argparse.Namespace) -> int:
    a, b = (load_manifest(path) for path in args.manifests)
    if args.json:
        stages = manifest_differences(a, b)
        print_json({"identical": not stages, "stages": stages})
        return 1 if stages else 0
    lines = diff_manifests(a, b)
    print("\n".join(lines) if lines else "identical: every stage hash matches")
    return 1 if lines else 0


def run_manifest(args: argparse.Namespace) -> int:
    store = open_store(args, create=False)
    print_json(build_manifest(store, plan_from_args(args, store)))
    return 0
