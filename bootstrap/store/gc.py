"""Garbage collection: delete every valid path not reachable from a root.

Roots live in `var/bootstrap/gcroots/`: a symlink there to a store path is an explicit root;
a symlink there to a symlink elsewhere (a `result` link) is an indirect root, alive while that
link still points into the store. Derivations of live outputs are kept too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from bootstrap.errors import BootstrapError
from bootstrap.store.canonical import remove_tree
from bootstrap.store.store import Store


@dataclass
class GcResult:
    roots: list[str]
    live: list[str]
    dead: list[str]
    garbage_files: list[str] = field(default_factory=list)
    freed_bytes: int = 0


def roots_dir(store: Store) -> Path:
    return store.state_dir / "gcroots"


def add_root(store: Store, store_path: str, link: Path | None = None) -> Path:
    """Make `store_path` a root: explicitly, or via a `result`-style symlink at `link`.

    A `result` link points at the physical path, so it is usable on the host even when the
    store's physical root differs from its logical directory.
    """
    store.query_info(store_path)
    target = store_path
    if link is not None:
        link = Path(os.path.abspath(link))
        _replace_symlink(link, os.fspath(store.real_path(store_path)))
        target = os.fspath(link)
    name = target.strip("/").replace("/", "%")
    root_link = roots_dir(store) / ("auto" if link else "explicit") / name
    _replace_symlink(root_link, target)
    return root_link


def _replace_symlink(link: Path, target: str) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.tmp")
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def find_roots(store: Store) -> list[str]:
    """The store paths held by roots; stale indirect roots are removed."""
    roots: set[str] = set()
    base = roots_dir(store)
    if not base.exists():
        return []
    for link in sorted(base.rglob("*")):
        if not link.is_symlink():
            continue
        target = os.readlink(link)
        if os.path.islink(target):
            target = os.readlink(target)
        elif not target.startswith(store.store_dir + "/"):
            link.unlink()
            continue
        try:
            path = store.to_store_path(target)
        except BootstrapError:
            link.unlink()
            continue
        if store.is_valid(path):
            roots.add(path)
    return sorted(roots)


def live_paths(store: Store, extra_roots: list[str]) -> list[str]:
    roots = find_roots(store) + extra_roots
    live = set(store.closure(roots))
    derivers = {d for p in live if (d := store.query_info(p).deriver) and store.is_valid(d)}
    return sorted(live | set(store.closure(derivers)))


def collect_garbage(store: Store, dry_run: bool = False, extra_roots: list[str] = ()) -> GcResult:
    """Delete dead paths (or only list them with `dry_run`) and leftover unregistered files."""
    with store.gc_guard(exclusive=True, blocking=False) as got:
        if not got:
            raise BootstrapError("another bootstrap process is using the store; gc not started")
        roots = find_roots(store) + list(extra_roots)
        live = set(live_paths(store, list(extra_roots)))
        dead = [p for p in store.all_paths() if p not in live]
        garbage = _unregistered_entries(store)
        result = GcResult(sorted(roots), sorted(live), dead, [os.fspath(g) for g in garbage])
        result.freed_bytes = sum(store.query_info(p).nar_size for p in dead)
        if not dry_run:
            store.unregister_and_delete(dead)
            for entry in garbage:
                remove_tree(entry)
        return result


def _unregistered_entries(store: Store) -> list[Path]:
    """Files in the physical store with no valid path: crash leftovers and temp dirs."""
    valid = {p.rsplit("/", 1)[1] for p in store.all_paths()}
    return sorted(e for e in store.physical_dir.iterdir() if e.name not in valid)
