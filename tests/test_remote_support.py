"""Real parts for the remote-build tests: an sshd the test starts on 127.0.0.1 with keys it
generates (no system sshd is touched), Nix's `nix-store --serve --write` on a chroot store as
the remote, and small derivations real Nix can build (a busybox `sh` from our store).

Also used by benchmarks/bench_offload.py. No tests here: the fixtures only.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from bootstrap.builtins import SEED_NAR_DIR
from bootstrap.derivation import (
    Derivation,
    DerivationHasher,
    Output,
    add_to_store,
    store_resolver,
)
from bootstrap.remote.machines import Machine, local_system, parse_machine
from bootstrap.store import Store

from .engine_fixtures import BUSYBOX

SSHD = "/usr/sbin/sshd"
# the remote's settings: no network, no build users (root runs builds in Nix's sandbox)
NIX_CONFIG = "substituters =\nbuild-users-group =\n"

requires_remote = pytest.mark.skipif(
    not (os.path.exists(SSHD) and shutil.which("ssh") and shutil.which("nix-store") and BUSYBOX)
    or os.geteuid() != 0,
    reason="needs root, openssh-server, nix-bin and busybox-static",
)


@dataclass
class Remote:
    """A running sshd and the Nix store behind it."""

    dir: Path
    port: int
    key: Path
    host_key_b64: str
    store_root: Path
    store_dir: str
    process: subprocess.Popen

    def spec(self, port: int | None = None, systems: str = "-", extra: str = "1 1 - -") -> str:
        """This machine in Nix's syntax (`port` to point it elsewhere, e.g. at nothing)."""
        store = quote(f"local?root={self.store_root}&store={self.store_dir}", safe="")
        program = quote(str(self.dir / "remote-nix-store"), safe="")
        uri = (
            f"ssh://root@127.0.0.1:{port or self.port}"
            f"?remote-program={program}&remote-store={store}"
        )
        return f"{uri} {systems} {self.key} {extra} {self.host_key_b64}"

    def store_uri(self) -> str:
        """This machine as a store URI (`copy --to`), key and host key as query parameters."""
        query = {
            "remote-program": str(self.dir / "remote-nix-store"),
            "remote-store": f"local?root={self.store_root}&store={self.store_dir}",
            "ssh-key": str(self.key),
            "base64-ssh-public-host-key": self.host_key_b64,
        }
        return f"ssh://root@127.0.0.1:{self.port}?{urlencode(query)}"

    def machine(self, port: int | None = None) -> Machine:
        return parse_machine(self.spec(port), "test")

    def nix_store(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        store = f"local?root={self.store_root}&store={self.store_dir}"
        env = dict(os.environ, NIX_CONFIG=NIX_CONFIG)
        return subprocess.run(
            ["nix-store", "--store", store, *args],
            capture_output=True, text=True, env=env, check=check,
        )  # fmt: skip

    def real_path(self, store_path: str) -> Path:
        """Where the remote keeps a path: Nix 2.8's chroot store puts its files in
        ROOT/nix/store whatever the logical store dir (seen here)."""
        return self.store_root / "nix" / "store" / store_path.rsplit("/", 1)[1]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_remote(
    directory: Path, store_dir: str, sandbox_paths: dict[str, str] | None = None
) -> Remote:
    """sshd on 127.0.0.1 (an ephemeral port) that lets our generated key run Nix; Nix's sandbox
    gets `sandbox_paths` (in it -> on the host) as `extra-sandbox-paths`."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("hostkey", "id"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(directory / name)],
            check=True,
        )
    shutil.copy(directory / "id.pub", directory / "authorized_keys")
    wrapper = directory / "remote-nix-store"
    nix_config = NIX_CONFIG
    if sandbox_paths:
        pairs = " ".join(f"{inside}={host}" for inside, host in sandbox_paths.items())
        nix_config += f"extra-sandbox-paths = {pairs}\n"
    wrapper.write_text(f"#!/bin/sh\nexport NIX_CONFIG='{nix_config}'\nexec nix-store \"$@\"\n")
    wrapper.chmod(0o755)
    port = free_port()
    config = directory / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {directory / 'hostkey'}\n"
        f"PidFile {directory / 'sshd.pid'}\nAuthorizedKeysFile {directory / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    with open(directory / "sshd.log", "wb") as log:
        process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=log)
    _wait_for_port(port, process)
    host_key = (directory / "hostkey.pub").read_text().split()[:2]
    remote = Remote(
        directory,
        port,
        directory / "id",
        base64.b64encode(" ".join(host_key).encode()).decode(),
        directory / "nix",
        store_dir,
        process,
    )
    remote.nix_store("--init")
    return remote


def chain_sandbox_paths(seed_nars: Path) -> dict[str, str]:
    """What a builder of the chain needs in Nix's sandbox beyond Debian's defaults
    (docs/distributed.md): a `/bin/sh`, a static busybox as upstream Nix's default, and the
    seed's NAR directory."""
    return {"/bin/sh": str(BUSYBOX), SEED_NAR_DIR: str(seed_nars)}


def _wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, "sshd exited; see sshd.log"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"sshd did not listen on port {port}")


def busybox_path(store: Store, directory: Path) -> str:
    """Debian's static busybox as a store path with `bin/sh` (busybox picks the applet from
    argv[0], so a link, as Nix's sandbox needs a store path for the builder)."""
    tree = directory / "busybox-tree"
    (tree / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy(BUSYBOX, tree / "bin" / "busybox")
    for applet in ("sh", "mkdir", "echo", "cat", "sleep", "head"):
        if not (tree / "bin" / applet).is_symlink():
            os.symlink("busybox", tree / "bin" / applet)
    return store.add_path(tree, "busybox")


def shell_drv(
    store: Store, name: str, script: str, shell: str, **env: str
) -> tuple[str, Derivation]:
    """A derivation built by `sh -c SCRIPT` with `shell` (a busybox store path) as its input
    and PATH; written to the store."""
    drv = Derivation(
        name=name,
        outputs={"out": Output()},
        input_srcs=(shell,),
        system=local_system(),
        builder=f"{shell}/bin/sh",
        args=("-c", script),
        env={"PATH": f"{shell}/bin", **env},
    )
    drv = DerivationHasher(store_resolver(store), store.store_dir).fill_outputs(drv)
    return add_to_store(store, drv), drv
