"""The SQLite database of valid store paths and what they reference.

A path is valid exactly when it has a row in `valid_paths`; rows are only written after the
path's contents are complete, canonical and in place. WAL mode and a busy timeout let several
`bootstrap` processes share one store. SQLite's failures (a damaged file, a full disk) reach
users as one line naming the database file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from bootstrap.errors import BootstrapError
from bootstrap.hashing import Hash
from bootstrap.store.disk import disk_full, is_full
from bootstrap.store.locks import file_lock

SCHEMA_VERSION = 1
# keys per query of the batched lookups (SQLite allows 32,766 parameters; fewer keep each cheap)
_BATCH = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS valid_paths (
    id INTEGER PRIMARY KEY,
    path TEXT UNIQUE NOT NULL,
    nar_hash TEXT NOT NULL,
    nar_size INTEGER NOT NULL,
    deriver TEXT,
    ca TEXT,
    registration_time INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS refs (
    referrer INTEGER NOT NULL REFERENCES valid_paths(id) ON DELETE CASCADE,
    reference INTEGER NOT NULL REFERENCES valid_paths(id) ON DELETE RESTRICT,
    PRIMARY KEY (referrer, reference)
);
CREATE INDEX IF NOT EXISTS refs_reference ON refs(reference);
CREATE TABLE IF NOT EXISTS drv_outputs (
    drv TEXT NOT NULL,
    output TEXT NOT NULL,
    path TEXT NOT NULL,
    PRIMARY KEY (drv, output)
);
CREATE INDEX IF NOT EXISTS drv_outputs_path ON drv_outputs(path);
CREATE TABLE IF NOT EXISTS signatures (
    path_id INTEGER NOT NULL REFERENCES valid_paths(id) ON DELETE CASCADE,
    signature TEXT NOT NULL,
    PRIMARY KEY (path_id, signature)
);
CREATE TABLE IF NOT EXISTS substitutions (
    path_id INTEGER PRIMARY KEY REFERENCES valid_paths(id) ON DELETE CASCADE,
    url TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS build_times (
    path_id INTEGER PRIMARY KEY REFERENCES valid_paths(id) ON DELETE CASCADE,
    wall_seconds REAL NOT NULL,
    cpu_seconds REAL NOT NULL,
    cores INTEGER NOT NULL,
    built_at INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class PathInfo:
    """What the store knows about one valid path."""

    path: str
    nar_hash: Hash
    nar_size: int
    references: tuple[str, ...] = ()
    deriver: str | None = None
    ca: str | None = None
    registration_time: int = 0
    signatures: tuple[str, ...] = ()  # `NAME:BASE64`, see bootstrap.signing


@dataclass(frozen=True)
class BuildTime:
    """How long the build that made a path took: wall seconds, CPU seconds (user+system of the
    builder's whole process tree), the cores it was given, and when it ended (Unix time)."""

    wall: float
    cpu: float
    cores: int
    built_at: int


def _user_error(file: Path, err: sqlite3.DatabaseError) -> BootstrapError:
    name = getattr(err, "sqlite_errorname", "")
    if name == "SQLITE_FULL" or is_full(file):
        return disk_full(file)
    if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
        return BootstrapError(
            f"{file}: the store's database is damaged ({err}): expected an SQLite database; "
            "move it away (the store's files stay) or restore it from a backup"
        )
    return BootstrapError(f"{file}: cannot use the store's database: {err}")


@contextmanager
def _reported(file: Path) -> Iterator[None]:
    """SQLite errors raised inside become one-line `BootstrapError`s (constraint violations
    stay as they are: they are bugs, or callers handle them)."""
    try:
        yield
    except sqlite3.IntegrityError:
        raise
    except sqlite3.DatabaseError as err:
        raise _user_error(file, err) from None


class _Cursor(sqlite3.Cursor):
    """A cursor whose row fetches report errors as `_reported` does."""

    def __next__(self):
        with _reported(self.connection.file):
            return super().__next__()

    def fetchone(self):
        with _reported(self.connection.file):
            return super().fetchone()

    def fetchall(self):
        with _reported(self.connection.file):
            return super().fetchall()


class _Connection(sqlite3.Connection):
    """A connection whose statements report errors as `_reported` does."""

    file: Path

    def execute(self, sql: str, parameters=()) -> _Cursor:
        with _reported(self.file):
            return self.cursor(_Cursor).execute(sql, parameters)

    def executemany(self, sql: str, parameters) -> _Cursor:
        with _reported(self.file):
            return self.cursor(_Cursor).executemany(sql, parameters)


class Database:
    def __init__(self, file: Path, store_dir: str) -> None:
        file.parent.mkdir(parents=True, exist_ok=True)
        self.file = file
        self._local = threading.local()
        # Switching a new database to WAL fails at once ("database is locked", no busy wait)
        # while another process does the same, so creation is serialised by a lock file.
        with file_lock(file.with_name(file.name + ".init-lock")), self.transaction():
            for statement in filter(str.strip, _SCHEMA.split(";")):
                self.conn.execute(statement)
            self._check_meta(file, store_dir)

    def _check_meta(self, file: Path, store_dir: str) -> None:
        rows = dict(self.conn.execute("SELECT key, value FROM meta"))
        if not rows:
            self.conn.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [("store_dir", store_dir), ("schema", str(SCHEMA_VERSION))],
            )
        elif rows.get("store_dir") != store_dir:
            raise BootstrapError(
                f"{file}: this store was made for store dir {rows.get('store_dir')!r}, "
                f"not {store_dir!r}: pass --store-dir {rows.get('store_dir')} or another --store"
            )

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (SQLite connections must stay in their thread)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with _reported(self.file):
                conn = sqlite3.connect(
                    self.file, timeout=600, isolation_level=None, factory=_Connection
                )
            conn.file = self.file
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT; on any failure (COMMIT's own, on a full disk, too) the
        transaction is rolled back, so this thread's connection stays usable."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                with suppress(BootstrapError):
                    self.conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.conn.close()

    def is_valid(self, path: str) -> bool:
        return self._id(path) is not None

    def valid_among(self, paths: Iterable[str]) -> set[str]:
        """The valid ones of `paths`, in a few queries however many there are."""
        return {p for (p,) in self._rows_for("SELECT path FROM valid_paths WHERE path IN", paths)}

    def _rows_for(self, select: str, keys: Iterable[str], tail: str = "") -> Iterator[tuple]:
        """Rows of `select (?, ?, ...) tail` over `keys`, a bounded number of them at a time."""
        keys = list(dict.fromkeys(keys))
        for start in range(0, len(keys), _BATCH):
            batch = keys[start : start + _BATCH]
            marks = ",".join("?" * len(batch))
            yield from self.conn.execute(f"{select} ({marks}) {tail}", batch).fetchall()

    def _id(self, path: str) -> int | None:
        row = self.conn.execute("SELECT id FROM valid_paths WHERE path = ?", (path,)).fetchone()
        return row[0] if row else None

    def register(self, info: PathInfo) -> None:
        """Insert a path and its references (which must be valid, or the path itself)."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO valid_paths (path, nar_hash, nar_size, deriver, ca,"
                " registration_time) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    info.path,
                    str(info.nar_hash),
                    info.nar_size,
                    info.deriver,
                    info.ca,
                    info.registration_time,
                ),
            )
            own_id = self._id(info.path)
            for reference in info.references:
                ref_id = self._id(reference)
                if ref_id is None:
                    raise BootstrapError(
                        f"cannot register {info.path}: its reference {reference} is not valid"
                    )
                self.conn.execute("INSERT INTO refs VALUES (?, ?)", (own_id, ref_id))
            self._insert_signatures(own_id, info.signatures)

    def add_signatures(self, path: str, signatures: Iterable[str]) -> None:
        """Record more signatures of a valid path (ones it already has are kept once)."""
        with self.transaction():
            path_id = self._id(path)
            if path_id is None:
                raise BootstrapError(f"cannot sign {path}: it is not a valid path")
            self._insert_signatures(path_id, signatures)

    def set_substituted(self, path: str, url: str) -> None:
        """Record that a valid path came from the binary cache at `url`."""
        with self.transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO substitutions SELECT id, ? FROM valid_paths WHERE path = ?",
                (url, path),
            )

    def substituted_from(self, path: str) -> str | None:
        row = self.conn.execute(
            "SELECT s.url FROM substitutions s JOIN valid_paths p ON p.id = s.path_id"
            " WHERE p.path = ?",
            (path,),
        ).fetchone()
        return row[0] if row else None

    def set_build_time(self, paths: Iterable[str], time: BuildTime) -> None:
        """Record the build that made the valid `paths` (the outputs of one derivation)."""
        with self.transaction():
            self.conn.executemany(
                "INSERT OR REPLACE INTO build_times"
                " SELECT id, ?, ?, ?, ? FROM valid_paths WHERE path = ?",
                [(time.wall, time.cpu, time.cores, time.built_at, path) for path in paths],
            )

    def build_times(self, paths: Iterable[str]) -> dict[str, BuildTime]:
        """`build_time` of each of `paths` that has one, in a few queries."""
        rows = self._rows_for(
            "SELECT p.path, t.wall_seconds, t.cpu_seconds, t.cores, t.built_at FROM build_times t"
            " JOIN valid_paths p ON p.id = t.path_id WHERE p.path IN",
            paths,
        )
        return {path: BuildTime(*rest) for path, *rest in rows}

    def substitutions(self, paths: Iterable[str]) -> dict[str, str]:
        """`substituted_from` of each of `paths` that came from a cache, in a few queries."""
        rows = self._rows_for(
            "SELECT p.path, s.url FROM substitutions s JOIN valid_paths p ON p.id = s.path_id"
            " WHERE p.path IN",
            paths,
        )
        return dict(rows)

    def recorded_build_times(self) -> dict[str, BuildTime]:
        """Every recorded build time, by path."""
        rows = self.conn.execute(
            "SELECT p.path, t.wall_seconds, t.cpu_seconds, t.cores, t.built_at FROM build_times t"
            " JOIN valid_paths p ON p.id = t.path_id"
        ).fetchall()
        return {path: BuildTime(*rest) for path, *rest in rows}

    def build_time(self, path: str) -> BuildTime | None:
        """How long the build of `path` took; None if it was not built here (substituted,
        imported) or was built before build times were recorded."""
        row = self.conn.execute(
            "SELECT t.wall_seconds, t.cpu_seconds, t.cores, t.built_at FROM build_times t"
            " JOIN valid_paths p ON p.id = t.path_id WHERE p.path = ?",
            (path,),
        ).fetchone()
        return BuildTime(*row) if row else None

    def _insert_signatures(self, path_id: int, signatures: Iterable[str]) -> None:
        self.conn.executemany(
            "INSERT OR IGNORE INTO signatures VALUES (?, ?)",
            [(path_id, sig) for sig in signatures],
        )

    def info(self, path: str) -> PathInfo | None:
        row = self.conn.execute(
            "SELECT id, nar_hash, nar_size, deriver, ca, registration_time"
            " FROM valid_paths WHERE path = ?",
            (path,),
        ).fetchone()
        if row is None:
            return None
        path_id, nar_hash, nar_size, deriver, ca, reg_time = row
        references = tuple(
            r
            for (r,) in self.conn.execute(
                "SELECT p.path FROM refs JOIN valid_paths p ON p.id = refs.reference"
                " WHERE refs.referrer = ? ORDER BY p.path",
                (path_id,),
            )
        )
        signatures = tuple(
            s
            for (s,) in self.conn.execute(
                "SELECT signature FROM signatures WHERE path_id = ? ORDER BY signature", (path_id,)
            )
        )
        return PathInfo(
            path, Hash.parse(nar_hash), nar_size, references, deriver, ca, reg_time, signatures
        )

    def infos(self, paths: Iterable[str]) -> dict[str, PathInfo]:
        """`info` of each valid one of `paths`, in a few queries however many there are."""
        rows = self._rows_for(
            "SELECT id, path, nar_hash, nar_size, deriver, ca, registration_time"
            " FROM valid_paths WHERE path IN",
            paths,
        )
        by_id = {row[0]: row[1:] for row in rows}
        references: dict[int, list[str]] = {i: [] for i in by_id}
        signatures: dict[int, list[str]] = {i: [] for i in by_id}
        ids = [str(i) for i in by_id]
        for referrer, ref in self._rows_for(
            "SELECT refs.referrer, p.path FROM refs JOIN valid_paths p ON p.id = refs.reference"
            " WHERE refs.referrer IN",
            ids,
        ):
            references[referrer].append(ref)
        for path_id, sig in self._rows_for(
            "SELECT path_id, signature FROM signatures WHERE path_id IN", ids
        ):
            signatures[path_id].append(sig)
        return {
            path: PathInfo(
                path,
                Hash.parse(nar_hash),
                nar_size,
                tuple(sorted(references[i])),
                deriver,
                ca,
                reg_time,
                tuple(sorted(signatures[i])),
            )
            for i, (path, nar_hash, nar_size, deriver, ca, reg_time) in by_id.items()
        }

    def references(self, path: str) -> list[str]:
        return self._linked(path, "referrer", "reference")

    def referrers(self, path: str) -> list[str]:
        return self._linked(path, "reference", "referrer")

    def _linked(self, path: str, known: str, wanted: str) -> list[str]:
        return [
            p
            for (p,) in self.conn.execute(
                f"SELECT p.path FROM refs JOIN valid_paths p ON p.id = refs.{wanted}"
                f" JOIN valid_paths q ON q.id = refs.{known} WHERE q.path = ? ORDER BY p.path",
                (path,),
            )
        ]

    def all_paths(self) -> list[str]:
        return [p for (p,) in self.conn.execute("SELECT path FROM valid_paths ORDER BY path")]

    def unregister(self, paths: Iterable[str]) -> None:
        """Remove paths in one transaction; their referrers must be among them."""
        paths = list(paths)
        with self.transaction():
            self.conn.executemany("DELETE FROM drv_outputs WHERE path = ?", [(p,) for p in paths])
            ids = [(self._id(p),) for p in paths]
            self.conn.executemany("DELETE FROM refs WHERE referrer = ?", ids)
            try:
                self.conn.executemany("DELETE FROM valid_paths WHERE id = ?", ids)
            except sqlite3.IntegrityError:
                raise BootstrapError(
                    "cannot remove paths that other valid paths still reference"
                ) from None

    def set_drv_output(self, drv: str, output: str, path: str) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO drv_outputs VALUES (?, ?, ?)", (drv, output, path)
            )

    def set_drv_outputs(self, rows: Iterable[tuple[str, str, str]]) -> None:
        """`set_drv_output` for each (drv, output, path), in one transaction; rows already
        recorded are not written again (a store whose rows are all there is not written)."""
        rows = list(rows)
        known = set(
            self._rows_for(
                "SELECT drv, output, path FROM drv_outputs WHERE drv IN", (r[0] for r in rows)
            )
        )
        new = [row for row in rows if row not in known]
        if new:
            with self.transaction():
                self.conn.executemany("INSERT OR REPLACE INTO drv_outputs VALUES (?, ?, ?)", new)

    def drv_outputs(self, drv: str) -> dict[str, str]:
        return dict(self.conn.execute("SELECT output, path FROM drv_outputs WHERE drv = ?", (drv,)))
