"""NAR-hash a large tree with ours and with Nix's `nix-hash`, in the same run; print the ratio.

    .venv/bin/python benchmarks/bench_nar_hash.py [--size-mb 500] [--path DIR] [--repeat 3]

Without --path a deterministic tree is generated once under ~/.cache/bootstrap/bench-tree-<MB>:
a mix of many small files (source-tree-like) and some large ones (binary-like). Each tool is
run `--repeat` times after one warm-up; the best time of each is compared (the page cache is
warm for both).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

from bootstrap.nar import nar_hash


def generate_tree(root: Path, size_mb: int) -> Path:
    done = root / ".complete"
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(42)
    budget = size_mb << 20
    written = 0
    n = 0
    while written < budget:
        directory = root / f"d{n // 200:04d}" / f"s{n % 7}"
        directory.mkdir(parents=True, exist_ok=True)
        size = rng.choice([200, 1500, 6000, 30000]) if n % 50 else rng.randint(1, 8) << 20
        (directory / f"f{n}.dat").write_bytes(rng.randbytes(min(size, budget - written + 1)))
        if n % 9 == 0:
            os.chmod(directory / f"f{n}.dat", 0o755)
        if n % 97 == 0:
            os.symlink(f"f{n}.dat", directory / f"l{n}")
        written += size
        n += 1
    done.touch()
    return root


def best_time(run, repeat: int) -> tuple[float, str]:
    result = run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--path", type=Path, help="hash this tree instead of a generated one")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cache = Path(os.environ.get("BOOTSTRAP_CACHE_DIR", Path.home() / ".cache" / "bootstrap"))
    tree = args.path or generate_tree(cache / f"bench-tree-{args.size_mb}", args.size_mb)
    files = sum(len(f) for _, _, f in os.walk(tree))

    ours_t, ours = best_time(lambda: nar_hash(tree)[0].nix32, args.repeat)
    nix_t, nix = best_time(
        lambda: subprocess.run(
            ["nix-hash", "--type", "sha256", "--base32", tree],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip(),
        args.repeat,
    )
    assert ours == nix, f"hash differs: ours {ours}, nix-hash {nix}"
    print(f"tree: {tree} ({files} files)")
    print(f"bootstrap nar_hash: {ours_t:7.3f} s")
    print(f"nix-hash          : {nix_t:7.3f} s")
    print(f"ratio ours/nix    : {ours_t / nix_t:7.2f}x  (same hash {ours})")


if __name__ == "__main__":
    main()
