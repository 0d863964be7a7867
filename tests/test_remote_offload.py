"""Builds offloaded to real Nix (`nix-store --serve --write`) over a real sshd on 127.0.0.1:
one derivation end to end, and the faults (a failing build, a dropped connection, a lying
remote)."""

from __future__ import annotations

import pytest

from bootstrap.build import BuildOptions, log_path
from bootstrap.remote.offload import build_remotely
from bootstrap.store import Store

from .test_remote_support import busybox_path, requires_remote, shell_drv, start_remote

pytestmark = requires_remote

STORE_DIRS = ["/nix/store", "/bootstrap/store"]


@pytest.fixture(params=STORE_DIRS)
def remote(request, tmp_path_factory):
    remote = start_remote(tmp_path_factory.mktemp("remote"), request.param)
    yield remote
    remote.stop()


@pytest.fixture
def ours(tmp_path, remote) -> Store:
    return Store(tmp_path / "ours", remote.store_dir)


def test_a_derivation_builds_on_the_remote_and_its_output_is_ours(tmp_path, remote, ours):
    shell = busybox_path(ours, tmp_path)
    script = (
        'echo "building on the remote" >&2; mkdir $out; echo hi > $out/greeting; ln -s '
        + shell
        + "/bin/sh $out/sh"
    )
    drv_path, drv = shell_drv(ours, "hello", script, shell)
    lines: list[str] = []
    outcome = build_remotely(ours, drv_path, drv, remote.machine(), BuildOptions(), lines.append)
    assert outcome.built
    out = drv.outputs["out"].path
    info = ours.query_info(out)
    assert info.references == (shell,)
    assert info.deriver == drv_path
    assert (ours.real_path(out) / "greeting").read_text() == "hi\n"
    nix_hash = remote.nix_store("--query", "--hash", out).stdout.strip()
    assert nix_hash == str(info.nar_hash)
    assert "building on the remote" in log_path(ours, drv_path).read_text()
    assert "building on the remote" in lines
