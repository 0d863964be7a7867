"""Garbage collection: delete every valid path not reachable from a root.

Roots live in `var/bootstrap/gcroots/`: a symlink there to a store path is an explicit root;
a symlink there to a symlink elsewhere (a `result` link) is an indirect root, alive while that
link still points into the store; `profiles/NAME` holds what the last `run` of a target and
profile built (`set_profile_root`). Derivations of live outputs are kept too.

Besides dead paths, the collector deletes what is in the physical store but not valid: the
leftovers of killed processes. It keeps a `.tmp-*` entry whose owner is alive, and the kept
build directory (`.partial-*`) of a derivation that is still live, unless asked not to.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from bootstrap.errors import BootstrapError
from bootstrap.fstree import remove_tree
from bootstrap.store.disk import disk_full_as_error, ensure_reserve
from bootstrap.store.store import PARTIAL_PREFIX, TEMP_PREFIX, Store


@dataclass
class GcResult:
    roots: list[str]
    live: list[str]
    dead: list[str]
    garbage_files: list[str] = field(default_factory=list)
    kept_partial: list[str] = field(default_factory=list)
    freed_bytes: int = 0


def roots_dir(store: Store) -> Path:
    return store.state_dir / "gcroots"


def add_root(store: Store, store_path: str, link: Path | None = None) -> Path:
    """Make `store_path` a root: explicitly, or via a `result`-style symlink at `link`.

    A `result` link points at the physical path, so it is usable on the host even when the
    store's physical root differs from its logical directory. An existing `link` is replaced
    only if it is a symlink.
    """
    store.query_info(store_path)
    target = store_path
    if link is not None:
        link = Path(os.path.abspath(link))
        _check_link_place(link)
        _replace_symlink(link, os.fspath(store.real_path(store_path)))
        target = os.fspath(link)
    name = target.strip("/").replace("/", "%")
    root_link = roots_dir(store) / ("auto" if link else "explicit") / name
    _replace_symlink(root_link, target)
    return root_link


def set_profile_root(store: Store, name: str, paths: list[str]) -> Path:
    """Root the valid ones of `paths` as `gcroots/profiles/NAME`, replacing what that name
    rooted before (as a Nix profile's new generation does).

    The root points at a text path that lists and references them, so its closure is theirs.
    """
    valid = sorted(p for p in set(paths) if store.is_valid(p))
    listing = store.add_text(f"{name}-roots", "".join(f"{p}\n" for p in valid).encode(), valid)
    link = roots_dir(store) / "profiles" / name
    _replace_symlink(link, listing)
    return link


def _check_link_place(link: Path) -> None:
    if not link.parent.is_dir():
        problem = "is not a directory" if link.parent.exists() else "does not exist"
        raise BootstrapError(f"{link}: cannot make the link: {link.parent} {problem}")
    if os.path.lexists(link) and not link.is_symlink():
        raise BootstrapError(f"{link}: exists and is not a symlink; not replacing it")


def _replace_symlink(link: Path, target: str) -> None:
    tmp = link.with_name(f".{link.name}.tmp")
    try:
        with disk_full_as_error(link):
            link.parent.mkdir(parents=True, exist_ok=True)
            if tmp.is_symlink():
                tmp.unlink()
            os.symlink(target, tmp)
            os.replace(tmp, link)
    except OSError as err:
        raise BootstrapError(f"{link}: cannot make the link: {err.strerror}") from None


def find_roots(store: Store, prune: bool = True) -> list[str]:
    """The store paths held by roots; with `prune`, stale indirect roots are removed."""
    roots: set[str] = set()
    base = roots_dir(store)
    if not base.exists():
        return []
    for link in sorted(base.rglob("*")):
        if not link.is_symlink():
            continue
        path = _root_target(store, link)
        if path is None:
            if prune:
                link.unlink()
        elif store.is_valid(path):
            roots.add(path)
    return sorted(roots)


def _root_target(store: Store, link: Path) -> str | None:
    """The store path a root names: directly, or through a `result` link (resolved relative
    to where that link lives); None if it names nothing in this store any more."""
    target = os.readlink(link)
    if target.startswith(store.store_dir + "/"):
        return _as_store_path(store, target)
    if os.path.islink(target):
        target = os.path.join(os.path.dirname(target), os.readlink(target))
    return _physical_store_path(store, target)


def _physical_store_path(store: Store, physical: str) -> str | None:
    """The store path that the physical path `physical` lies in, or None."""
    home = os.path.realpath(store.physical_dir)
    path = os.path.normpath(physical)
    while (parent := os.path.dirname(path)) != path:
        if os.path.realpath(parent) == home:
            return _as_store_path(store, f"{store.store_dir}/{os.path.basename(path)}")
        path = parent
    return None


def _as_store_path(store: Store, path: str) -> str | None:
    try:
        return store.to_store_path(path)
    except BootstrapError:
        return None


def live_paths(store: Store, roots: list[str]) -> list[str]:
    """The closure of `roots` and of the derivations of every path in it."""
    live = set(store.closure(roots))
    derivers = {d for p in live if (d := store.query_info(p).deriver) and store.is_valid(d)}
    return sorted(live | set(store.closure(derivers)))


def collect_garbage(
    store: Store,
    dry_run: bool = False,
    extra_roots: list[str] = (),
    delete_partial: bool = False,
) -> GcResult:
    """Delete dead paths and leftover unregistered files (or only list them, with `dry_run`,
    which changes nothing: not even stale roots are removed).

    Unregistered leftovers go first (no database write is needed for them), and with the
    space reserved for the collector released on opening (`Store(reclaim=True)`) the database
    can be written on a full disk too.
    """
    with store.gc_guard(exclusive=not dry_run, blocking=False) as got:
        if not got:
            raise BootstrapError("another bootstrap process is using the store; gc not started")
        roots = sorted(set(find_roots(store, prune=not dry_run) + list(extra_roots)))
        live = live_paths(store, roots)
        live_set = set(live)
        dead = [p for p in store.all_paths() if p not in live_set]
        garbage, kept = _unregistered_entries(store, live_set, delete_partial)
        result = GcResult(roots, live, dead, [os.fspath(g) for g in garbage])
        result.kept_partial = [os.fspath(k) for k in kept]
        result.freed_bytes = sum(store.query_info(p).nar_size for p in dead)
        if not dry_run:
            _delete(store, dead, garbage)
        return result


def _delete(store: Store, dead: list[str], garbage: list[Path]) -> None:
    for entry in garbage:
        if not entry.name.startswith(TEMP_PREFIX):
            remove_tree(entry)
    store.remove_dead_temps()
    store.unregister_and_delete(dead)
    ensure_reserve(store.state_dir)


def _unregistered_entries(
    store: Store, live: set[str], delete_partial: bool
) -> tuple[list[Path], list[Path]]:
    """Entries of the physical store that are no valid path, split into garbage and the
    kept build directories of live derivations. A live process's `.tmp-*` is neither."""
    valid = {p.rsplit("/", 1)[1] for p in store.all_paths()}
    garbage, kept = [], []
    for entry in sorted(store.physical_dir.iterdir()):
        name = entry.name
        if name in valid or (name.startswith(TEMP_PREFIX) and store.temp_is_live(name)):
            continue
        wanted = name.startswith(PARTIAL_PREFIX) and store.partial_build_drv(name) in live
        (kept if wanted and not delete_partial else garbage).append(entry)
    return garbage, kept
