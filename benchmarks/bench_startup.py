"""Whole-process start-up of light commands beside their peers, in one run.

    .venv/bin/python benchmarks/bench_startup.py [--repeat 10]

Each command runs `--repeat` times after one warm-up; the best wall time of each is printed,
with the ratio to its peer: `bootstrap --version` against `python -c pass` (the floor any
Python CLI pays), `bootstrap hash path` and `nar dump` of a small file against `nix-hash` and
`nix-store --dump`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BOOTSTRAP = str(Path(sys.executable).with_name("bootstrap"))
SAMPLE = str(Path(__file__).resolve())

PAIRS = [
    ("bootstrap --version", [BOOTSTRAP, "--version"], "python -c pass",
     [sys.executable, "-c", "pass"]),
    ("bootstrap hash path", [BOOTSTRAP, "hash", "path", SAMPLE], "nix-hash",
     ["nix-hash", "--type", "sha256", "--base32", SAMPLE]),
    ("bootstrap nar dump", [BOOTSTRAP, "nar", "dump", SAMPLE], "nix-store --dump",
     ["nix-store", "--dump", SAMPLE]),
]  # fmt: skip


def best(argv: list[str], repeat: int) -> float:
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    for ours_name, ours, peer_name, peer in PAIRS:
        a, b = best(ours, args.repeat), best(peer, args.repeat)
        print(
            f"{ours_name:22} {a * 1000:7.1f} ms   {peer_name:18} {b * 1000:7.1f} ms   {a / b:5.2f}x"
        )


if __name__ == "__main__":
    main()
