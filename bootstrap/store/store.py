"""The store: a directory of immutable, content-addressed paths and the database that lists them.

The logical store directory (the path builds see, e.g. /bootstrap/store or /nix/store) is
separate from the physical root where the files live, so a sandbox can bind one onto the other
and two stores at different places hold bit-identical outputs.

Physical layout under `root`:
    store/                the store paths themselves (and `.tmp-*` directories being filled,
                          `.partial-*` build directories kept for an interrupted build)
    var/bootstrap/db.sqlite, locks/ (locks/tmp/ for the `.tmp-*` directories), gcroots/,
                  logs/, reserved (space kept for the collector, see store/disk.py)
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from bootstrap.errors import BootstrapError
from bootstrap.fstree import remove_tree
from bootstrap.hashing import Hash, hash_bytes, hash_file
from bootstrap.nar import nar_hash, serialise
from bootstrap.store.canonical import canonicalise, move_tree
from bootstrap.store.db import Database, PathInfo
from bootstrap.store.disk import disk_full_as_error, ensure_reserve, release_reserve
from bootstrap.store.locks import file_lock, is_held
from bootstrap.store.refs import ReferenceScanner
from bootstrap.store.staging import copy_in
from bootstrap.storepath import (
    DEFAULT_STORE_DIR,
    fixed_output_path,
    source_path,
    split_store_path,
    text_path,
    to_store_path,
    validate_name,
    validate_store_dir,
)

TEMP_PREFIX = ".tmp-"
PARTIAL_PREFIX = ".partial-"


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


def check_fixed_hash(path: Path, expected: Hash, recursive: bool, what: str) -> None:
    """Check a fixed output: the NAR hash of `path` (recursive) or the hash of the regular
    file it is (flat) must be `expected`; `what` names it in the one-line error."""
    if recursive:
        actual = nar_hash(path, expected.algo)[0]
    elif stat.S_ISREG(os.lstat(path).st_mode):
        actual = hash_file(expected.algo, path)
    else:
        raise BootstrapError(f"{what}: a flat fixed output must be a regular file")
    if actual != expected:
        raise BootstrapError(
            f"{what}: fixed output hash mismatch: expected {expected.algo}:{expected.nix32}, "
            f"got {actual.algo}:{actual.nix32}"
        )


class Store:
    """A content-addressed store at physical `root`, presenting paths under `store_dir`.

    `root` is made absolute here, once, so every path derived from it (result links, the
    sandbox's binds) means the same from any working directory. Without `create`, a missing
    store is an error and nothing is written (for read-only commands such as `gc --dry-run`);
    with `reclaim`, the space kept for the collector is released before the database is
    opened, so `store gc` works on a full disk.
    """

    def __init__(
        self,
        root: Path | str | None = None,
        store_dir: str | None = None,
        *,
        create: bool = True,
        reclaim: bool = False,
    ) -> None:
        self.root = Path(os.path.abspath(root if root is not None else default_root()))
        self.store_dir = validate_store_dir(store_dir or default_store_dir())
        self.physical_dir = self.root / "store"
        self.state_dir = self.root / "var" / "bootstrap"
        db_file = self.state_dir / "db.sqlite"
        self._check_root(db_file, create)
        if reclaim:
            release_reserve(self.state_dir)
        self.db = Database(db_file, self.store_dir)
        if create and not reclaim:
            ensure_reserve(self.state_dir)

    def _check_root(self, db_file: Path, create: bool) -> None:
        """Refuse a root that is not a directory; make the layout (or, without `create`,
        refuse a root that holds no store)."""
        if os.path.lexists(self.root) and not self.root.is_dir():
            raise BootstrapError(f"{self.root}: the store root must be a directory, not a file")
        if not create:
            if not db_file.is_file():
                raise BootstrapError(f"{self.root}: no store here (no {db_file.name})")
            return
        try:
            with disk_full_as_error(self.root):
                self.physical_dir.mkdir(parents=True, exist_ok=True)
                self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            where = os.fsdecode(err.filename) if err.filename else self.root
            raise BootstrapError(f"{where}: cannot make the store here: {err.strerror}") from None

    # -- paths ---------------------------------------------------------------------------
    def real_path(self, store_path: str) -> Path:
        """Where the files of `store_path` (or a file inside it) physically live."""
        split_store_path(store_path, self.store_dir)
        return self.physical_dir / store_path[len(self.store_dir) + 1 :]

    def to_store_path(self, path: str) -> str:
        """The store path a user means by `path`, resolved as Nix's followLinksToStorePath
        does: a logical or physical store path, or a file or directory inside one, or a
        symlink (a `result` link) followed until it lands in the store; failing that, the
        path with every symlink resolved (`result/bin/tool`). Returns the logical path."""
        path = os.path.abspath(path)
        for candidate in (self._follow_links(path), os.path.realpath(path)):
            if (logical := self._as_logical(candidate)) is not None:
                return to_store_path(logical, self.store_dir)
        if path.startswith(self.store_dir + "/"):
            return to_store_path(path, self.store_dir)  # names a path this store may lack
        raise BootstrapError(f"{path}: not in the store {self.store_dir} (at {self.root})")

    def _follow_links(self, path: str) -> str:
        """Follow `path` while it is a symlink outside the store (at most 40 links, as
        the kernel allows)."""
        for _ in range(40):
            if self._as_logical(path) is not None or not os.path.islink(path):
                break
            path = os.path.normpath(os.path.join(os.path.dirname(path), os.readlink(path)))
        return path

    def _as_logical(self, path: str) -> str | None:
        """`path` as a logical path if it is inside the store (by either name), else None."""
        if path.startswith(self.store_dir + "/"):
            return path
        for physical in {os.fspath(self.physical_dir), os.path.realpath(self.physical_dir)}:
            if path.startswith(physical + "/"):
                return f"{self.store_dir}/{path[len(physical) + 1 :]}"
        return None

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
        """A scratch path on the store's file system, removed afterwards whatever happens.

        Its lock file is held while it lives, so a `.tmp-*` entry whose lock is free was left
        by a process that died (see `remove_dead_temps`)."""
        name = f"{TEMP_PREFIX}{label}-{secrets.token_hex(6)}"
        lock_file = self._temp_lock_file(name)
        with file_lock(lock_file):
            tmp = self.physical_dir / name
            try:
                yield tmp
            finally:
                remove_tree(tmp)
                lock_file.unlink(missing_ok=True)

    def _temp_lock_file(self, name: str) -> Path:
        return self.state_dir / "locks" / "tmp" / f"{name}.lock"

    def temp_is_live(self, name: str) -> bool:
        """Whether the `.tmp-*` entry `name` belongs to a running process. Creates nothing."""
        return is_held(self._temp_lock_file(name))

    def remove_dead_temps(self) -> list[Path]:
        """Delete every `.tmp-*` entry whose owner is gone (killed mid-add or mid-build)."""
        removed = []
        for name in sorted(os.listdir(self.physical_dir)):
            if name.startswith(TEMP_PREFIX) and self._remove_if_dead(name):
                removed.append(self.physical_dir / name)
        return removed

    def _remove_if_dead(self, name: str) -> bool:
        lock_file = self._temp_lock_file(name)
        with file_lock(lock_file, blocking=False) as got:
            if not got:
                return False
            remove_tree(self.physical_dir / name)
            lock_file.unlink(missing_ok=True)
        return True

    def partial_build_dir(self, drv_path: str) -> Path:
        """Where the build directory of `drv_path` is kept between an interrupted build and
        the next attempt (for derivations that can resume); the collector keeps it while the
        derivation is reachable from a root."""
        base = drv_path.rsplit("/", 1)[1].removesuffix(".drv")
        return self.physical_dir / f"{PARTIAL_PREFIX}{base}"

    def partial_build_drv(self, name: str) -> str:
        """The derivation whose kept build directory is the entry `name` (`.partial-*`)."""
        return f"{self.store_dir}/{name.removeprefix(PARTIAL_PREFIX)}.drv"

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
    @contextmanager
    def staging(self, label: str) -> Iterator[Path]:
        """A temp path to fill and install, with the GC lock held shared all along (the
        collector waits), dead processes' leftovers swept first, and a full disk reported in
        one line."""
        with self.gc_guard(), disk_full_as_error(self.physical_dir):
            self.remove_dead_temps()
            with self.temp_dir(label) as tmp:
                yield tmp

    def add_path(
        self, source: Path, name: str | None = None, references: Iterable[str] = ()
    ) -> str:
        """Copy a file or tree into the store as a `source` path (like `nix-store --add`).

        The path is named from the NAR hash of the copy, so a source that changes meanwhile
        still gives a path whose name matches its contents."""
        source = Path(source)
        name = validate_name(name or source.name)
        references = tuple(sorted(set(references)))
        with self.staging("add") as tmp:
            copy_in(source, tmp)
            canonicalise(tmp)
            digest, size, _ = scan_tree(tmp, ())
            path = source_path(digest, name, self.store_dir, references)
            info = PathInfo(path, digest, size, references, ca=f"fixed:r:{digest}")
            return self._install(tmp, info)

    def add_fixed(self, source: Path, expected: Hash, name: str, recursive: bool = False) -> str:
        """Add a fixed output after checking the (flat or NAR) hash of what was copied; nothing
        is kept on mismatch."""
        source = Path(source)
        path = fixed_output_path(expected, name, self.store_dir, recursive)
        if self.is_valid(path):
            return path
        with self.staging("add") as tmp:
            copy_in(source, tmp)
            canonicalise(tmp)
            check_fixed_hash(tmp, expected, recursive, f"{source}: {name}")
            digest, size, _ = scan_tree(tmp, ())
            method = "r:" if recursive else ""
            info = PathInfo(path, digest, size, ca=f"fixed:{method}{expected}")
            return self._install(tmp, info)

    def add_text(self, name: str, content: bytes, references: Iterable[str] = ()) -> str:
        """Add a text file such as a .drv, whose path covers its content and references."""
        references = tuple(sorted(set(references)))
        path = text_path(content, name, self.store_dir, references)
        if self.is_valid(path):
            return path
        with self.staging("text") as tmp:
            tmp.write_bytes(content)
            canonicalise(tmp)
            digest, size, _ = scan_tree(tmp, ())
            text_hash = hash_bytes("sha256", content)
            info = PathInfo(path, digest, size, references, ca=f"text:{text_hash}")
            return self._install(tmp, info)

    def _install(self, tmp: Path, info: PathInfo) -> str:
        with self.lock(info.path):
            if not self.is_valid(info.path):
                self._move_into_place(tmp, info)
        return info.path

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
        info = PathInfo(store_path, nar_hash, nar_size, tuple(refs), deriver, ca)
        with disk_full_as_error(self.physical_dir):
            return self._move_into_place(tmp, info)

    def register_copy(self, tmp: Path, info: PathInfo) -> PathInfo:
        """Make `tmp`, a copy of a path described by `info` (from another store, or held aside
        by a repair), valid with that metadata, after checking it has that NAR hash.

        The caller holds `lock(info.path)`."""
        canonicalise(tmp)
        actual, size = nar_hash(tmp, info.nar_hash.algo)
        if (actual, size) != (info.nar_hash, info.nar_size):
            raise BootstrapError(
                f"{info.path} changed while being copied (NAR hash {actual}, expected "
                f"{info.nar_hash}); nothing registered: run `bootstrap store verify`"
            )
        with disk_full_as_error(self.physical_dir):
            return self._move_into_place(tmp, info)

    def register_verified(self, tmp: Path, info: PathInfo) -> PathInfo:
        """Make `tmp` valid with `info` (signatures included) without hashing it again: the
        caller restored it from a NAR whose hash and size it checked against `info` (as Nix
        does while substituting). The caller holds `lock(info.path)`."""
        canonicalise(tmp)
        with disk_full_as_error(self.physical_dir):
            return self._move_into_place(tmp, info)

    def _move_into_place(self, tmp: Path, info: PathInfo) -> PathInfo:
        """Rename `tmp` to the final path, then register it (a crash in between leaves an
        unregistered copy that the next add or build of the path replaces). If registering
        fails, nothing stays at the final path. The GC lock is held shared meanwhile, so the
        collector never sees the copy before it is registered."""
        info = replace(info, registration_time=int(time.time()))
        final = self.real_path(info.path)
        with self.gc_guard():
            remove_tree(final)
            move_tree(tmp, final)
            try:
                self.db.register(info)
            except BaseException:
                self._drop_if_unregistered(info.path)
                raise
        return info

    def _drop_if_unregistered(self, store_path: str) -> None:
        if not self.db.is_valid(store_path):
            remove_tree(self.real_path(store_path))

    def unregister_and_delete(self, paths: Iterable[str]) -> None:
        """Make paths invalid first, then delete their files (a crash leaves only garbage)."""
        paths = list(paths)
        self.db.unregister(paths)
        for path in paths:
            remove_tree(self.real_path(path))
