"""Checking a store: every valid path present with the NAR hash it was registered with, and
every content-addressed path named after, and holding, the content its `ca` says.

Repairing what is found lives above the build layer (bootstrap/repair.py): it can rebuild.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from bootstrap.errors import BootstrapError
from bootstrap.hashing import Hash, hash_bytes, hash_file
from bootstrap.nar import nar_hash
from bootstrap.store.db import PathInfo
from bootstrap.store.store import Store
from bootstrap.storepath import fixed_output_path, source_path, split_store_path, text_path


@dataclass
class VerifyResult:
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    # (path, registered NAR hash, NAR hash found)
    corrupt: list[tuple[str, str, str]] = field(default_factory=list)
    # (path, how its name or `ca` disagrees with its content)
    misnamed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.bad

    @property
    def bad(self) -> list[str]:
        """Every path found missing, corrupt or misnamed."""
        found = self.missing + [c[0] for c in self.corrupt] + [m[0] for m in self.misnamed]
        return sorted(set(found))


def verify_store(store: Store) -> VerifyResult:
    """Recompute every path's NAR hash, and check content addresses against the content.

    The GC lock is held shared, so the collector cannot make a path look missing meanwhile."""
    result = VerifyResult()
    with store.gc_guard():
        for path in store.all_paths():
            result.checked += 1
            _check(store, store.query_info(path), result)
    return result


def _check(store: Store, info: PathInfo, result: VerifyResult) -> None:
    real = store.real_path(info.path)
    if not os.path.lexists(real):
        result.missing.append(info.path)
        return
    actual, _ = nar_hash(real, info.nar_hash.algo)
    if actual != info.nar_hash:
        result.corrupt.append((info.path, str(info.nar_hash), str(actual)))
    elif info.ca and (problem := content_address_problem(store, info)):
        result.misnamed.append((info.path, problem))


def content_address_problem(store: Store, info: PathInfo) -> str | None:
    """How a content-addressed path's `ca` disagrees with its content or its name, if it does.

    `text:sha256:H` (a .drv, a text file): H is the file's sha256. `fixed:r:ALGO:H` (an added
    tree, a recursive fixed output): H is the NAR hash. `fixed:ALGO:H` (a flat fixed output):
    H is the file's hash. In each case the path must be the one computed from H, the name and
    the references, as Nix computes it.
    """
    method, _, rest = info.ca.partition(":")
    recursive = method == "fixed" and rest.startswith("r:")
    try:
        claimed = Hash.parse(rest.removeprefix("r:") if recursive else rest)
    except BootstrapError:
        claimed = None
    if method not in ("text", "fixed") or claimed is None:
        return f"its ca {info.ca!r} is not text:ALGO:HASH or fixed:[r:]ALGO:HASH"
    name = split_store_path(info.path, store.store_dir)[1]
    others = [r for r in info.references if r != info.path]
    real = store.real_path(info.path)
    if recursive:
        same_algo = claimed.algo == info.nar_hash.algo
        actual = info.nar_hash if same_algo else nar_hash(real, claimed.algo)[0]
        if claimed.algo == "sha256":
            self_ref = info.path in info.references
            expected = source_path(claimed, name, store.store_dir, others, self_ref)
        else:
            expected = fixed_output_path(claimed, name, store.store_dir, recursive=True)
    elif not stat.S_ISREG(os.lstat(real).st_mode):
        return f"its ca {info.ca!r} needs a regular file"
    elif method == "text":
        content = real.read_bytes()
        actual = hash_bytes("sha256", content)
        expected = text_path(content, name, store.store_dir, others)
    else:
        actual = hash_file(claimed.algo, real)
        expected = fixed_output_path(claimed, name, store.store_dir)
    if actual != claimed:
        return f"its ca says {claimed}, its content hashes to {actual}"
    if expected != info.path:
        return f"its ca {info.ca} gives the path {expected}"
    return None
