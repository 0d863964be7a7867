import hashlib
import os
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bootstrap.errors import BootstrapError
from bootstrap.hashing import Hash
from bootstrap.storepath import (
    fixed_output_path,
    source_path,
    split_store_path,
    text_path,
    validate_name,
)

from .conftest import requires_nix

# Worked examples from the Nix Pills (store dir /nix/store), see shared/guide/store.md.
MYFILE_NAR = "sha256:1qwy7y49hyqd7kdpkyjfclz5fkfqalqapzc4v18lbibkx1yzdzib"  # "mycontent\n"


def test_source_path_worked_example():
    assert (
        source_path(Hash.parse(MYFILE_NAR), "myfile", "/nix/store")
        == "/nix/store/xv2iccirbrvklck36f1g7vldn5v58vck-myfile"
    )


def test_fixed_flat_worked_example():
    h = Hash.parse("f3f3c4763037e059b4d834eaf68595bbc02ba19f6d2a500dce06d124e2cd99bb", "sha256")
    assert (
        fixed_output_path(h, "bar", "/nix/store")
        == "/nix/store/a00d5f71k0vp5a6klkls0mvr1f7sx6ch-bar"
    )


def test_store_dir_changes_the_path():
    h = Hash.parse(MYFILE_NAR)
    assert source_path(h, "myfile", "/bootstrap/store").startswith("/bootstrap/store/")
    assert (
        source_path(h, "myfile", "/bootstrap/store")[-40:]
        != source_path(h, "myfile", "/nix/store")[-40:]
    )


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "sp ace", "x" * 212, "ümlaut"])
def test_invalid_names(name):
    with pytest.raises(BootstrapError):
        validate_name(name)


@pytest.mark.parametrize("name", ["hello-2.12", "a+b_c?d=e", "x" * 211])
def test_valid_names(name):
    assert validate_name(name) == name


def test_split_store_path():
    path = "/nix/store/xv2iccirbrvklck36f1g7vldn5v58vck-myfile/bin/x"
    assert split_store_path(path, "/nix/store") == ("xv2iccirbrvklck36f1g7vldn5v58vck", "myfile")
    with pytest.raises(BootstrapError, match="not in the store"):
        split_store_path(path, "/other/store")
    with pytest.raises(BootstrapError, match="not a store path"):
        split_store_path("/nix/store/short-name", "/nix/store")


def nix_fixed_path(store_dir: str, algo: str, digest_hex: str, name: str, recursive: bool) -> str:
    args = ["nix-store", "--store", "dummy://", "--print-fixed-path"]
    args += ["--recursive"] if recursive else []
    env = {**os.environ, "NIX_STORE_DIR": store_dir}
    out = subprocess.run(
        [*args, algo, digest_hex, name], capture_output=True, text=True, check=True, env=env
    )
    return out.stdout.strip()


@requires_nix
@settings(max_examples=30, deadline=None)
@given(
    data=st.binary(max_size=64),
    algo=st.sampled_from(["sha1", "sha256", "sha512"]),
    recursive=st.booleans(),
    name=st.from_regex(r"[A-Za-z0-9+_?=][A-Za-z0-9+\-._?=]{0,30}", fullmatch=True),
    store_dir=st.sampled_from(["/nix/store", "/bootstrap/store"]),
)
def test_fixed_paths_match_nix(data, algo, recursive, name, store_dir):
    digest = hashlib.new(algo, data).hexdigest()
    ours = fixed_output_path(Hash.parse(digest, algo), name, store_dir, recursive)
    assert ours == nix_fixed_path(store_dir, algo, digest, name, recursive)


@requires_nix
def test_text_path_matches_nix_to_file(tmp_path):
    expr = tmp_path / "f.nix"
    expr.write_text('builtins.toFile "note.txt" "hello\\n"')
    out = (
        subprocess.run(
            ["nix-instantiate", "--store", "dummy://", "--readonly-mode", "--eval", expr],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .strip('"')
    )
    assert text_path(b"hello\n", "note.txt", "/nix/store") == out
