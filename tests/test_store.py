import hashlib
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from bootstrap.build import BuildOptions
from bootstrap.errors import BootstrapError
from bootstrap.hashing import Hash, hash_bytes
from bootstrap.nar import nar_hash, serialise
from bootstrap.repair import repair_paths
from bootstrap.store import Store
from bootstrap.store.gc import add_root, collect_garbage
from bootstrap.store.verify import verify_store

from .conftest import requires_nix


def make_tree(root: Path, files: int = 3, size: int = 10) -> Path:
    root.mkdir(parents=True)
    (root / "bin").mkdir()
    for i in range(files):
        (root / f"f{i}").write_bytes(bytes([i % 256]) * size)
    (root / "bin" / "tool").write_text("#!/bin/sh\necho hi\n")
    (root / "bin" / "tool").chmod(0o755)
    os.symlink("bin/tool", root / "link")
    return root


def test_add_path_is_canonical_and_valid(store, tmp_path):
    src = make_tree(tmp_path / "src")
    os.chmod(src / "f0", 0o4755)
    path = store.add_path(src, "pkg")
    real = store.real_path(path)
    assert store.is_valid(path)
    assert (real / "f0").stat().st_mode & 0o7777 == 0o555
    assert (real / "f1").stat().st_mode & 0o7777 == 0o444
    assert real.stat().st_mode & 0o7777 == 0o555
    assert all(p.lstat().st_mtime == 1 for p in [real, *real.rglob("*")])
    info = store.query_info(path)
    assert (info.nar_hash, info.nar_size) == nar_hash(real)
    assert store.add_path(src, "pkg") == path


@requires_nix
def test_added_paths_equal_nix_chroot_store(tmp_path):
    src = make_tree(tmp_path / "src")
    nix_root = tmp_path / "nix"
    out = subprocess.run(
        ["nix-store", "--store", nix_root, "--add", src], capture_output=True, text=True, check=True
    ).stdout.strip()
    ours = Store(tmp_path / "ours", "/nix/store").add_path(src)
    assert ours == out
    nix_hash = subprocess.run(
        ["nix-store", "--store", nix_root, "--query", "--hash", out],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert str(Store(tmp_path / "ours", "/nix/store").query_info(ours).nar_hash) == nix_hash


def test_add_fixed_checks_the_hash_and_keeps_nothing_on_mismatch(store, tmp_path):
    src = tmp_path / "tarball"
    src.write_bytes(b"source code")
    good = hash_bytes("sha256", b"source code")
    path = store.add_fixed(src, good, "tarball")
    assert store.query_info(path).ca == f"fixed:{good}"
    before = sorted(os.listdir(store.physical_dir))
    with pytest.raises(BootstrapError, match="hash mismatch") as err:
        store.add_fixed(src, hash_bytes("sha256", b"other"), "other")
    assert "\n" not in str(err.value)
    assert sorted(os.listdir(store.physical_dir)) == before


def test_add_fixed_recursive_sha512(store, tmp_path):
    src = make_tree(tmp_path / "src")
    h = hashlib.sha512()
    serialise(src, h.update)
    path = store.add_fixed(src, Hash("sha512", h.digest()), "src", recursive=True)
    assert store.is_valid(path)


def test_register_output_scans_references(store, tmp_path):
    dep_src = tmp_path / "dep"
    dep_src.write_text("library")
    dep = store.add_path(dep_src)
    unused = store.add_text("unused.txt", b"x")
    out_path = f"{store.store_dir}/{'a' * 32}-out"
    with store.temp_dir("build") as tmp:
        tmp.mkdir()
        (tmp / "script").write_text(f"#!{dep}/bin/sh\nexec {out_path}/bin/x\n")
        with store.lock(out_path):
            info = store.register_output(tmp, out_path, references=[dep, unused])
    assert info.references == tuple(sorted([dep, out_path]))
    assert store.closure([out_path]) == sorted([dep, out_path])
    assert store.referrers(dep) == [out_path]


def test_references_across_chunk_boundaries(store, tmp_path):
    dep = store.add_text("dep", b"d")
    hash_part = dep.split("/")[-1][:32]
    out_path = f"{store.store_dir}/{'b' * 32}-out"
    with store.temp_dir("build") as tmp:
        tmp.mkdir()
        # A hash inside a longer run of nix32 characters, straddling the 1 MiB read size.
        (tmp / "big").write_bytes(b"\0" * ((1 << 20) - 20) + b"abc" + hash_part.encode() + b"\0")
        with store.lock(out_path):
            info = store.register_output(tmp, out_path, references=[dep])
    assert info.references == (dep,)


def test_register_refuses_invalid_reference(store, tmp_path):
    missing = f"{store.store_dir}/{'c' * 32}-missing"
    src = tmp_path / "x"
    src.write_text(missing)
    with pytest.raises(BootstrapError, match="is not valid"):
        store.add_path(src, references=[missing])


def test_gc_keeps_roots_and_their_closure(store, tmp_path):
    (tmp_path / "a").write_text("a")
    a = store.add_path(tmp_path / "a")
    (tmp_path / "b").write_text(a)
    b = store.add_path(tmp_path / "b", references=[a])
    (tmp_path / "c").write_text("c")
    c = store.add_path(tmp_path / "c")
    result_link = tmp_path / "result"
    add_root(store, b, link=result_link)
    (store.physical_dir / "leftover").mkdir()

    dry = collect_garbage(store, dry_run=True)
    assert dry.dead == [c] and store.is_valid(c)
    done = collect_garbage(store)
    assert done.dead == [c] and not store.is_valid(c) and not store.real_path(c).exists()
    assert not (store.physical_dir / "leftover").exists()
    assert store.is_valid(a) and store.is_valid(b)

    result_link.unlink()
    assert sorted(collect_garbage(store).dead) == sorted([a, b])
    assert store.all_paths() == []


def test_verify_finds_and_repairs_corruption(store, tmp_path):
    (tmp_path / "a").write_text("a")
    a = store.add_path(tmp_path / "a")
    (tmp_path / "b").write_text(a)
    b = store.add_path(tmp_path / "b", references=[a])
    (tmp_path / "c").write_text("c")
    c = store.add_path(tmp_path / "c")
    real = store.real_path(a)
    real.chmod(0o644)
    real.write_text("tampered")
    result = verify_store(store)
    assert not result.ok and [p for p, _, _ in result.corrupt] == [a]
    # an added path has no derivation to rebuild it from: it goes, and so does its referrer
    repaired = repair_paths(store, result.bad, BuildOptions())
    assert sorted(repaired.removed) == sorted([a, b]) and not repaired.restored
    assert store.all_paths() == [c] and verify_store(store).ok


def test_store_dir_mismatch_is_a_clear_error(tmp_path):
    Store(tmp_path / "root", "/bootstrap/store")
    with pytest.raises(BootstrapError, match="made for store dir '/bootstrap/store'"):
        Store(tmp_path / "root", "/nix/store")


def _add_in_process(args):
    root, src = args
    return Store(Path(root), "/bootstrap/store").add_path(Path(src), "shared")


def test_concurrent_adds_of_one_path(tmp_path):
    src = make_tree(tmp_path / "src", files=200, size=5000)
    with ProcessPoolExecutor(4) as pool:
        paths = set(pool.map(_add_in_process, [(tmp_path / "root", src)] * 8))
    assert len(paths) == 1
    store = Store(tmp_path / "root", "/bootstrap/store")
    assert store.all_paths() == list(paths) and verify_store(store).ok


ADD_SCRIPT = """
import sys
from pathlib import Path
from bootstrap.store import Store
print(Store(Path(sys.argv[1]), "/bootstrap/store").add_path(Path(sys.argv[2]), "big"), flush=True)
"""


def test_killed_add_leaves_a_valid_store(tmp_path):
    """SIGKILL an add at several moments after it has begun writing (so, whatever the machine's
    load, kills land while the add is in progress); the store must verify every time, and the
    add must then succeed."""
    src = make_tree(tmp_path / "src", files=1500, size=20000)
    root = tmp_path / "root"
    physical = Store(root, "/bootstrap/store").physical_dir
    killed_midway = 0
    for delay in (0.0, 0.01, 0.03):
        proc = subprocess.Popen(
            [sys.executable, "-c", ADD_SCRIPT, root, src],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).parent.parent,
        )
        while proc.poll() is None and not any(
            e.name.startswith(".tmp-") for e in physical.iterdir()
        ):
            time.sleep(0.001)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        killed_midway += proc.wait() == -signal.SIGKILL
        assert verify_store(Store(root, "/bootstrap/store")).ok
    assert killed_midway, "every add finished before it could be killed"
    store = Store(root, "/bootstrap/store")
    path = store.add_path(src, "big")
    assert store.is_valid(path) and verify_store(store).ok
    collect_garbage(store, extra_roots=[path])
    assert [e.name for e in store.physical_dir.iterdir()] == [path.rsplit("/", 1)[1]]
