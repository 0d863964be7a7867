"""Copying closures between stores that share a logical store directory."""

from __future__ import annotations

import shutil
from collections.abc import Iterable

from bootstrap.errors import BootstrapError
from bootstrap.store.store import Store


def copy_closure(source: Store, dest: Store, paths: Iterable[str]) -> list[str]:
    """Copy `paths` and everything they reference into `dest`; return the paths copied.

    Each path keeps its references, deriver and content address, and is checked against its
    registered NAR hash on arrival.
    """
    if source.store_dir != dest.store_dir:
        raise BootstrapError(
            f"cannot copy between store dirs {source.store_dir} and {dest.store_dir}"
        )
    copied = []
    for path in references_first(source, source.closure(paths)):
        if dest.is_valid(path):
            continue
        info = source.query_info(path)
        with dest.temp_dir("copy") as tmp, dest.lock(path):
            if dest.is_valid(path):
                continue
            real = source.real_path(path)
            if real.is_dir() and not real.is_symlink():
                shutil.copytree(real, tmp, symlinks=True)
            else:
                shutil.copy(real, tmp, follow_symlinks=False)
            arrived = dest.register_output(
                tmp, path, info.references, deriver=info.deriver, ca=info.ca, scan=False
            )
        if arrived.nar_hash != info.nar_hash:
            dest.unregister_and_delete([path])
            raise BootstrapError(f"{path} changed while being copied; run `store verify`")
        copied.append(path)
    return copied


def references_first(store: Store, paths: list[str]) -> list[str]:
    order: list[str] = []
    done: set[str] = set()

    def visit(path: str) -> None:
        if path in done:
            return
        done.add(path)
        for ref in store.references(path):
            visit(ref)
        order.append(path)

    for path in paths:
        visit(path)
    return order
