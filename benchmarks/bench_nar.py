"""NAR hash, dump and restore, whole-process, against Nix's tools on three trees; CPU ratios.

    .venv/bin/python benchmarks/bench_nar.py [--repeat 3] [--size-mb 300] [--only NAME]

Pairs, each process's CPU time (user + sys, from os.wait4), best of `--repeat` after one
warm-up: `bootstrap hash path` / `nix-hash --type sha256 --base32`, `bootstrap nar dump` /
`nix-store --dump` (to /dev/null), `bootstrap nar restore` / `nix-store --restore` (from a NAR
file, into a fresh directory under /var/tmp); and in-process `nar_hash` (time.process_time)
against `nix-hash`. Trees: a generated one of --size-mb (bench_nar_hash.py's generator),
/usr/include, and 50,000 tiny files; generated trees are cached under ~/.cache/bootstrap. CPU
time, not wall, because the machine is shared with long builds.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_nar_hash import generate_tree

from bootstrap.nar import nar_hash

BOOTSTRAP = str(Path(sys.executable).with_name("bootstrap"))
SCRATCH = Path("/var/tmp/bench-nar")


def generate_tiny(root: Path, count: int = 50_000) -> Path:
    """`count` files of 0-200 bytes, 200 to a directory, every 10th executable."""
    if (root / ".complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(7)
    for n in range(count):
        directory = root / f"d{n // 200:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{n}").write_bytes(rng.randbytes(rng.randint(0, 200)))
        if n % 10 == 0:
            os.chmod(directory / f"f{n}", 0o755)
    (root / ".complete").touch()
    return root


def cpu(argv: list[str], stdin: str = os.devnull, stdout: str = os.devnull) -> float:
    """Run `argv` to completion; its CPU time (user + sys) in seconds."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, stdin, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
    ]
    pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"failed: {' '.join(argv)}")
    return usage.ru_utime + usage.ru_stime


def best(run, repeat: int) -> float:
    run()
    return min(run() for _ in range(repeat))


def restore_run(tool: list[str], nar: Path, dest: Path):
    def run() -> float:
        shutil.rmtree(dest, ignore_errors=True)
        return cpu([*tool, str(dest)], stdin=str(nar))

    return run


def in_process(tree: Path) -> float:
    start = time.process_time()
    nar_hash(tree)
    return time.process_time() - start


def bench_tree(name: str, tree: Path, repeat: int, restore: bool) -> None:
    SCRATCH.mkdir(parents=True, exist_ok=True)
    nar, out = SCRATCH / f"{name}.nar", SCRATCH / "out"
    cpu(["nix-store", "--dump", str(tree)], stdout=str(nar))
    cpu(["nix-hash", "--type", "sha256", "--base32", str(tree)], stdout=str(out))
    expected = out.read_text()
    cpu([BOOTSTRAP, "hash", "path", str(tree)], stdout=str(out))
    assert out.read_text() == expected, f"hash differs: {out.read_text()} != {expected}"
    assert nar_hash(tree)[0].nix32 == expected.strip()
    dest = SCRATCH / "restored"
    pairs = [
        ("hash path", lambda: cpu([BOOTSTRAP, "hash", "path", str(tree)]),
         lambda: cpu(["nix-hash", "--type", "sha256", "--base32", str(tree)])),
        ("hash (in-process)", lambda: in_process(tree),
         lambda: cpu(["nix-hash", "--type", "sha256", "--base32", str(tree)])),
        ("nar dump", lambda: cpu([BOOTSTRAP, "nar", "dump", str(tree)]),
         lambda: cpu(["nix-store", "--dump", str(tree)])),
        ("nar restore", restore_run([BOOTSTRAP, "nar", "restore"], nar, dest),
         restore_run(["nix-store", "--restore"], nar, dest)),
    ]  # fmt: skip
    pairs = pairs if restore else pairs[:3]
    files = sum(len(f) for _, _, f in os.walk(tree))
    print(f"{name}: {tree} ({files} files, NAR {nar.stat().st_size >> 20} MB)", flush=True)
    for label, ours, theirs in pairs:
        a, b = best(ours, repeat), best(theirs, repeat)
        print(f"  {label:18} ours {a:7.3f} s   nix {b:7.3f} s   {a / b:5.2f}x", flush=True)
    restore_run([BOOTSTRAP, "nar", "restore"], nar, dest)()  # checked even if not timed
    cpu(["nix-hash", "--type", "sha256", "--base32", str(dest)], stdout=str(out))
    assert out.read_text() == expected, "restored tree differs"
    shutil.rmtree(dest)
    nar.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size-mb", type=int, default=300)
    parser.add_argument("--only", choices=["large", "include", "tiny"], action="append")
    parser.add_argument("--no-restore", action="store_true", help="hash and dump only")
    args = parser.parse_args()
    cache = Path(os.environ.get("BOOTSTRAP_CACHE_DIR", Path.home() / ".cache" / "bootstrap"))
    trees = {
        "large": lambda: generate_tree(cache / f"bench-tree-{args.size_mb}", args.size_mb),
        "include": lambda: Path("/usr/include"),
        "tiny": lambda: generate_tiny(cache / "bench-tiny-50000"),
    }
    for name, make in trees.items():
        if not args.only or name in args.only:
            bench_tree(name, make(), args.repeat, not args.no_restore)


if __name__ == "__main__":
    main()
