"""`bootstrap copy --from` and `bootstrap import` as a user runs them; hostile archives refused."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from bootstrap.export.binary_cache import export_binary_cache
from bootstrap.store import Store
from bootstrap.store.verify import verify_store

from .conftest import run_cli
from .engine_fixtures import requires_busybox
from .test_cli_build import cli_env, make_stages

pytestmark = requires_busybox


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """The small target built in store A, exported as a signed cache and as tar archives."""
    tmp = tmp_path_factory.mktemp("copy")
    stages = make_stages(tmp)
    env = cli_env(tmp)
    run_cli("run", "--stages", stages, "--no-out-link", env=env)
    run_cli("key", "generate", "--name", "k-1", "--secret", tmp / "sk", "--public", tmp / "pk",
            env=env)  # fmt: skip
    run_cli("export", "--stages", stages, "--to", tmp / "cache", "--sign-key", tmp / "sk", env=env)
    for compression in ("xz", "zstd", "none"):
        run_cli("export", "--stages", stages, "--format", "tar", "--compression", compression,
                "--to", tmp / f"tar-{compression}", env=env)  # fmt: skip
    return {"tmp": tmp, "stages": stages, "env": env, "store": Store(tmp / "root")}


def fresh(tmp_path: Path) -> tuple[dict, Store]:
    env = {**cli_env(tmp_path), "BOOTSTRAP_CONFIG": str(tmp_path / "none.toml")}
    return env, Store(tmp_path / "root")


def signatures_off(store: Store) -> dict:
    return {
        p: (i.nar_hash, i.references) for p in store.all_paths() if not p.endswith(".drv")
        for i in [store.query_info(p)]
    }  # fmt: skip


@pytest.mark.parametrize("compression", ["xz", "zstd", "none"])
def test_import_round_trip(tmp_path, built, compression):
    env, store = fresh(tmp_path)
    archive = next((built["tmp"] / f"tar-{compression}").glob("closure.tar*"))
    out = run_cli("import", archive, env=env).stdout.decode()
    plain = archive if compression != "zstd" else _unzstd(archive, tmp_path)
    with tarfile.open(plain) as tar:
        closure = json.loads(tar.extractfile("closure.json").read())["paths"]
    assert out.strip() == f"{archive}: {len(closure)} paths, {len(closure)} added"
    assert verify_store(store).ok
    for entry in closure:
        assert str(store.query_info(entry["path"]).nar_hash) == entry["narHash"]
    again = run_cli("import", archive, env=env).stdout.decode()
    assert again.strip().endswith(", 0 added")


def _unzstd(archive: Path, tmp: Path) -> Path:
    import zstandard

    plain = tmp / "plain.tar"
    with open(archive, "rb") as src, open(plain, "wb") as dst:
        zstandard.ZstdDecompressor().copy_stream(src, dst)
    return plain


def _rewrite(source: Path, target: Path, change) -> None:
    """Copy the plain tar `source` member by member through `change(member, data)`, which
    returns a list of (member, data) to write instead."""
    with tarfile.open(source) as src, tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as dst:
        for member in src:
            data = src.extractfile(member).read() if member.isfile() else None
            for new, new_data in change(member, data):
                dst.addfile(new, io.BytesIO(new_data) if new_data is not None else None)


def _flip_a_byte(member, data):
    if member.isfile() and member.name.endswith("/bin/hello"):
        data = data.replace(b"hello", b"HELLO")
    return [(member, data)]


def _dotdot_member(member, data):
    out = [(member, data)]
    if member.name == "closure.json":
        evil = tarfile.TarInfo("bootstrap/store/../../../tmp/evil")
        evil.size = 3
        out.append((evil, b"bad"))
    return out


def _file_under_link(member, data):
    out = [(member, data)]
    if member.isdir() and member.name.endswith("-hello-1.0"):
        link = tarfile.TarInfo(member.name + "/zlink")
        link.type, link.linkname = tarfile.SYMTYPE, "/tmp"
        below = tarfile.TarInfo(member.name + "/zlink/evil")
        below.size = 3
        out += [(link, None), (below, b"bad")]
    return out


def _outside_closure(member, data):
    out = [(member, data)]
    if member.name == "closure.json":
        stray = tarfile.TarInfo("bootstrap/store/" + "0" * 32 + "-stray")
        stray.size = 1
        out.append((stray, b"x"))
    return out


def _other_store_dir(member, data):
    if member.name == "closure.json":
        data = data.replace(b'"storeDir": "/bootstrap/store"', b'"storeDir": "/nix/store"')
        member.size = len(data)
    return [(member, data)]


def _missing_reference(member, data):
    """The seed, which hello refers to, left out of the archive and its closure.json."""
    if member.name == "closure.json":
        manifest = json.loads(data)
        manifest["paths"] = [p for p in manifest["paths"] if not p["path"].endswith("-test-seed")]
        data = json.dumps(manifest).encode()
        member.size = len(data)
    elif "-test-seed" in member.name:
        return []
    return [(member, data)]


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (_flip_a_byte, "does not match closure.json"),
        (_dotdot_member, "is not inside /bootstrap/store"),
        (_file_under_link, "comes before its directory (or under a link)"),
        (_outside_closure, "is outside the closure"),
        (_other_store_dir, "its store dir is '/nix/store'"),
        (_missing_reference, "-test-seed is neither in the archive nor in the store"),
    ],
)
def test_hostile_archive_is_refused(tmp_path, built, change, complaint):
    env, store = fresh(tmp_path)
    evil = tmp_path / "evil.tar"
    _rewrite(built["tmp"] / "tar-none" / "closure.tar", evil, change)
    result = run_cli("import", evil, env=env, check=False)
    stderr = result.stderr.decode()
    assert result.returncode == 1
    assert stderr.startswith(f"bootstrap: error: {evil}: ") and stderr.count("\n") == 1, stderr
    assert complaint in stderr
    assert store.all_paths() == []
    assert verify_store(store).ok
    assert not any(e.name.startswith(".tmp") for e in store.physical_dir.iterdir())
    assert not Path("/tmp/evil").exists()


def test_copy_from_cache_by_path_and_by_target(tmp_path, built):
    cache = f"file://{built['tmp'] / 'cache'}"
    key = (built["tmp"] / "pk").read_text().strip()
    greet = next(p for p in built["store"].all_paths() if p.endswith("-greet-2.0"))
    env, store = fresh(tmp_path / "by-path")
    out = run_cli("copy", "--from", cache, "--trusted-public-keys", key, greet, env=env)
    assert out.stdout.decode().startswith(f"copied 1 paths from {cache}; 1 of 1 wanted")
    assert store.all_paths() == [greet]

    env, store = fresh(tmp_path / "by-target")
    out = run_cli("copy", "--from", cache, "--trusted-public-keys", key, "x86_64-linux",
                  "--stages", built["stages"], env=env)  # fmt: skip
    assert "3 of 3 wanted paths are valid" in out.stdout.decode()
    assert verify_store(store).ok
    shown = run_cli("show", "--stages", built["stages"], env=env).stdout.decode()
    assert "greet-2.0" in shown and " substituted " in shown

    env, store = fresh(tmp_path / "untrusted")
    refused = run_cli("copy", "--from", cache, greet, env=env, check=False)
    assert refused.returncode == 1
    assert "the narinfo" not in refused.stderr.decode() or "signed" in refused.stderr.decode()
    assert "bootstrap: error: 1 paths could not be copied" in refused.stderr.decode()
    assert store.all_paths() == []


def test_audit_challenge(tmp_path, built):
    """A cache built from the same recipes agrees; one whose greet differs is reported."""
    env = built["env"]
    store = built["store"]
    greet = next(p for p in store.all_paths() if p.endswith("-greet-2.0"))
    same = f"file://{built['tmp'] / 'cache'}"
    agree = run_cli("audit", "challenge", "--stages", built["stages"], "--substituters", same,
                    env=env)  # fmt: skip
    assert (
        agree.stdout.decode()
        .strip()
        .endswith(f"{len(store.closure(stage_roots(store)))} identical, 0 differing, 0 unavailable")
    ), agree.stdout

    other = Store(tmp_path / "other")  # a second builder whose greet came out otherwise
    with other.lock(greet), other.temp_dir("out") as tmp:
        tmp.write_text("hello, world\nnot the same\n")
        other.register_output(tmp, greet, [], scan=False)
    export_binary_cache(other, [greet], tmp_path / "other-cache", "xz")
    differ = f"file://{tmp_path / 'other-cache'}"
    result = run_cli("audit", "challenge", greet, "--substituters", differ, "--substituters",
                     same, "--diffoscope", tmp_path / "reports", "--json", env=env,
                     check=False)  # fmt: skip
    assert result.returncode == 1
    verdicts = {(v["substituter"], v["status"]) for v in json.loads(result.stdout)}
    assert verdicts == {(differ, "differs"), (same, "identical")}
    (report,) = (tmp_path / "reports").rglob("*.txt")
    assert "not the same" in report.read_text()


def stage_roots(store: Store) -> list[str]:
    return [p for p in store.all_paths() if p.endswith(("-greet-2.0", "-hello-1.0", "-test-seed"))]
