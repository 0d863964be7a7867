"""Signed binary caches between bootstrap and real Nix 2.8 (Debian's nix-bin), both ways and for
both logical store dirs. Nix always works in chroot stores of its own under tmp_path."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bootstrap.export.binary_cache import export_binary_cache
from bootstrap.hashing import nix32_encode
from bootstrap.signing import PublicKey, SecretKey
from bootstrap.store import Store
from bootstrap.substitute import SubstituteOptions, Substituter

from .conftest import requires_nix

pytestmark = requires_nix

NIX = ["nix", "--extra-experimental-features", "nix-command"]
NO_NET = ["--option", "substituters", "", "--option", "build-users-group", ""]
STORE_DIRS = ["/nix/store", "/bootstrap/store"]


def nix(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([*NIX, *args], capture_output=True, text=True, check=check)


def nix_store_uri(root: Path, store_dir: str) -> str:
    return f"local?root={root}&store={store_dir}"


def cache_uri(directory: Path, store_dir: str) -> str:
    return f"file://{directory}?store={store_dir}"


def built_path(store: Store, name: str, text: str) -> str:
    """An input-addressed path (no CA), as a build output is: Nix needs a signature for it."""
    path = f"{store.store_dir}/{nix32_encode(os.urandom(20))}-{name}"
    with store.lock(path), store.temp_dir("out") as tmp:
        (tmp / "bin").mkdir(parents=True)
        (tmp / "bin" / name).write_text(text)
        store.register_output(tmp, path, [], scan=False)
    return path


@pytest.mark.parametrize("store_dir", STORE_DIRS)
def test_nix_accepts_our_signed_cache_and_refuses_other_keys(tmp_path, store_dir):
    ours = Store(tmp_path / "ours", store_dir)
    path = built_path(ours, "hello", "#!/bin/sh\necho hello\n")
    key = SecretKey.generate("bootstrap-test-1")
    export_binary_cache(ours, [path], tmp_path / "cache", "xz", key)
    cache = cache_uri(tmp_path / "cache", store_dir)

    def copy(trusted: PublicKey, into: str) -> subprocess.CompletedProcess:
        target = nix_store_uri(tmp_path / into, store_dir)
        return nix(
            "copy", *NO_NET, "--option", "trusted-public-keys", str(trusted),
            "--from", cache, "--to", target, path, check=False,
        )  # fmt: skip

    accepted = copy(key.public_key(), "nix-a")
    assert accepted.returncode == 0, accepted.stderr
    info = nix("path-info", "--json", "--store", nix_store_uri(tmp_path / "nix-a", store_dir), path)
    assert str(ours.query_info(path).nar_hash.sri) in info.stdout
    refused = copy(SecretKey.generate("bootstrap-test-1").public_key(), "nix-b")
    assert refused.returncode != 0
    assert "lacks a valid signature" in refused.stderr


@pytest.mark.parametrize("store_dir", STORE_DIRS)
@pytest.mark.parametrize("compression", ["xz", "zstd", "none"])
def test_we_substitute_from_a_cache_nix_wrote_and_signed(tmp_path, store_dir, compression):
    tree = tmp_path / "tree"
    (tree / "share").mkdir(parents=True)
    (tree / "share" / "data").write_bytes(os.urandom(50_000))
    (tree / "run").write_text("#!/bin/sh\n")
    (tree / "run").chmod(0o755)
    os.symlink("share/data", tree / "link")
    nix_root = nix_store_uri(tmp_path / "nix", store_dir)
    (tmp_path / "sk").write_text(nix("key", "generate-secret", "--key-name", "nix-test-1").stdout)
    public = PublicKey.parse(
        subprocess.run(
            [*NIX, "key", "convert-secret-to-public"],
            input=(tmp_path / "sk").read_text(), capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    path = subprocess.run(
        ["nix-store", "--store", nix_root, *NO_NET, "--add", str(tree)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    nix("store", "sign", "--store", nix_root, *NO_NET, "--key-file", str(tmp_path / "sk"), path)
    cache = tmp_path / "cache"
    nix(
        "copy", *NO_NET, "--from", nix_root,
        "--to", f"{cache_uri(cache, store_dir)}&compression={compression}", path,
    )  # fmt: skip

    ours = Store(tmp_path / "ours", store_dir)
    warnings: list[str] = []
    options = SubstituteOptions((f"file://{cache}",), {public.name: public})
    assert Substituter(ours, options, warn=warnings.append).substitute([path]), warnings
    info = ours.query_info(path)
    nix_info = nix("path-info", "--json", "--store", nix_root, path).stdout
    assert info.nar_hash.sri in nix_info
    assert info.signatures[0] in nix_info
    untrusted = SubstituteOptions((f"file://{cache}",), {})
    again = Store(tmp_path / "again", store_dir)
    assert not Substituter(again, untrusted).substitute([path])
