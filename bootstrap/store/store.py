"""The store: a directory of immutable, content-addressed paths and the database that lists them.

The logical store directory (the path builds see, e.g. /bootstrap/store or /nix/store) is
separate from the physical root where the files live, so a sandbox can bind one onto the other
and two stores at different places hold bit-identical outputs.

Physical layout under `root`:
    store/                the store paths themselves (and `.tmp-*` directories being filled,
                          `.partial-*` build directories kept for an interrupted build)
    var/bootstrap/db.sqlite, locks/, gcroots/, logs/
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bootstrap.errors import BootstrapError
from bootstrap.hashing import Hash, hash_file
from bootstrap.nar import nar_hash, serialise
from bootstrap.store.canonical import canonicalise, remove_tree
from bootstrap.store.db import Database, PathInfo
from bootstrap.store.locks import file_lock
from bootstrap.store.refs import ReferenceScanner
from bootstrap.storepath import (
    DEFAULT_STORE_DIR,
    fixed_output_path,
    source_path,
    split_store_path,
    text_path,
    to_store_path,
    validate_store_dir,
)


def default_root() -> Path:
    """$BOOTSTRAP_STORE, else $XDG_DATA_HOME/bootstrap, else ~/.local/share/bootstrap."""
    if env := os.environ.get("BOOTSTRAP_STORE"):
        return Path(env)
    data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(data) / "bootstrap"


def default_store_dir() -> str:
    return os.environ.get("BOOTSTRAP_STORE_DIR", DEFAULT_STORE_DIR)


def scan_tree(path: Path, candidates: Iterable[str]) -> tuple[Hash, int, set[str]]:
    """NAR-hash a tree and find which candidate hash parts it mentions, in one pass."""
    hasher = hashlib.sha256()
    scanner = ReferenceScanner(candidates)
    size = 0

    def feed(data: bytes) -> None:
        nonlocal size
        size += len(data)
        hasher.update(data)
        scanner.feed(data)

    serialise(path, feed)
    return Hash("sha256", hasher.digest()), size, scanner.found


class Store:
    """A content-addressed store at physical `root`, presenting paths under `store_dir`."""

    def __init__(self, root: Path | str | None = None, store_dir: str | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.store_dir = validate_store_dir(store_dir or default_store_dir())
        self.physical_dir = self.root / "store"
        self.state_dir = self.root / "var" / "bootstrap"
        self.physical_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(self.state_dir / "db.sqlite", self.store_dir)

    # -- paths ---------------------------------------------------------------------------
    def real_path(self, store_path: str) -> Path:
        """Where the files of `store_path` (or a file inside it) physically live."""
        split_store_path(store_path, self.store_dir)
        return self.physical_dir / store_path[len(self.store_dir) + 1 :]

    def to_store_path(self, path: str) -> str:
        """Accept a logical store path, or a physical path into this store; return logical."""
        physical = os.fspath(self.physical_dir) + "/"
        if path.startswith(physical):
            path = f"{self.store_dir}/{path[len(physical) :]}"
        return to_store_path(path, self.store_dir)

    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    # -- locking -------------------------------------------------------------------------
    def lock(self, store_path: str) -> Iterator[bool]:
        """Exclusive lock on one store path while it is added or built."""
        return file_lock(self._lock_file(store_path))

    def is_locked(self, store_path: str) -> bool:
        """True if some process holds the lock of `store_path` (it is being added or built)."""
        lock_file = self._lock_file(store_path)
        if not lock_file.exists():
            return False
        with file_lock(lock_file, blocking=False) as got:
            return not got

    def _lock_file(self, store_path: str) -> Path:
        hash_part, _ = split_store_path(store_path, self.store_dir)
        return self.state_dir / "locks" / f"{hash_part}.lock"

    def gc_guard(self, exclusive: bool = False, blocking: bool = True) -> Iterator[bool]:
        """Held shared by anything that adds or uses paths; exclusively by the collector."""
        return file_lock(self.state_dir / "gc.lock", shared=not exclusive, blocking=blocking)

    @contextmanager
    def temp_dir(self, label: str) -> Iterator[Path]:
        """A scratch path on the store's file system, removed afterwards whatever happens."""
        tmp = self.physical_dir / f".tmp-{label}-{secrets.token_hex(6)}"
        try:
            yield tmp
        finally:
            remove_tree(tmp)

    def partial_build_dir(self, drv_path: str) -> Path:
        """Where the build directory of `drv_path` is kept between an interrupted build and
        the next attempt (for derivations that can resume); garbage to the collector."""
        return self.physical_dir / f".partial-{drv_path.rsplit('/', 1)[1].removesuffix('.drv')}"

    # -- queries -------------------------------------------------------------------------
    def is_valid(self, store_path: str) -> bool:
        return self.db.is_valid(store_path)

    def query_info(self, store_path: str) -> PathInfo:
        info = self.db.info(store_path)
        if info is None:
            raise BootstrapError(f"{store_path} is not a valid path in the store at {self.root}")
        return info

    def references(self, store_path: str) -> list[str]:
        return self.db.references(store_path)

    def referrers(self, store_path: str) -> list[str]:
        return self.db.referrers(store_path)

    def closure(self, paths: Iterable[str], reverse: bool = False) -> list[str]:
        """All paths reachable from `paths` by references (or by referrers), sorted."""
        step = self.db.referrers if reverse else self.db.references
        seen: set[str] = set()
        todo = list(paths)
        while todo:
            path = todo.pop()
            if path in seen:
                continue
            if not self.db.is_valid(path):
                raise BootstrapError(f"{path} is not a valid path in the store at {self.root}")
            seen.add(path)
            todo.extend(step(path))
        return sorted(seen)

    def all_paths(self) -> list[str]:
        return self.db.all_paths()

    # -- adding --------------------------------------------------------------------------
    def add_path(
        self, source: Path, name: str | None = None, references: Iterable[str] = ()
    ) -> str:
        """Copy a file or tree into the store as a `source` path (like `nix-store --add`)."""
        source = Path(source)
        name = name or source.name
        references = sorted(set(references))
        nar_hash, _, _ = scan_tree(source, ())
        path = source_path(nar_hash, name, self.store_dir, references)
        return self._add_copy(source, path, references, ca=f"fixed:r:{nar_hash}")

    def add_fixed(self, source: Path, expected: Hash, name: str, recursive: bool = False) -> str:
        """Add a fixed output after checking its (flat or NAR) hash; nothing is kept on mismatch."""
        source = Path(source)
        if recursive:
            actual = nar_hash(source, expected.algo)[0]
        else:
            actual = hash_file(expected.algo, source)
        if actual != expected:
            raise BootstrapError(
                f"{source}: hash mismatch for {name}: expected {expected.algo}:{expected.nix32}, "
                f"got {actual.algo}:{actual.nix32}"
            )
        path = fixed_output_path(expected, name, self.store_dir, recursive)
        method = "r:" if recursive else ""
        return self._add_copy(source, path, [], ca=f"fixed:{method}{expected}")

    def add_text(self, name: str, content: bytes, references: Iterable[str] = ()) -> str:
        """Add a text file such as a .drv, whose path covers its content and references."""
        references = sorted(set(references))
        path = text_path(content, name, self.store_dir, references)
        if self.is_valid(path):
            return path
        with self.temp_dir("text") as tmp:
            tmp.write_bytes(content)
            digest = Hash("sha256", hashlib.sha256(content).digest())
            return self._install(tmp, path, references, ca=f"text:{digest}")

    def _add_copy(self, source: Path, path: str, references: list[str], ca: str) -> str:
        if self.is_valid(path):
            return path
        with self.temp_dir("add") as tmp:
            if source.is_dir() and not source.is_symlink():
                shutil.copytree(source, tmp, symlinks=True)
            else:
                shutil.copy(source, tmp, follow_symlinks=False)
            return self._install(tmp, path, references, ca=ca)

    def _install(self, tmp: Path, path: str, references: list[str], ca: str) -> str:
        with self.lock(path):
            if self.is_valid(path):
                return path
            self.register_output(tmp, path, references=references, scan=False, ca=ca)
        return path

    def register_output(
        self,
        tmp: Path,
        store_path: str,
        references: Iterable[str],
        deriver: str | None = None,
        ca: str | None = None,
        scan: bool = True,
    ) -> PathInfo:
        """Move a finished tree into place as `store_path` and make it valid.

        The caller holds `lock(store_path)`. With `scan`, `references` are candidates and only
        those whose hash part occurs in the tree (and the path itself) are recorded. The tree is
        canonicalised, hashed, renamed into place, and only then registered, so a crash leaves
        either no valid path or a complete one; a stale unregistered copy is replaced.
        """
        candidates = {split_store_path(r, self.store_dir)[0]: r for r in references}
        own_hash = split_store_path(store_path, self.store_dir)[0]
        if scan:
            candidates[own_hash] = store_path
        canonicalise(tmp)
        nar_hash, nar_size, found = scan_tree(tmp, candidates if scan else ())
        refs = sorted(candidates[h] for h in found) if scan else sorted(candidates.values())
        final = self.real_path(store_path)
        remove_tree(final)
        os.rename(tmp, final)
        info = PathInfo(store_path, nar_hash, nar_size, tuple(refs), deriver, ca, int(time.time()))
        self.db.register(info)
        return info

    def unregister_and_delete(self, paths: Iterable[str]) -> None:
        """Make paths invalid first, then delete their files (a crash leaves only garbage)."""
        paths = list(paths)
        self.db.unregister(paths)
        for path in paths:
            remove_tree(self.real_path(path))
