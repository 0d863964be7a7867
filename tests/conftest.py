"""Shared fixtures: real stores in temporary directories, and the Nix oracle tools."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bootstrap.store import Store

NIX_TOOLS = ("nix-hash", "nix-store", "nix-instantiate")


def nix_available() -> bool:
    return all(shutil.which(tool) for tool in NIX_TOOLS)


requires_nix = pytest.mark.skipif(not nix_available(), reason="nix-bin is not installed")

# Module fixtures that build the real seed or real chain stages from pinned sources (minutes
# each, downloading what the cache lacks from Debian's mirror): every test that uses one is in
# the integration tier and needs the network. `pytest -m "not integration and not network"` is
# the fast tier of unit and oracle tests.
CHAIN_FIXTURES = frozenset(
    {"built", "built2", "built3", "built5", "built6", "built7", "seed_archive", "seed_dir",
     "seed_store"}
)  # fmt: skip


# the long real builds, outside the default suite, belong to the integration tier too
LONG_BUILD_MARKERS = ("slow", "toolchain", "clang", "nix_reproduce")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if CHAIN_FIXTURES.intersection(item.fixturenames):
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.network)
        elif any(item.get_closest_marker(name) for name in LONG_BUILD_MARKERS):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "root", "/bootstrap/store")


@pytest.fixture
def nix_store(tmp_path: Path) -> Store:
    return Store(tmp_path / "nixroot", "/nix/store")


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    """A real Nix machine on 127.0.0.1: sshd in front of `nix-store --serve --write` on a
    chroot store with logical dir /bootstrap/store (tests/test_remote_support.py)."""
    from tests.test_remote_support import start_remote

    remote = start_remote(tmp_path_factory.mktemp("remote"), "/bootstrap/store")
    yield remote
    remote.stop()


@pytest.fixture
def ours(tmp_path: Path) -> Store:
    """Our store, at the same logical dir as `remote`'s."""
    return Store(tmp_path / "ours", "/bootstrap/store")


def run_cli(*args: str, stdin: bytes | None = None, check: bool = True, env=None):
    """Run `python -m bootstrap ARGS` as a user would; returns the CompletedProcess."""
    result = subprocess.run(
        [sys.executable, "-m", "bootstrap", *map(str, args)],
        input=stdin,
        capture_output=True,
        env=env,
    )
    if check and result.returncode != 0:
        command = " ".join(map(str, args))
        raise AssertionError(
            f"bootstrap {command} failed ({result.returncode}): {result.stderr.decode()}"
        )
    return result
