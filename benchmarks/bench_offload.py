"""The cost of offloading: a trivial derivation built here and on a Nix builder over loopback
ssh, in one run.

    .venv/bin/python benchmarks/bench_offload.py [--rounds N]

Needs root, openssh-server, nix-bin and busybox-static (as tests/test_remote_*.py). Starts its
own sshd on 127.0.0.1 and `nix-store --serve --write` on a chroot store (tests'
test_remote_support). Each round builds a fresh derivation (a new nonce) locally in our sandbox,
then another on the remote (the first remote round also sends the 2 MB busybox input). Prints
the median times, their difference (the fixed cost of offloading: ssh, handshake, transfers,
Nix's own sandbox set-up) and ratio. No assertion: a measurement.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bootstrap.build import BuildOptions, realise
from bootstrap.remote.offload import build_remotely
from bootstrap.store import Store
from tests.test_remote_support import busybox_path, shell_drv, start_remote

SCRIPT = "mkdir $out; echo {nonce} > $out/nonce"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-offload-") as scratch:
        tmp = Path(scratch)
        remote = start_remote(tmp / "remote", "/nix/store")
        try:
            local, offloaded, first = _measure(tmp, remote, args.rounds)
        finally:
            remote.stop()
    here, there = statistics.median(local), statistics.median(offloaded)
    print(f"rounds: {args.rounds} (median), trivial derivation, loopback ssh")
    print(f"  local build (our sandbox):     {here * 1000:8.1f} ms")
    print(f"  offloaded (inputs present):    {there * 1000:8.1f} ms")
    print(f"  first offload (sends busybox): {first * 1000:8.1f} ms")
    print(f"  extra cost of offloading:      {(there - here) * 1000:8.1f} ms, x{there / here:.2f}")
    return 0


def _measure(tmp: Path, remote, rounds: int) -> tuple[list[float], list[float], float]:
    store = Store(tmp / "ours", "/nix/store")
    shell = busybox_path(store, tmp)
    options = BuildOptions()
    machine = remote.machine()
    local, offloaded = [], []
    for index in range(rounds + 1):  # round 0 warms up (and sends busybox)
        path, drv = shell_drv(store, "trivial", SCRIPT.format(nonce=f"l{index}"), shell)
        start = time.monotonic()
        realise(store, path, drv, options)
        local.append(time.monotonic() - start)
        path, drv = shell_drv(store, "trivial", SCRIPT.format(nonce=f"r{index}"), shell)
        start = time.monotonic()
        build_remotely(store, path, drv, machine, options)
        offloaded.append(time.monotonic() - start)
    return local[1:], offloaded[1:], offloaded[0]


if __name__ == "__main__":
    sys.exit(main())
