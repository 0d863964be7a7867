"""`bootstrap audit ...`: hermeticity, reproducibility (rebuild, manifests, diffs)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bootstrap import seed
from bootstrap.audit.challenge import challenge
from bootstrap.audit.challenge import render as render_challenge
from bootstrap.audit.hermetic import AuditedPath, audit_hermetic, render_json, render_table
from bootstrap.audit.manifest import build_manifest, diff_manifests, load_manifest
from bootstrap.audit.reproduce import DIFFERS, FAILED, ReproResult, render, reproduce
from bootstrap.build import BuildOptions
from bootstrap.cli.common import (
    add_target_options,
    open_store,
    plan_from_args,
    print_json,
    recipes_from_args,
    store_paths_or_target,
)
from bootstrap.config import SUBSTITUTERS, list_setting
from bootstrap.elf.paths import PathMap, store_path_of
from bootstrap.errors import BootstrapError
from bootstrap.export import stage_outputs
from bootstrap.fetch import Fetcher
from bootstrap.recipe import TargetPlan
from bootstrap.remote.machines import Machine, parse_machines
from bootstrap.store import Store
from bootstrap.store.canonical import remove_tree


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
    store = open_store(args)
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
    sub.add_argument("--cores", type=int, default=1, help="cores each build may use")
    sub.add_argument(
        "--builders",
        metavar="SPEC",
        help="build again on this Nix machine (Nix's machine syntax, as `run --builders`; the "
        "first that fits), by real Nix in its sandbox, instead of here: a cross-engine check",
    )
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
    sub.add_argument("--jobs", type=int, default=seed.DEFAULT_JOBS, help="parallel make jobs")
    sub.add_argument("--manifest", type=Path, metavar="FILE", help="seed manifest to build")
    sub.add_argument("--work-dir", type=Path, metavar="DIR", help="keep the archives here")
    sub.set_defaults(func=run_ddc)


def run_ddc(args: argparse.Namespace) -> int:
    manifest = seed.load_manifest(args.manifest)
    compilers = tuple(args.cc or ("gcc", "clang"))
    report = seed.run_ddc(manifest, compilers, work_dir=args.work_dir, jobs=args.jobs)
    print(seed.render_ddc(report))
    return 0 if report.identical else 1


def run_hermetic(args: argparse.Namespace) -> int:
    store = open_store(args)
    store_paths, plain, allowed = _classify(args, store)
    closure_paths = store.closure(store_paths)
    audited = [
        AuditedPath(p, store.real_path(p), allowed.get(p, frozenset())) for p in closure_paths
    ]
    closure = set(closure_paths)
    path_map = _path_map(args.map, store)
    for path in plain:
        physical = path.resolve()
        audited.append(AuditedPath(path_map.logical(physical), physical))
        if owner := store_path_of(path_map.logical(physical), store.store_dir):
            closure.add(owner)
    violations = audit_hermetic(audited, closure, store.store_dir, path_map, args.allow)
    sys.stdout.write(render_json(violations) if args.json else render_table(violations))
    return 1 if violations else 0


def _classify(
    args: argparse.Namespace, store: Store
) -> tuple[list[str], list[Path], dict[str, frozenset[str]]]:
    """Split arguments into valid store paths (stages expand to their outputs) and plain files.

    When store paths or stages are named, also returns the host path strings that each output
    of the target's recipes allows: a store path that no current recipe builds is allowed none.
    """
    plan: TargetPlan | None = None
    store_paths: list[str] = []
    plain: list[Path] = []
    for item in args.items:
        if item.startswith(store.store_dir + "/") or item.startswith(f"{store.physical_dir}/"):
            path = store.to_store_path(item)
            store.query_info(path)
            store_paths.append(path)
        elif Path(item).exists():
            plain.append(Path(item))
        elif "/" in item:
            raise BootstrapError(f"{item}: no such file or directory")
        else:
            plan = plan or plan_from_args(args, store)
            if item not in plan.stages:
                raise BootstrapError(
                    f"{item!r} is neither a store path, a file nor a stage "
                    f"(stages: {', '.join(plan.stages)})"
                )
            outputs = _stage_outputs(plan, item)
            missing = [p for p in outputs if not store.is_valid(p)]
            if missing:
                raise BootstrapError(f"stage {item} is not fully built: {missing[0]} is missing")
            store_paths += outputs
    return store_paths, plain, _allowances(args, store) if store_paths else {}


def _allowances(args: argparse.Namespace, store: Store) -> dict[str, frozenset[str]]:
    """Output path -> the host path strings its recipe allows, in every profile of the
    target's recipes (a store path names neither its recipe nor its profile)."""
    allowed: dict[str, frozenset[str]] = {}
    for profile in recipes_from_args(args).profiles():
        allowed |= plan_from_args(args, store, profile).allowed_host_paths
    return allowed


def _stage_outputs(plan: TargetPlan, stage: str) -> list[str]:
    derivations = plan.graph.derivations
    return [o.path for d in plan.stages[stage] for o in derivations[d].outputs.values()]


def _path_map(specs: list[str], store: Store) -> PathMap:
    mounts: list[tuple[str, Path]] = [("/", Path("/")), (store.store_dir, store.physical_dir)]
    for spec in specs:
        logical, sep, physical = spec.partition("=")
        if not sep or not logical.startswith("/") or not physical:
            raise BootstrapError(f"--map {spec!r}: expected LOGICAL=PHYSICAL, LOGICAL absolute")
        mounts.append((logical, Path(physical).resolve()))
    return PathMap.of(mounts)


def run_reproduce(args: argparse.Namespace) -> int:
    store = open_store(args)
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
        options = BuildOptions(cores=args.cores, fetcher=Fetcher())
        machine = _reproduce_machine(args.builders, plan.target) if args.builders else None
        results = reproduce(
            store, check, plan, stages, options, args.diffoscope, machine, _say_result
        )
    finally:
        if args.check_store is None:
            remove_tree(root)
    print(render(results))
    return 1 if any(r.status in (DIFFERS, FAILED) for r in results) else 0


def _reproduce_machine(spec: str, system: str) -> Machine:
    machines = [m for m in parse_machines(spec, "--builders") if m.fits(system, frozenset())]
    if not machines:
        raise BootstrapError(f"--builders: no machine builds {system}")
    return machines[0]


def _say_result(result: ReproResult) -> None:
    print(f"{result.name}: {result.status}", file=sys.stderr, flush=True)


def run_diff(args: argparse.Namespace) -> int:
    a, b = (load_manifest(path) for path in args.manifests)
    lines = diff_manifests(a, b)
    print("\n".join(lines) if lines else "identical: every stage hash matches")
    return 1 if lines else 0


def run_manifest(args: argparse.Namespace) -> int:
    store = open_store(args)
    print_json(build_manifest(store, plan_from_args(args, store)))
    return 0
