"""Sending a closure to a Nix machine over ssh: `bootstrap copy --to ssh://` against
`nix copy --to ssh://`, in one run.

    .venv/bin/python benchmarks/bench_send.py [--rounds N] [--tree DIR ...]

Needs root, openssh-server and nix-bin (as tests/test_remote_*.py). Starts its own sshd on
127.0.0.1 (tests' test_remote_support) in front of `nix-store --serve --write`. The closure is
made of real trees (default /usr/lib/gcc and /usr/include, about 420 MB of NAR), added to our
store and, with `nix-store --add`, to a Nix store (the same store paths: both are Nix's source
paths). Each round, each tool sends the whole closure into a fresh, empty remote store (the
remote store is a URI parameter, so one sshd serves them all). Prints the best wall time of
each, the throughput in MB/s of NAR and the ratio ours/Nix; the sending process's CPU time is
shown too (the remote's `nix-store` does the same work for both). No assertion: a measurement.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_substitute import measure
from bootstrap.store import Store
from tests.test_remote_support import NIX_CONFIG, Remote, start_remote

STORE_DIR = "/nix/store"
BOOTSTRAP = Path(sys.executable).with_name("bootstrap")
NIX = ["nix", "--extra-experimental-features", "nix-command"]


def store_uri(remote: Remote, root: Path, port: bool = True) -> str:
    """The remote as a store URI; Nix 2.8 takes no port in it (NIX_SSHOPTS carries it)."""
    query = {
        "remote-program": str(remote.dir / "remote-nix-store"),
        "remote-store": f"local?root={root}",
        "ssh-key": str(remote.key),
        "base64-ssh-public-host-key": remote.host_key_b64,
    }
    host = f"127.0.0.1:{remote.port}" if port else "127.0.0.1"
    return f"ssh://root@{host}?{urlencode(query)}"


def prepare(tmp: Path, trees: list[Path]) -> tuple[list[str], int, Path]:
    """Our store and a Nix store holding the same source paths; returns the paths, their NAR
    bytes and the Nix store's root."""
    ours = Store(tmp / "ours", STORE_DIR)
    paths = [ours.add_path(tree, tree.name) for tree in trees]
    nix_root = tmp / "nix-source"
    env = dict(os.environ, NIX_CONFIG=NIX_CONFIG)
    for tree, path in zip(trees, paths, strict=True):
        added = subprocess.run(
            ["nix-store", "--store", f"local?root={nix_root}", "--add", str(tree)],
            capture_output=True, text=True, check=True, env=env,
        ).stdout.strip()  # fmt: skip
        if added != path:
            raise SystemExit(f"nix-store --add gave {added}, we gave {path}")
    return paths, sum(ours.query_info(p).nar_size for p in paths), nix_root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tree", type=Path, action="append", help="a tree of the closure")
    args = parser.parse_args()
    trees = args.tree or [Path("/usr/lib/gcc"), Path("/usr/include")]
    with tempfile.TemporaryDirectory(prefix="bench-send-", dir="/var/tmp") as scratch:
        tmp = Path(scratch)
        paths, nar_bytes, nix_root = prepare(tmp, trees)
        remote = start_remote(tmp / "remote", STORE_DIR)
        try:
            ours, nix = rounds(tmp, remote, paths, nix_root, args.rounds)
        finally:
            remote.stop()
    print(f"closure: {len(paths)} paths, {nar_bytes / 1e6:.0f} MB of NAR, loopback ssh")
    print("tool      best wall  CPU (sender)  throughput")
    for label, (wall, cpu) in (("bootstrap", ours), ("nix copy", nix)):
        print(f"{label:9} {wall:8.2f} s {cpu:10.2f} s {nar_bytes / 1e6 / wall:8.1f} MB/s")
    print(
        f"throughput ours/Nix: {nix[0] / ours[0]:.2f}; sender CPU ours/Nix: {ours[1] / nix[1]:.2f}"
    )
    return 0


def rounds(tmp: Path, remote: Remote, paths: list[str], nix_root: Path, count: int):
    ours_env = dict(
        os.environ,
        BOOTSTRAP_STORE=str(tmp / "ours"),
        BOOTSTRAP_STORE_DIR=STORE_DIR,
        BOOTSTRAP_CONFIG=str(tmp / "none.toml"),
    )
    nix_env = dict(os.environ, NIX_CONFIG=NIX_CONFIG, NIX_SSHOPTS=f"-p {remote.port}")
    ours, nix = [], []
    for index in range(count):
        to_ours = store_uri(remote, tmp / f"to-ours-{index}")
        wall, cpu, _ = measure([str(BOOTSTRAP), "copy", "--to", to_ours, *paths], ours_env)
        ours.append((wall, cpu))
        to_nix = store_uri(remote, tmp / f"to-nix-{index}", port=False)
        nix_copy = [*NIX, "copy", "--no-check-sigs", "--from", f"local?root={nix_root}"]
        wall, cpu, _ = measure([*nix_copy, "--to", to_nix, *paths], nix_env)
        nix.append((wall, cpu))
    return min(ours), min(nix)


if __name__ == "__main__":
    sys.exit(main())
