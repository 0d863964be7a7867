"""Rebuild-and-compare: build already-built derivations again in a second physical store.

As `nix build --check` does for one derivation, but for whole stages: each derivation's inputs
are copied from the main store into a separate check store with the same logical store
directory, the derivation is built there in its sandbox, and each output's NAR hash is compared
with the main store's. Where they differ, the files that differ are listed, and with
`diffoscope_dir` a diffoscope report is written for each.

With a `machine` (a Nix builder, `--builders`), each derivation is built there instead, by
real Nix in its own sandbox, through the serve protocol (`bootstrap.remote.offload`): a
cross-engine check. The seed is built there too (Nix's `builtin:fetchurl` unpacking its NAR);
plain downloads are not (their bytes are fixed by their hash). The builder's store must not
hold the outputs already (Nix would not build them again): give it a fresh store.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bootstrap import progress
from bootstrap.build import BuildOptions, realise
from bootstrap.builtins import BUILTINS, is_seed
from bootstrap.derivation import Derivation
from bootstrap.errors import BootstrapError
from bootstrap.recipe import TargetPlan
from bootstrap.remote.machines import Machine
from bootstrap.remote.offload import build_remotely
from bootstrap.store import Store
from bootstrap.store.copy import copy_closure

IDENTICAL, DIFFERS, FAILED, NOT_BUILT = "identical", "differs", "failed", "not built"
DIFFOSCOPE_SECONDS = 300


@dataclass
class ReproResult:
    name: str
    drv: str
    status: str
    differing: dict[str, list[str]] = field(default_factory=dict)  # output -> relative files
    reason: str = ""
    reports: list[str] = field(default_factory=list)


def reproduce(
    store: Store,
    check: Store,
    plan: TargetPlan,
    stages: list[str],
    options: BuildOptions,
    diffoscope_dir: Path | None = None,
    *,
    on_event: progress.OnEvent | None = None,
    machine: Machine | None = None,
) -> list[ReproResult]:
    """Rebuild every non-builtin derivation of `stages` in `check` (or on `machine`, the seed
    included) and compare outputs, saying each start, log line and end to `on_event`."""
    if check.root.resolve() == store.root.resolve():
        raise BootstrapError("the check store must be a different physical store")
    wanted = {d for s in stages for d in plan.stages[s]}

    def rebuilt(drv: Derivation) -> bool:
        return drv.builder not in BUILTINS or (machine is not None and is_seed(drv))

    order = [
        d for d in plan.graph.topological() if d in wanted and rebuilt(plan.graph.derivations[d])
    ]
    say = on_event or (lambda _event: None)
    say(progress.Event(progress.PLAN, count=len(order)))
    return [
        _reproduce_one(store, check, plan, drv, options, diffoscope_dir, say, machine)
        for drv in order
    ]


def _reproduce_one(
    store, check, plan, drv_path, options, diffoscope_dir, say, machine
) -> ReproResult:
    drv = plan.graph.derivations[drv_path]
    result = ReproResult(drv.name, drv_path, IDENTICAL)
    if not all(store.is_valid(o.path) for o in drv.outputs.values()):
        result.status = NOT_BUILT
        say(progress.Event(progress.FAILED, drv.name, drv_path, "not built in this store"))
        return result
    say(progress.Event(progress.START, drv.name, drv_path, " again, to compare"))
    start = time.monotonic()
    _rebuild_and_compare(
        store, check, plan, drv_path, options, diffoscope_dir, result, say, machine
    )
    if result.status == FAILED:
        say(progress.Event(progress.FAILED, drv.name, drv_path, result.reason))
    else:
        took = time.monotonic() - start
        say(progress.Event(progress.DONE, drv.name, drv_path, seconds=took))
    return result


def _rebuild_and_compare(
    store, check, plan, drv_path, options, diffoscope_dir, result, say, machine
):
    """Build `drv_path` in `check` from the main store's inputs; set `result` by the outputs."""
    drv = plan.graph.derivations[drv_path]
    inputs = list(drv.input_srcs)
    for input_drv in drv.input_drvs:
        for name, out in plan.graph.derivations[input_drv].outputs.items():
            inputs.append(out.path)
            check.db.set_drv_output(input_drv, name, out.path)
    copy_closure(store, check, inputs)
    check.unregister_and_delete([o.path for o in drv.outputs.values() if check.is_valid(o.path)])
    try:
        lines = progress.line_events(say, drv.name, drv_path)
        if machine is None:
            realise(check, drv_path, drv, options, lines)
        else:
            build_remotely(check, drv_path, drv, machine, options, lines)
    except BootstrapError as err:
        result.status, result.reason = FAILED, str(err).splitlines()[0]
        return
    for name, out in drv.outputs.items():
        if store.query_info(out.path).nar_hash != check.query_info(out.path).nar_hash:
            result.status = DIFFERS
            a, b = store.real_path(out.path), check.real_path(out.path)
            files = differing_files(a, b)
            result.differing[name] = files
            if diffoscope_dir is not None:
                result.reports += diffoscope_reports(a, b, files, diffoscope_dir / drv.name / name)


def _fingerprint(path: Path) -> tuple:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return ("symlink", os.readlink(path))
    if stat.S_ISDIR(st.st_mode):
        return ("directory",)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return ("file", bool(st.st_mode & stat.S_IXUSR), digest)


def _relative_files(root: Path) -> set[str]:
    if not root.is_dir() or root.is_symlink():
        return {"."}
    found = {"."}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.add(os.path.relpath(os.path.join(dirpath, name), root))
    return found


def differing_files(a: Path, b: Path) -> list[str]:
    """Relative paths whose type, executable bit, content or link target differ (or exist once)."""
    return [
        rel
        for rel in sorted(_relative_files(a) | _relative_files(b))
        if not (os.path.lexists(a / rel) and os.path.lexists(b / rel))
        or _fingerprint(a / rel) != _fingerprint(b / rel)
    ]


def diffoscope_reports(a: Path, b: Path, files: list[str], out_dir: Path) -> list[str]:
    """One diffoscope text report in `out_dir` per differing regular file; their paths."""
    tool = shutil.which("diffoscope")
    if tool is None:
        raise BootstrapError("--diffoscope needs diffoscope: apt-get install diffoscope-minimal")
    out_dir.mkdir(parents=True, exist_ok=True)
    reports = []
    for rel in files:
        pa, pb = a / rel, b / rel
        if not (pa.is_file() and pb.is_file()):
            continue
        report = out_dir / (rel.replace("/", "_") + ".txt")
        subprocess.run(
            [tool, "--text", str(report), "--no-progress", str(pa), str(pb)],
            capture_output=True,
            timeout=DIFFOSCOPE_SECONDS,
            check=False,
        )
        reports.append(str(report))
    return reports


def render(results: list[ReproResult]) -> str:
    lines = [f"{'derivation':<36} result"]
    for r in results:
        detail = f"  ({r.reason})" if r.reason else ""
        lines.append(f"{r.name:<36} {r.status}{detail}")
        for output, files in r.differing.items():
            lines += [f"    {output}: {rel}" for rel in files[:50]]
            if len(files) > 50:
                lines.append(f"    {output}: ... and {len(files) - 50} more files")
        lines += [f"    diffoscope report: {report}" for report in r.reports]
    statuses = (IDENTICAL, DIFFERS, FAILED, NOT_BUILT)
    lines.append(", ".join(f"{sum(r.status == s for r in results)} {s}" for s in statuses))
    return "\n".join(lines)
