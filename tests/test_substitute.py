"""Substitution from binary caches: real stores, caches written by `export`, served from disk
and by a real HTTP server on 127.0.0.1 with injected faults; hostile caches are refused."""

from __future__ import annotations

import bz2
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bootstrap.export.binary_cache import export_binary_cache
from bootstrap.hashing import Hash
from bootstrap.signing import SecretKey
from bootstrap.store import Store
from bootstrap.store.verify import verify_store
from bootstrap.substitute import SubstituteOptions, Substituter

STORE_DIR = "/bootstrap/store"
SERVER = Path(__file__).with_name("cache_server.py")


class Cache:
    """A store holding a small closure (app -> lib), exported as a signed binary cache."""

    def __init__(self, tmp: Path, compression: str = "xz") -> None:
        self.key = SecretKey.generate("test-cache-1")
        self.source = Store(tmp / "a", STORE_DIR)
        lib_tree = tmp / "lib"
        (lib_tree / "lib").mkdir(parents=True)
        (lib_tree / "lib" / "libx.so").write_bytes(os.urandom(300_000))
        self.lib = self.source.add_path(lib_tree, "lib")
        app_tree = tmp / "app"
        (app_tree / "bin").mkdir(parents=True)
        (app_tree / "bin" / "app").write_text(f"#!/bin/sh\nexec {self.lib}/lib/libx.so\n")
        (app_tree / "bin" / "app").chmod(0o755)
        os.symlink("app", app_tree / "bin" / "app-link")
        self.app = self.source.add_path(app_tree, "app", references=[self.lib])
        self.dir = tmp / "cache"
        written = "none" if compression == "bzip2" else compression  # export writes no bzip2
        export_binary_cache(self.source, [self.app], self.dir, written, self.key)
        if compression == "bzip2":
            for path in (self.app, self.lib):
                self.recompress_bzip2(path)

    @property
    def url(self) -> str:
        return f"file://{self.dir}"

    def narinfo(self, path: str) -> Path:
        return self.dir / f"{path.rsplit('/', 1)[1][:32]}.narinfo"

    def nar_file(self, path: str) -> Path:
        url = next(
            line.split(": ", 1)[1]
            for line in self.narinfo(path).read_text().splitlines()
            if line.startswith("URL: ")
        )
        return self.dir / url

    def edit_narinfo(self, path: str, field: str, value: str | None) -> None:
        lines = self.narinfo(path).read_text().splitlines()
        kept = [line for line in lines if not line.startswith(f"{field}: ")]
        if value is not None:
            kept.append(f"{field}: {value}")
        self.narinfo(path).write_text("\n".join(kept) + "\n")

    def recompress_bzip2(self, path: str) -> None:
        """Turn one path's plain NAR into a .nar.bz2, as older Nix caches hold them."""
        plain = self.nar_file(path)
        data = bz2.compress(plain.read_bytes())
        digest = Hash("sha256", hashlib.sha256(data).digest())
        packed = self.dir / "nar" / f"{digest.nix32}.nar.bz2"
        packed.write_bytes(data)
        plain.unlink()
        for field, value in [
            ("URL", f"nar/{packed.name}"),
            ("Compression", "bzip2"),
            ("FileHash", str(digest)),
            ("FileSize", str(len(data))),
        ]:
            self.edit_narinfo(path, field, value)

    def options(self, *urls: str, **kwargs) -> SubstituteOptions:
        trusted = {self.key.name: self.key.public_key()}
        return SubstituteOptions(urls=urls or (self.url,), trusted_keys=trusted, **kwargs)


@pytest.fixture
def cache(tmp_path) -> Cache:
    return Cache(tmp_path)


def fresh_store(tmp_path: Path, name: str = "b") -> Store:
    return Store(tmp_path / name, STORE_DIR)


def substitute(store: Store, options: SubstituteOptions, paths: list[str]):
    warnings: list[str] = []
    substituter = Substituter(store, options, warn=warnings.append)
    return substituter.substitute(paths), warnings, substituter


def assert_nothing_registered(store: Store) -> None:
    assert store.all_paths() == []
    assert verify_store(store).ok
    leftovers = [e.name for e in store.physical_dir.iterdir()]
    assert leftovers == [], leftovers


@pytest.mark.parametrize("compression", ["xz", "zstd", "bzip2", "none"])
def test_closure_is_substituted_with_its_signatures(tmp_path, compression):
    cache = Cache(tmp_path, compression)
    store = fresh_store(tmp_path)
    ok, warnings, substituter = substitute(store, cache.options(), [cache.app])
    assert ok and warnings == []
    assert store.all_paths() == sorted([cache.app, cache.lib])
    for path in (cache.app, cache.lib):
        ours, theirs = store.query_info(path), cache.source.query_info(path)
        assert (ours.nar_hash, ours.nar_size, ours.references, ours.ca) == (
            theirs.nar_hash,
            theirs.nar_size,
            theirs.references,
            theirs.ca,
        )
        assert len(ours.signatures) == 1 and ours.signatures[0].startswith("test-cache-1:")
        assert substituter.origins[path] == cache.url
    assert verify_store(store).ok
    assert os.readlink(store.real_path(cache.app) / "bin" / "app-link") == "app"


def hostile(cache: Cache, kind: str) -> None:
    """Damage the cache as an attacker or a broken mirror would."""
    app = cache.app
    if kind == "no signature":
        cache.edit_narinfo(app, "Sig", None)
    elif kind == "wrong signature":
        other = SecretKey.generate("test-cache-1").sign(b"something else")
        cache.edit_narinfo(app, "Sig", other)
    elif kind == "untrusted key":
        cache.edit_narinfo(app, "Sig", SecretKey.generate("mallory-1").sign(b"x"))
    elif kind == "tampered NAR":
        nar = cache.nar_file(app)
        data = bytearray(nar.read_bytes())
        data[len(data) // 2] ^= 0xFF
        nar.write_bytes(bytes(data))
    elif kind == "wrong NarSize":  # signature checks are off for this one: the size lies
        cache.edit_narinfo(app, "NarSize", "10")
    elif kind == "URL with ..":
        cache.edit_narinfo(app, "URL", "../../etc/passwd")
    elif kind == "absolute URL":
        cache.edit_narinfo(app, "URL", "/etc/passwd")
    elif kind == "missing reference":
        cache.narinfo(cache.lib).unlink()
    elif kind == "StoreDir mismatch":
        (cache.dir / "nix-cache-info").write_text("StoreDir: /nix/store\n")
    elif kind == "path traversal in NAR":
        cache.nar_file(app).write_bytes(traversal_nar())
        cache.edit_narinfo(app, "Compression", "none")
        cache.edit_narinfo(app, "FileHash", None)
        cache.edit_narinfo(app, "FileSize", None)


def traversal_nar() -> bytes:
    def s(data: bytes) -> bytes:
        return len(data).to_bytes(8, "little") + data + b"\0" * (-len(data) % 8)

    entry = [b"entry", b"(", b"name", b"..", b"node", b"(", b"type", b"regular"]
    entry += [b"contents", b"pwned", b")", b")"]
    words = [b"nix-archive-1", b"(", b"type", b"directory", *entry, b")"]
    return b"".join(map(s, words))


HOSTILE = [
    ("no signature", "not signed"),
    ("wrong signature", "no valid signature"),
    ("untrusted key", "signed by: mallory-1"),
    ("tampered NAR", ""),
    ("wrong NarSize", "more than the 10 bytes declared"),
    ("URL with ..", "leaves the cache"),
    ("absolute URL", "leaves the cache"),
    ("missing reference", "is unavailable"),
    ("StoreDir mismatch", "StoreDir is '/nix/store'"),
    ("path traversal in NAR", ""),
]


@pytest.mark.parametrize(("kind", "reason"), HOSTILE, ids=[kind for kind, _ in HOSTILE])
def test_hostile_cache_is_refused_and_nothing_registered(tmp_path, cache, kind, reason):
    hostile(cache, kind)
    store = fresh_store(tmp_path)
    checks = kind not in ("wrong NarSize", "path traversal in NAR")
    ok, warnings, _ = substitute(store, cache.options(check_signatures=checks), [cache.app])
    assert not ok
    assert warnings and all(w.startswith(f"warning: substituter {cache.url}: ") for w in warnings)
    assert reason in "\n".join(warnings)
    if kind == "missing reference":  # nothing of app; lib is simply not in the cache
        assert store.all_paths() == []
    else:
        assert cache.app not in store.all_paths()
        for path in store.all_paths():  # only the untouched lib may have come in
            assert path == cache.lib
    assert verify_store(store).ok
    assert not any(e.name.startswith(".tmp") for e in store.physical_dir.iterdir())


def test_untrusted_cache_is_refused_then_the_next_one_used(tmp_path, cache):
    other = tmp_path / "other"
    shutil.copytree(cache.dir, other)
    cache.edit_narinfo(cache.app, "Sig", None)
    store = fresh_store(tmp_path)
    options = cache.options(cache.url, f"file://{other}")
    ok, warnings, substituter = substitute(store, options, [cache.app])
    assert ok
    assert len(warnings) == 1 and "not signed" in warnings[0]
    assert substituter.origins[cache.app] == f"file://{other}"


def test_no_cache_has_it(tmp_path, cache):
    store = fresh_store(tmp_path)
    missing = f"{STORE_DIR}/{'0' * 32}-missing"
    ok, warnings, _ = substitute(store, cache.options(), [missing])
    assert not ok and warnings == []


class Server:
    """tests/cache_server.py serving a cache directory on 127.0.0.1."""

    def __init__(self, root: Path, faults: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER), str(root), json.dumps(faults)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = f"http://127.0.0.1:{self.process.stdout.readline().strip()}"

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def nar_relative(cache: Cache, path: str) -> str:
    return os.path.relpath(cache.nar_file(path), cache.dir)


@pytest.mark.parametrize(
    ("fault", "works", "reason"),
    [
        (None, True, ""),
        ("truncate", True, ""),  # resumed with a Range request
        ("404", False, "not found"),
        ("500", False, "HTTP 500"),
        ("truncate-always", False, "Connection broken"),
        ("wrong-bytes", False, ""),
        ("stall", False, "stalled for 2 s"),
    ],
)
def test_http_cache_with_faults(tmp_path, cache, fault, works, reason):
    faults = {nar_relative(cache, cache.app): fault} if fault else {}
    server = Server(cache.dir, faults)
    try:
        store = fresh_store(tmp_path)
        options = cache.options(server.url, stall_seconds=2)
        ok, warnings, _ = substitute(store, options, [cache.app])
    finally:
        server.stop()
    assert ok is works
    if works:
        assert warnings == [] and store.is_valid(cache.app)
        assert verify_store(store).ok
    else:
        assert len(warnings) == 1 and reason in warnings[0], warnings
        assert not store.is_valid(cache.app)
        assert not any(e.name.startswith(".tmp") for e in store.physical_dir.iterdir())


def test_failed_nar_is_fetched_from_the_next_cache(tmp_path, cache):
    """The first cache serves narinfos but its lib NAR fails: lib comes from the second cache,
    app still from the first, and the run says so in one warning."""
    server = Server(cache.dir, {nar_relative(cache, cache.lib): "500"})
    try:
        store = fresh_store(tmp_path)
        options = cache.options(server.url, cache.url)
        ok, warnings, substituter = substitute(store, options, [cache.app])
    finally:
        server.stop()
    assert ok
    assert substituter.origins == {cache.lib: cache.url, cache.app: server.url}
    assert len(warnings) == 1 and "HTTP 500" in warnings[0] and cache.lib in warnings[0]
    assert verify_store(store).ok
