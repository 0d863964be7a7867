"""Checking a store: every valid path present with the NAR hash it was registered with."""

from __future__ import annotations

from dataclasses import dataclass, field

from bootstrap.nar import nar_hash
from bootstrap.store.store import Store


@dataclass
class VerifyResult:
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[tuple[str, str, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt


def verify_store(store: Store, repair: bool = False) -> VerifyResult:
    """Recompute every path's NAR hash; with `repair`, delete bad paths and their referrers.

    Deleting the referrers too keeps the store closed under references; a later run rebuilds
    or re-fetches whatever was removed.
    """
    result = VerifyResult()
    for path in store.all_paths():
        result.checked += 1
        info = store.query_info(path)
        real = store.real_path(path)
        if not real.exists() and not real.is_symlink():
            result.missing.append(path)
            continue
        actual, _ = nar_hash(real, info.nar_hash.algo)
        if actual != info.nar_hash:
            result.corrupt.append((path, str(info.nar_hash), str(actual)))
    bad = result.missing + [c[0] for c in result.corrupt]
    if repair and bad:
        with store.gc_guard(exclusive=True):
            result.removed = store.closure(bad, reverse=True)
            store.unregister_and_delete(result.removed)
    return result
