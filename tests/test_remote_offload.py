"""Builds offloaded to real Nix (`nix-store --serve --write`) over a real sshd on 127.0.0.1:
one derivation end to end, and the faults (a failing build, a dropped connection, a lying
remote)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from bootstrap.build import BuildError, BuildOptions, log_path
from bootstrap.nar import nar_hash
from bootstrap.remote.offload import build_remotely
from bootstrap.remote.ssh import RemoteUnavailable, serve_session
from bootstrap.store import Store

from .test_remote_support import (
    busybox_path,
    free_port,
    requires_remote,
    shell_drv,
    start_remote,
)

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


def test_a_failed_remote_build_shows_its_log_and_registers_nothing(tmp_path, remote, ours):
    shell = busybox_path(ours, tmp_path)
    drv_path, drv = shell_drv(ours, "broken", "echo 'compiler said: no' >&2; exit 3", shell)
    with pytest.raises(BuildError) as failure:
        build_remotely(ours, drv_path, drv, remote.machine(), BuildOptions())
    assert "the build on ssh://" in str(failure.value)
    assert "compiler said: no" in str(failure.value)
    assert "compiler said: no" in log_path(ours, drv_path).read_text()
    assert not ours.is_valid(drv.outputs["out"].path)


def test_a_remote_that_is_down_is_unavailable(tmp_path, remote, ours):
    shell = busybox_path(ours, tmp_path)
    drv_path, drv = shell_drv(ours, "nowhere", "mkdir $out", shell)
    with pytest.raises(RemoteUnavailable):
        build_remotely(ours, drv_path, drv, remote.machine(port=free_port()), BuildOptions())


def _tamper(remote, ours, tmp_path, change):
    """Build once so the remote holds the output, then change it there (as bit rot or a
    dishonest builder would) and ask again: Nix answers AlreadyValid with the bad bytes."""
    shell = busybox_path(ours, tmp_path)
    script = f"mkdir $out; echo fine > $out/data; echo {shell} > $out/uses"
    drv_path, drv = shell_drv(ours, "tampered", script, shell)
    build_remotely(ours, drv_path, drv, remote.machine(), BuildOptions())
    out = drv.outputs["out"].path
    ours.unregister_and_delete([out])
    change(remote.real_path(out))
    with pytest.raises(BuildError) as failure:
        build_remotely(ours, drv_path, drv, remote.machine(), BuildOptions())
    assert not ours.is_valid(out)
    assert not ours.real_path(out).exists()
    return str(failure.value)


def test_an_output_whose_nar_hash_does_not_match_is_rejected(tmp_path, remote, ours):
    def flip(tree):
        (tree / "data").chmod(0o644)
        (tree / "data").write_text("FINE\n")

    assert "NAR hash" in _tamper(remote, ours, tmp_path, flip)


def test_an_output_whose_references_do_not_match_is_rejected(tmp_path, remote, ours):
    """The remote holds the output with the right bytes but claims no references (real Nix
    takes what AddToStoreNar declares): our scan finds the shell, so it is rejected."""
    shell = busybox_path(ours, tmp_path)
    drv_path, drv = shell_drv(ours, "liar", f"mkdir $out; echo {shell} > $out/uses", shell)
    out = drv.outputs["out"].path
    tree = tmp_path / "liar"
    tree.mkdir()
    (tree / "uses").write_text(f"{shell}\n")
    digest, size = nar_hash(tree)
    with serve_session(remote.machine(), tmp_path / "log") as connection:
        connection.add_to_store_nar(out, "", digest, [], size, "", tree)
    with pytest.raises(BuildError) as failure:
        build_remotely(ours, drv_path, drv, remote.machine(), BuildOptions())
    assert "differ from those the remote declared" in str(failure.value)
    assert not ours.is_valid(out)


def test_an_output_our_fix_up_would_change_is_rejected(tmp_path, remote, ours):
    """Real Nix builds it fine, but its script's `#!/bin/sh` is not final (our fix-up would
    point it at the builder's shell): rejected, with the file and the change, none of it kept."""
    shell = busybox_path(ours, tmp_path)
    script = (
        "mkdir -p $out/bin; printf '#!/bin/sh\\necho hi\\n' > $out/bin/hi; chmod +x $out/bin/hi"
    )
    drv_path, drv = shell_drv(ours, "not-final", script, shell, SHELL=f"{shell}/bin/sh")
    with pytest.raises(BuildError) as failure:
        build_remotely(ours, drv_path, drv, remote.machine(), BuildOptions())
    message, out = str(failure.value), drv.outputs["out"].path
    assert (
        f"our fix-up would change it ({out}/bin/hi: shebang #!/bin/sh -> #!{shell}/bin/sh)"
        in message
    )
    assert "recipe must make its outputs final" in message and "\n" not in message
    assert not ours.is_valid(drv.outputs["out"].path)


def test_ssh_killed_mid_build_leaves_nothing_half_registered(tmp_path, remote, ours):
    shell = busybox_path(ours, tmp_path)
    script = "echo started >&2; sleep 30; mkdir $out"
    drv_path, drv = shell_drv(ours, "cut-off", script, shell)

    def kill_ssh(line: str) -> None:
        if line == "started":
            for pid in _ssh_children(remote.port):
                os.killpg(pid, signal.SIGKILL)

    with pytest.raises(BuildError) as failure:
        build_remotely(ours, drv_path, drv, remote.machine(), BuildOptions(), kill_ssh)
    assert "nothing registered" in str(failure.value)
    out = drv.outputs["out"].path
    assert not ours.is_valid(out) and not ours.real_path(out).exists()
    assert not [p for p in ours.physical_dir.iterdir() if p.name.startswith(".tmp-")]
    assert remote.nix_store("--check-validity", out, check=False).returncode != 0
    assert remote.nix_store("--verify", "--check-contents", check=False).returncode == 0


def _ssh_children(port: int) -> list[int]:
    pids = []
    for task in Path("/proc/self/task").iterdir():
        for pid in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if cmdline[0] == b"ssh" and str(port).encode() in cmdline:
                pids.append(int(pid))
    return pids
