"""`bootstrap copy --to ssh://...`, as a user runs it, into real Nix (`nix-store --serve
--write` behind a real sshd on 127.0.0.1): the closure arrives with our NAR hashes and
signatures, a second copy sends nothing, bad URIs or a machine that is down are one line, and
ssh killed in the middle of a NAR leaves no half path on the remote."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bootstrap.build import BuildOptions, realise
from bootstrap.store import Store

from .conftest import run_cli
from .test_remote_support import (
    NIX_CONFIG,
    busybox_path,
    free_port,
    requires_remote,
    shell_drv,
)

pytestmark = requires_remote


def bootstrap(store: Store, *args: str, check: bool = True):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BOOTSTRAP_")}
    environment["BOOTSTRAP_CONFIG"] = str(store.root / "none.toml")
    store_args = ("--store", str(store.root), "--store-dir", store.store_dir)
    return run_cli(*args, *store_args, check=check, env=environment)


def built_path_with_a_reference(store: Store, tmp_path, name: str) -> tuple[str, str]:
    """A path built here whose closure also holds the busybox it links to."""
    shell = busybox_path(store, tmp_path)
    drv_path, drv = shell_drv(store, name, f"mkdir $out; ln -s {shell}/bin/sh $out/sh", shell)
    realise(store, drv_path, drv, BuildOptions())
    return drv.outputs["out"].path, shell


def remote_path_info(remote, path: str) -> dict:
    store = f"local?root={remote.store_root}&store={remote.store_dir}"
    result = subprocess.run(
        ["nix", "--extra-experimental-features", "nix-command", "path-info", "--json",
         "--store", store, path],
        capture_output=True, text=True, check=True, env=dict(os.environ, NIX_CONFIG=NIX_CONFIG),
    )  # fmt: skip
    return json.loads(result.stdout)[0]


def test_copy_sends_the_closure_with_our_hashes_then_nothing(tmp_path, remote, ours):
    out, shell = built_path_with_a_reference(ours, tmp_path, "sent")
    first = bootstrap(ours, "copy", "--to", remote.store_uri(), out).stdout.decode()
    assert first.startswith("copied 2 paths (") and first.endswith("; 0 were there already\n")
    requisites = remote.nix_store("--query", "--requisites", out).stdout.split()
    assert sorted(requisites) == sorted([out, shell])
    for path in (out, shell):
        remote_hash = remote.nix_store("--query", "--hash", path).stdout.strip()
        assert remote_hash == f"sha256:{ours.query_info(path).nar_hash.nix32}"
    assert remote.nix_store("--verify-path", out, check=False).returncode == 0
    again = bootstrap(ours, "copy", "--to", remote.store_uri(), out).stdout.decode()
    assert again.startswith("copied 0 paths (0.0 MiB of NAR)") and "2 were there already" in again


def test_copy_carries_our_signatures(tmp_path, remote, ours):
    out, _ = built_path_with_a_reference(ours, tmp_path, "signed")
    secret, public = tmp_path / "sk", tmp_path / "pk"
    run_cli("key", "generate", "--name", "test-cache-1", "--secret", secret, "--public", public)
    bootstrap(ours, "store", "sign", "--key", str(secret), out)
    bootstrap(ours, "copy", "--to", remote.store_uri(), out)
    signatures = remote_path_info(remote, out).get("signatures", [])
    assert signatures == list(ours.query_info(out).signatures)
    assert signatures[0].startswith("test-cache-1:")


def test_a_bad_uri_and_a_machine_that_is_down_are_one_line(tmp_path, remote, ours):
    out, _ = built_path_with_a_reference(ours, tmp_path, "refused")
    wrong_scheme = bootstrap(ours, "copy", "--to", "http://127.0.0.1/x", out, check=False)
    assert wrong_scheme.returncode == 1
    assert wrong_scheme.stderr.decode() == (
        "bootstrap: error: --to: URI must be ssh://[user@]host[:port] "
        "(the serve protocol); got 'http://127.0.0.1/x'\n"
    )
    unknown = bootstrap(ours, "copy", "--to", "ssh://127.0.0.1?compress=true", out, check=False)
    assert "URI parameter 'compress' is not supported" in unknown.stderr.decode()
    down_uri = remote.store_uri().replace(f":{remote.port}?", f":{free_port()}?")
    down = bootstrap(ours, "copy", "--to", down_uri, out, check=False)
    assert down.returncode == 1 and len(down.stderr.decode().splitlines()) == 1
    assert remote.nix_store("--check-validity", out, check=False).returncode != 0


def test_from_and_to_are_exclusive_and_one_is_needed(ours):
    neither = bootstrap(ours, "copy", "x86_64-linux", check=False)
    assert neither.returncode == 2
    assert "one of the arguments --from --to is required" in neither.stderr.decode()
    both = bootstrap(ours, "copy", "--from", "file:///x", "--to", "ssh://h", check=False)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr.decode()


def test_ssh_killed_mid_nar_leaves_nothing_half_registered(tmp_path, remote, ours):
    """The copy of a 64 MiB path is cut by killing ssh once about 16 MiB went through it."""
    tree = tmp_path / "big"
    tree.mkdir()
    (tree / "blob").write_bytes(os.urandom(64 << 20))
    big = ours.add_path(tree, "big")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BOOTSTRAP_")}
    environment["BOOTSTRAP_CONFIG"] = str(ours.root / "none.toml")
    copy = subprocess.Popen(
        [sys.executable, "-m", "bootstrap", "copy", "--to", remote.store_uri(), big,
         "--store", str(ours.root), "--store-dir", ours.store_dir],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment,
    )  # fmt: skip
    ssh = _wait_for_child(copy.pid, "ssh")
    while _bytes_read(ssh) < 16 << 20:
        assert copy.poll() is None, copy.stderr.read().decode()
        time.sleep(0.01)
    os.kill(ssh, signal.SIGKILL)
    _, stderr = copy.communicate(timeout=60)
    assert copy.returncode == 1
    assert len(stderr.decode().splitlines()) == 1, stderr
    assert "the connection was closed while sending" in stderr.decode()
    assert remote.nix_store("--check-validity", big, check=False).returncode != 0
    assert ours.is_valid(big)  # the sender keeps its path as it was
    # Nix may leave the cut-off files in its store, unregistered; the next copy replaces them
    again = bootstrap(ours, "copy", "--to", remote.store_uri(), big).stdout.decode()
    assert again.startswith("copied 1 paths (64.0 MiB of NAR)"), again
    remote_hash = remote.nix_store("--query", "--hash", big).stdout.strip()
    assert remote_hash == f"sha256:{ours.query_info(big).nar_hash.nix32}"
    assert remote.nix_store("--verify-path", big, check=False).returncode == 0


def _wait_for_child(parent: int, name: str) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    stat = Path(f"/proc/{pid}/stat").read_text()
                except OSError:
                    continue
                comm, rest = stat.split("(", 1)[1].rsplit(")", 1)
                if comm == name and int(rest.split()[1]) == parent:
                    return int(pid)
        time.sleep(0.01)
    raise AssertionError(f"no {name} child of {parent}")


def _bytes_read(pid: int) -> int:
    """What the process has read so far (`rchar`: from the pipe our copy writes into)."""
    with open(f"/proc/{pid}/io") as io:
        return int(next(line for line in io if line.startswith("rchar:")).split()[1])
