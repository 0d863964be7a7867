"""Substitute a closure from a `file://` binary cache with ours and with `nix copy`, in one run.

    .venv/bin/python benchmarks/bench_substitute.py [--compression xz|zstd] [--tree DIR ...]

The closure is made of real trees (default /usr/lib/gcc and /usr/include, about 450 MB of NAR)
added to a /nix/store-named store and exported once, signed, into a cache kept under
~/.cache/bootstrap/bench-substitute-<compression>. Then each tool fills a fresh store from it
with the signature checked: ours with `bootstrap copy --from`, Nix with `nix copy --from ...
--to local?root=...`. Each side is a separate process; the table shows its wall time, its CPU
time (user+sys) and its peak RSS, and the ratios ours/Nix.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bootstrap.export.binary_cache import export_binary_cache
from bootstrap.signing import SecretKey
from bootstrap.store import Store

STORE_DIR = "/nix/store"
BOOTSTRAP = Path(sys.executable).with_name("bootstrap")


def prepare_cache(directory: Path, trees: list[Path], compression: str) -> tuple[list[str], str]:
    """The cache (made once) and the paths in it, with the public key that signed them."""
    done = directory / "done"
    if done.is_file():
        lines = done.read_text().splitlines()
        return lines[1:], lines[0]
    shutil.rmtree(directory, ignore_errors=True)
    store = Store(directory / "source", STORE_DIR)
    paths = [store.add_path(tree, tree.name) for tree in trees]
    key = SecretKey.generate("bench-1")
    export_binary_cache(store, paths, directory / "cache", compression, key, drvs=False)
    shutil.rmtree(directory / "source")
    done.write_text("\n".join([str(key.public_key()), *paths]) + "\n")
    return paths, str(key.public_key())


def measure(argv: list[str], env: dict | None = None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user+sys) and peak RSS in MB of one process."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[0]} failed: {process.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compression", choices=["xz", "zstd"], default="xz")
    parser.add_argument(
        "--tree", type=Path, action="append", help="a tree in the closure (repeatable)"
    )
    args = parser.parse_args()
    trees = args.tree or [Path("/usr/lib/gcc"), Path("/usr/include")]
    cache_home = Path(os.environ.get("BOOTSTRAP_CACHE_DIR", Path.home() / ".cache" / "bootstrap"))
    directory = cache_home / f"bench-substitute-{args.compression}"
    paths, key = prepare_cache(directory, trees, args.compression)
    cache = directory / "cache"
    narinfos = [f.read_text().splitlines() for f in cache.glob("*.narinfo")]
    sizes = [int(line.split()[1]) for lines in narinfos for line in lines if "NarSize" in line]
    with tempfile.TemporaryDirectory(prefix="bench-subst-", dir="/var/tmp") as scratch:
        env = {**os.environ, "BOOTSTRAP_STORE": f"{scratch}/ours", "BOOTSTRAP_STORE_DIR": STORE_DIR,
               "BOOTSTRAP_CONFIG": f"{scratch}/none.toml"}  # fmt: skip
        ours = measure([str(BOOTSTRAP), "copy", "--from", f"file://{cache}",
                        "--trusted-public-keys", key, *paths], env)  # fmt: skip
        nix = measure(["nix", "--extra-experimental-features", "nix-command", "copy",
                       "--option", "substituters", "", "--option", "build-users-group", "",
                       "--option", "trusted-public-keys", key, "--from", f"file://{cache}",
                       "--to", f"local?root={scratch}/nix", *paths])  # fmt: skip
    print(f"closure: {len(paths)} paths, {sum(sizes) / 1e6:.0f} MB of NAR, {args.compression}")
    print(f"{'':20} {'wall s':>8} {'cpu s':>8} {'peak RSS MB':>12}")
    print(f"{'bootstrap copy':20} {ours[0]:8.2f} {ours[1]:8.2f} {ours[2]:12d}")
    print(f"{'nix copy':20} {nix[0]:8.2f} {nix[1]:8.2f} {nix[2]:12d}")
    print(f"ratio ours/nix: wall {ours[0] / nix[0]:.2f}x, cpu {ours[1] / nix[1]:.2f}x")


if __name__ == "__main__":
    main()
