"""`bootstrap export` on a small real target built from the busybox seed, checked by real Nix.

The store is named /nix/store but lives in a temporary directory, so the exported cache is
one Nix 2.8 can substitute from; Nix always writes into a chroot store of its own here.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from bootstrap.export.binary_cache import cache_info_text
from bootstrap.store import Store

from .conftest import requires_nix, run_cli
from .engine_fixtures import requires_busybox
from .test_cli_build import cli_env, make_stages

pytestmark = [requires_busybox, requires_nix]

NIX_STORE_DIR = "/nix/store"


class Built:
    """The small target, built once: its stages, environment and store."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.stages = make_stages(tmp)
        self.env = {**cli_env(tmp), "BOOTSTRAP_STORE_DIR": NIX_STORE_DIR}
        run_cli("run", "--stages", str(self.stages), "--no-out-link", env=self.env)
        self.store = Store(tmp / "root", NIX_STORE_DIR)

    def export(self, *args, check: bool = True, drvs_and_logs: bool = False):
        """`bootstrap export ARGS`, by default without the .drv files and logs (which
        test_cache_has_drvs_and_logs_nix_reads covers)."""
        extra = () if drvs_and_logs else ("--no-drvs", "--no-logs")
        args = ("export", *map(str, args), *extra, "--stages", str(self.stages))
        return run_cli(*args, env=self.env, check=check)

    def output(self, name: str) -> str:
        return next(p for p in self.store.all_paths() if p.endswith(f"-{name}"))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    return Built(tmp_path_factory.mktemp("export"))


def nix(*args: str, home: Path, stdin: str | None = None) -> str:
    """Run a Nix command with its caches under `home`."""
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache")}
    result = subprocess.run(args, capture_output=True, text=True, env=env, input=stdin)
    assert result.returncode == 0, f"{' '.join(args)}: {result.stderr}"
    return result.stdout


def nix_copy(cache: Path, dest: Path, paths: list[str]) -> None:
    nix(
        "nix",
        "copy",
        "--extra-experimental-features",
        "nix-command",
        "--option",
        "substituters",
        "",
        "--no-check-sigs",
        "--from",
        cache.as_uri(),
        "--to",
        f"local?root={dest}",
        *paths,
        home=dest.parent / f"{dest.name}-home",
    )


def check_nix_store_matches(store: Store, dest: Path, closure: list[str]) -> None:
    """Every path arrived with our NAR hash and references, and Nix verifies its contents."""
    home = dest.parent / f"{dest.name}-home"
    for path in closure:
        info = store.query_info(path)
        query = ("nix-store", "--store", str(dest), "--query")
        assert nix(*query, "--hash", path, home=home).strip() == str(info.nar_hash)
        assert nix(*query, "--references", path, home=home).split() == list(info.references)
        nix("nix-store", "--store", str(dest), "--verify-path", path, home=home)


def cache_files(cache: Path) -> dict[str, str]:
    return {
        str(f.relative_to(cache)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(cache.rglob("*"))
        if f.is_file()
    }


def test_binary_cache_is_accepted_by_nix(built, tmp_path):
    cache = tmp_path / "cache"
    out = built.export("x86_64-linux", "--to", cache).stdout.decode()
    hello, greet = built.output("hello-1.0"), built.output("greet-2.0")
    closure = built.store.closure([hello, greet, built.output("test-seed")])
    assert f"{len(closure)} paths ({len(closure)} written, 0 already present)" in out
    assert (cache / "nix-cache-info").read_text() == cache_info_text(NIX_STORE_DIR)
    assert not list(cache.rglob(".tmp-*"))

    dest = tmp_path / "nix"
    nix_copy(cache, dest, [hello, greet])
    check_nix_store_matches(built.store, dest, closure)
    info = json.loads(
        nix(
            "nix",
            "path-info",
            "--extra-experimental-features",
            "nix-command",
            "--store",
            f"local?root={dest}",
            "--json",
            "--recursive",
            hello,
            home=tmp_path / "nix-home",
        )
    )
    for entry in info:
        ours = built.store.query_info(entry["path"])
        assert entry["deriver"] == ours.deriver and entry.get("ca") == ours.ca


def test_nix_realises_from_the_cache_as_a_substituter(built, tmp_path):
    cache = tmp_path / "cache"
    built.export("x86_64-linux", "--to", cache)
    greet = built.output("greet-2.0")
    dest = tmp_path / "nix"
    realised = nix(
        "nix-store",
        "--store",
        str(dest),
        "--realise",
        greet,
        "--option",
        "substituters",
        cache.as_uri(),
        "--option",
        "require-sigs",
        "false",
        home=tmp_path / "nix-home",
    )
    assert realised.strip() == greet
    assert (dest / greet.lstrip("/")).read_text() == "hello, world\n"


def test_files_are_byte_identical_to_the_cache_nix_writes(built, tmp_path):
    ours = tmp_path / "ours"
    built.export("x86_64-linux", "--to", ours)
    uncompressed = tmp_path / "plain"
    built.export("x86_64-linux", "--to", uncompressed, "--compression", "none")
    theirs = tmp_path / "theirs"
    roots = [built.output(name) for name in ("hello-1.0", "greet-2.0", "test-seed")]
    nix(
        "nix",
        "copy",
        "--extra-experimental-features",
        "nix-command",
        "--option",
        "substituters",
        "",
        "--no-check-sigs",
        "--from",
        uncompressed.as_uri(),
        "--to",
        f"{theirs.as_uri()}?compression=xz",
        *roots,
        home=tmp_path / "nix-home",
    )
    written_by_nix = {
        name: digest
        for name, digest in cache_files(theirs).items()
        if name.endswith((".narinfo", ".nar.xz"))
    }
    assert len(written_by_nix) == 6
    assert written_by_nix == {k: v for k, v in cache_files(ours).items() if k != "nix-cache-info"}


@pytest.mark.parametrize(("compression", "suffix"), [("zstd", ".nar.zst"), ("none", ".nar")])
def test_other_compressions_are_accepted_by_nix(built, tmp_path, compression, suffix):
    cache = tmp_path / "cache"
    hello = built.output("hello-1.0")
    built.export(hello, "--to", cache, "--compression", compression)
    nars = sorted(p.name for p in (cache / "nar").iterdir())
    assert len(nars) == 2 and all(name.endswith(suffix) for name in nars)
    narinfo = (cache / f"{hello.split('/')[-1][:32]}.narinfo").read_text()
    assert f"Compression: {compression}\n" in narinfo
    dest = tmp_path / "nix"
    nix_copy(cache, dest, [hello])
    check_nix_store_matches(built.store, dest, built.store.closure([hello]))


def test_reexport_is_idempotent_and_deterministic(built, tmp_path):
    cache = tmp_path / "cache"
    built.export("x86_64-linux", "--to", cache)
    first = cache_files(cache)
    again = built.export("x86_64-linux", "--to", cache).stdout.decode()
    assert "(0 written, 3 already present)" in again
    assert cache_files(cache) == first

    narinfo = next(cache.glob("*.narinfo"))
    narinfo.unlink()
    repaired = built.export("x86_64-linux", "--to", cache).stdout.decode()
    assert "(1 written, 2 already present)" in repaired
    assert cache_files(cache) == first

    elsewhere = tmp_path / "elsewhere"
    built.export("x86_64-linux", "--to", elsewhere)
    assert cache_files(elsewhere) == first


def test_store_path_target_exports_its_closure(built, tmp_path):
    hello = built.output("hello-1.0")
    physical = built.store.real_path(hello) / "bin" / "hello"
    out = built.export(str(physical), "--to", tmp_path / "cache").stdout.decode()
    assert "2 paths (2 written" in out
    names = sorted(p.name[:32] for p in (tmp_path / "cache").glob("*.narinfo"))
    assert names == sorted(p.split("/")[-1][:32] for p in built.store.closure([hello]))


def test_bad_input_is_a_one_line_error(built, tmp_path):
    missing = f"{NIX_STORE_DIR}/{'a' * 32}-missing"
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    (other_dir / "nix-cache-info").write_text(cache_info_text("/bootstrap/store"))
    for args, message in (
        ((missing,), b"is not a valid path in the store"),
        (("/tmp/not-a-store-path",), b"/tmp/not-a-store-path: not in the store /nix/store"),
        (("aarch64-darwin",), b"unknown target 'aarch64-darwin'; known: x86_64-linux"),
        (("x86_64-linux", "--until", "stage9"), b"unknown stage 'stage9'"),
    ):
        result = built.export(*args, "--to", tmp_path / "cache", check=False)
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert result.stderr.count(b"\n") == 1
        assert not (tmp_path / "cache").exists()
    result = built.export("x86_64-linux", "--to", other_dir, check=False)
    assert b"StoreDir is '/bootstrap/store', expected '/nix/store'" in result.stderr
    assert result.stderr.count(b"\n") == 1


def test_unbuilt_stage_is_an_error(built, tmp_path):
    env = {**built.env, "BOOTSTRAP_STORE": str(tmp_path / "empty")}
    Store(tmp_path / "empty", env.get("BOOTSTRAP_STORE_DIR"))  # export makes no store
    result = run_cli(
        "export",
        "x86_64-linux",
        "--to",
        tmp_path / "c",
        "--stages",
        built.stages,
        env=env,
        check=False,
    )
    assert result.returncode == 1 and b"is not built: run `bootstrap run" in result.stderr


def test_changed_store_contents_are_refused_and_nothing_is_left(tmp_path):
    store = Store(tmp_path / "root", NIX_STORE_DIR)
    src = tmp_path / "src"
    src.mkdir()
    (src / "data").write_text("original\n")
    path = store.add_path(src, "tampered")
    real = store.real_path(path) / "data"
    real.chmod(0o644)
    real.write_text("changed!\n")
    result = run_cli(
        "export",
        path,
        "--to",
        tmp_path / "cache",
        "--store",
        tmp_path / "root",
        "--store-dir",
        NIX_STORE_DIR,
        check=False,
    )
    assert b"no longer match the NAR hash registered" in result.stderr
    assert not list((tmp_path / "cache").rglob("*.nar*"))
    assert not list((tmp_path / "cache").rglob(".tmp-*"))


@pytest.mark.parametrize(
    ("compression", "name"), [("xz", "closure.tar.xz"), ("none", "closure.tar")]
)
def test_tar_round_trips(built, tmp_path, compression, name):
    out = tmp_path / "out"
    built.export("x86_64-linux", "--to", out, "--format", "tar", "--compression", compression)
    archive = out / name
    first = archive.read_bytes()
    built.export("x86_64-linux", "--to", out, "--format", "tar", "--compression", compression)
    assert archive.read_bytes() == first

    unpacked = tmp_path / "unpacked"
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        manifest = json.load(tar.extractfile("closure.json"))
        tar.extractall(unpacked, filter="tar")
    assert all((m.uid, m.gid, m.mtime) == (0, 0, 1) for m in members)
    paths = [entry["path"] for entry in manifest["paths"]]
    assert manifest["storeDir"] == NIX_STORE_DIR and len(paths) == 3
    trees = [unpacked / p.lstrip("/") for p in paths]
    hashes = run_cli("hash", "path", *trees).stdout.decode().split()
    for entry, nix32 in zip(manifest["paths"], hashes, strict=True):
        info = built.store.query_info(entry["path"])
        assert entry["narHash"] == str(info.nar_hash) == f"sha256:{nix32}"
        assert entry["references"] == list(info.references)


def test_tar_unpacked_at_a_prefix_and_loaded_is_valid_in_nix(built, tmp_path):
    built.export("x86_64-linux", "--to", tmp_path, "--format", "tar", "--compression", "zstd")
    archive = tmp_path / "closure.tar.zst"
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    subprocess.run(["tar", "-xf", archive, "-C", prefix, "nix/store"], check=True)
    registration = subprocess.run(
        ["tar", "-xOf", archive, "nix-registration"], check=True, capture_output=True, text=True
    ).stdout
    nix(
        "nix-store", "--store", str(prefix), "--load-db", home=tmp_path / "home", stdin=registration
    )
    roots = [built.output(name) for name in ("hello-1.0", "greet-2.0", "test-seed")]
    check_nix_store_matches(built.store, prefix, built.store.closure(roots))


def test_cache_has_drvs_and_logs_nix_reads(built, tmp_path):
    """By default the cache also holds the derivations and their build logs: real Nix shows
    a derivation and prints a log from the cache alone."""
    cache = tmp_path / "cache"
    out = built.export("x86_64-linux", "--to", cache, drvs_and_logs=True).stdout.decode()
    greet = built.output("greet-2.0")
    drv = built.store.query_info(greet).deriver
    assert drv and (cache / "log" / drv.rsplit("/", 1)[1]).is_file()
    assert ", 3 build logs" in out
    home = tmp_path / "nix-home"
    common = ("--extra-experimental-features", "nix-command", "--store", cache.as_uri())
    log = nix("nix", "log", *common, drv, home=home)
    assert log == log_of(built, drv)
    shown = json.loads(nix("nix", "show-derivation", *common, drv, home=home))
    assert shown[drv]["outputs"]["out"]["path"] == greet


def log_of(built: Built, drv: str) -> str:
    return run_cli("log", drv, env=built.env).stdout.decode()
