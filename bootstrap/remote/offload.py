"""Building one derivation on a remote machine running Nix, as Hydra's queue runner does.

1. Lock the outputs here (as a local build does); if they are valid meanwhile, done.
2. Open an ssh session to `nix-store --serve --write`; ask which paths of the input closure
   the remote lacks; send those, references first, each as a NAR (AddToStoreNar).
3. BuildDerivation with the derivation's input derivations replaced by their outputs, our
   max-silent time and timeout; the remote's stderr, the build log, goes to the log file
   `bootstrap log` reads, line by line as it comes.
4. For each output: its path info (NAR hash, size, references), then its NAR, hashed and
   counted while it is restored into a scratch directory. It is rejected, and nothing is
   registered, if the NAR hash or size differ from what the remote declared, if the
   references found in it differ from the declared ones or name anything but the input
   closure and the derivation's outputs, if a fixed output has the wrong hash, or if our
   fix-up (interpreters, RUNPATHs, `#!` lines) would change it: a remote output is
   registered exactly as built, or not at all.
5. Register the outputs (references among them first) with their checked hashes.

A dropped connection at any point leaves nothing registered here; the remote keeps only
paths it completely received (Nix adds a path atomically).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from bootstrap.build import (
    BuildError,
    BuildOptions,
    BuildOutcome,
    claimed_outputs,
    fixup_policy,
    input_paths,
    log_path,
    tail,
)
from bootstrap.builtins import BUILTINS
from bootstrap.derivation import Derivation
from bootstrap.elf.fixup import fixup_output
from bootstrap.errors import BootstrapError
from bootstrap.nar import restore
from bootstrap.remote.copy import send_missing
from bootstrap.remote.machines import Machine
from bootstrap.remote.serve import BuildSettings, RemotePathInfo
from bootstrap.remote.ssh import RemoteUnavailable, serve_session
from bootstrap.store import PathInfo, Store
from bootstrap.store.store import check_fixed_hash, scan_tree
from bootstrap.storepath import split_store_path
from bootstrap.streams import CountingReader

# env key, as Nix's: the features a machine must support to build the derivation
REQUIRED_FEATURES = "requiredSystemFeatures"


def required_features(drv: Derivation) -> frozenset[str]:
    return frozenset(drv.env.get(REQUIRED_FEATURES, "").split())


def not_offloadable(drv: Derivation) -> str | None:
    """Why `drv` is not sent to a builder, or None. Downloads (`builtin:fetchurl`, the seed
    included) are built here, from the download cache: real Nix could build them too (they
    take its settings), but it would fetch them again, and needs the seed's NAR set up."""
    if drv.builder in BUILTINS:
        return f"its builder {drv.builder} is a download, made from the download cache"
    return None


def build_remotely(
    store: Store,
    drv_path: str,
    drv: Derivation,
    machine: Machine,
    options: BuildOptions,
    on_line: Callable[[str], None] | None = None,
) -> BuildOutcome:
    """Make every output of `drv` valid by building it on `machine`.

    RemoteUnavailable if the machine cannot be reached (nothing was done: build elsewhere);
    BuildError if the build failed or its result was rejected."""
    outputs = {name: out.path for name, out in drv.outputs.items()}
    with claimed_outputs(store, drv) as claimed:
        if not claimed:
            return BuildOutcome(drv_path, outputs, built=False, hermetic=True)
        start = time.monotonic()
        _offload(store, drv_path, drv, machine, options, on_line)
        seconds = time.monotonic() - start
    return BuildOutcome(drv_path, outputs, built=True, hermetic=True, seconds=seconds)


def _offload(store, drv_path, drv, machine, options, on_line) -> None:
    inputs = input_paths(store, drv)
    closure = store.closure(inputs)
    log_file = log_path(store, drv_path)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text(f"building {drv_path} on {machine.uri}\n")
    settings = BuildSettings(
        max_silent_seconds=int(options.max_silent_seconds or 0),
        timeout_seconds=int(options.max_seconds or 0),
    )
    try:
        with serve_session(machine, log_file, on_line) as connection:
            send_missing(store, connection, closure)
            result = connection.build_derivation(drv_path, drv, inputs, settings)
            if not result.succeeded:
                raise BuildError(
                    f"{drv.name}: the build on {machine.uri} failed ({result.status_name}: "
                    f"{_first_line(result.error)}); log: {log_file}\n{tail(log_file)}"
                )
            _fetch_outputs(store, connection, drv_path, drv, closure)
    except (BuildError, RemoteUnavailable):
        raise
    except BootstrapError as err:
        raise BuildError(f"{drv.name}: {err}; nothing registered; log: {log_file}") from None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "no message"


# -- fetching -------------------------------------------------------------------------------


def _fetch_outputs(store, connection, drv_path, drv, closure) -> None:
    paths = [out.path for out in drv.outputs.values()]
    infos = connection.query_path_infos(paths)
    missing = [p for p in paths if p not in infos]
    if missing:
        raise BuildError(f"{drv.name}: the remote built it but has no valid {missing[0]}")
    candidates = {split_store_path(p, store.store_dir)[0]: p for p in [*closure, *paths]}
    with ExitStack() as scratch:
        trees: dict[str, Path] = {}
        for name, out in drv.outputs.items():
            trees[name] = scratch.enter_context(store.temp_dir("remote"))
            _receive(store, connection, drv, name, infos[out.path], trees[name], candidates)
        for name in _siblings_first(drv, infos):
            info = infos[drv.outputs[name].path]
            store.register_verified(trees[name], _path_info(drv, name, info, drv_path))
            store.db.set_drv_output(drv_path, name, info.path)


def _receive(store, connection, drv, name, info: RemotePathInfo, tree: Path, candidates) -> None:
    where = f"{drv.name}: output {name} from {connection.where}"
    stranger = [r for r in info.references if r not in candidates.values()]
    if stranger:
        raise BuildError(f"{where}: it references {stranger[0]}, which is not an input")
    reader = CountingReader(connection.dump_store_path(info.path, info.nar_size))
    restore(io.BufferedReader(reader, 1 << 17), tree)
    reader.drain()  # the rest of the declared size: the connection stays in step
    digest = reader.digest()
    if digest != info.nar_hash:
        raise BuildError(f"{where}: NAR hash {digest}, but the remote declared {info.nar_hash}")
    found = scan_tree(tree, candidates)[2]
    if sorted(candidates[part] for part in found) != sorted(info.references):
        raise BuildError(
            f"{where}: its references {sorted(candidates[p] for p in found)} differ from "
            f"those the remote declared {sorted(info.references)}"
        )
    _check_as_built(store, drv, name, tree, where)


def _check_as_built(store: Store, drv: Derivation, name: str, tree: Path, where: str) -> None:
    """A fixed output must have its hash; any other must need no fix-up (a dry run on the
    scratch copy, which is thrown away if anything would change)."""
    out = drv.outputs[name]
    if out.is_fixed:
        try:
            check_fixed_hash(tree, out.fixed_hash(), out.recursive, where)
        except BootstrapError as err:
            raise BuildError(str(err)) from None
        return
    before = scan_tree(tree, ())[0]
    report = fixup_output(tree, out.path, fixup_policy(store, drv))
    details = [f"{c.file}: {c.what} {c.old} -> {c.new}" for c in report.changes]
    details += [f"{p.file}: {p.message}" for p in report.problems]
    if details or scan_tree(tree, ())[0] != before:
        detail = f" ({details[0]}{', ...' if len(details) > 1 else ''})" if details else ""
        raise BuildError(
            f"{where}: our fix-up would change it{detail}; a remote output is taken as built "
            "or not at all, so the recipe must make its outputs final when its builder exits"
        )


def _siblings_first(drv: Derivation, infos: dict[str, RemotePathInfo]) -> list[str]:
    """Output names, each after the sibling outputs it references."""
    by_path = {out.path: name for name, out in drv.outputs.items()}
    order: list[str] = []
    pending = list(drv.outputs)
    while pending:
        ready = [
            name
            for name in pending
            if all(
                by_path[r] in order or by_path[r] == name
                for r in infos[drv.outputs[name].path].references
                if r in by_path
            )
        ]
        if not ready:
            raise BuildError(f"{drv.name}: its outputs reference each other in a cycle")
        order += ready
        pending = [name for name in pending if name not in ready]
    return order


def _path_info(drv: Derivation, name: str, info: RemotePathInfo, drv_path: str) -> PathInfo:
    out = drv.outputs[name]
    ca = f"fixed:{'r:' if out.recursive else ''}{out.fixed_hash()}" if out.is_fixed else None
    return PathInfo(info.path, info.nar_hash, info.nar_size, info.references, drv_path, ca)
