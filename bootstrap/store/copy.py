"""Copying closures between stores that share a logical store directory."""

from __future__ import annotations

from collections.abc import Iterable

from bootstrap.errors import BootstrapError
from bootstrap.graphs import dependencies_first
from bootstrap.store.staging import copy_in
from bootstrap.store.store import Store


def copy_closure(source: Store, dest: Store, paths: Iterable[str]) -> list[str]:
    """Copy `paths` and everything they reference into `dest`; return the paths copied.

    Each path keeps its references, deriver and content address, and is checked against its
    registered NAR hash before it is registered. Both stores' GC locks are held shared.
    """
    if source.store_dir != dest.store_dir:
        raise BootstrapError(
            f"cannot copy between store dirs {source.store_dir} and {dest.store_dir}"
        )
    copied = []
    with source.gc_guard():
        for path in references_first(source, source.closure(paths)):
            if dest.is_valid(path):
                continue
            info = source.query_info(path)
            with dest.staging("copy") as tmp, dest.lock(path):
                if dest.is_valid(path):
                    continue
                copy_in(source.real_path(path), tmp)
                dest.register_copy(tmp, info)
            copied.append(path)
    return copied


def references_first(store: Store, paths: list[str]) -> list[str]:
    """`paths` (valid in `store`), each after those of its references that are among them."""
    return dependencies_first(paths, store.references, within=set(paths))
