"""Patch real binaries with our patcher and with patchelf in the same run.

For every dynamic ELF file found (default: gcc 12's libexec directory and a sample of
/usr/bin), two copies are patched to the same store interpreter and RUNPATH: one by
`InPlacePatcher` (or `LiefPatcher` with --lief), one by `patchelf --set-interpreter
--set-rpath`. Prints per-file size growth for both tools, then the totals: wall time of each
call and CPU time (ours in-process, patchelf's process, so its start-up counts) with the
ratios ours / patchelf, size growth, how many files ours grew (only files that go to lief
grow) and which grew by more than patchelf's growth plus 4 KiB (the goal of #21).

    python benchmarks/bench_elf_patch.py [--limit N] [--lief] [DIR ...]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bootstrap.elf.inspect import ElfError, ElfInfo, read_elf
from bootstrap.elf.patch import ElfPatch, ElfPatcher, InPlacePatcher, LiefPatcher

STORE_LIB = "/bootstrap/store/0123456789abcdfghijklmnpqrsvwxyz-glibc-2.36/lib"
INTERPRETER = f"{STORE_LIB}/ld-linux-x86-64.so.2"
RUNPATH = (STORE_LIB, "/bootstrap/store/zyxwvsrqpnmlkjihgfdcba9876543210-gmp-6.2.1/lib")
DEFAULT_DIRS = ("/usr/lib/gcc/x86_64-linux-gnu/12", "/usr/bin")


@dataclass
class Result:
    name: str
    size: int
    ours_growth: int
    patchelf_growth: int
    ours_seconds: float
    patchelf_seconds: float
    ours_cpu: float
    patchelf_cpu: float


def dynamic_files(directories: list[str], limit: int) -> list[tuple[Path, ElfInfo]]:
    found = []
    for directory in directories:
        for path in sorted(Path(directory).iterdir()):
            if path.is_symlink() or not path.is_file():
                continue
            try:
                info = read_elf(path)
            except ElfError:
                continue
            if info.is_dynamic:
                found.append((path, info))
            if len(found) >= limit:
                return found
    return found


def patch_both(
    source: Path, info: ElfInfo, work: Path, patchelf: str, patcher: ElfPatcher
) -> Result:
    ours, theirs = work / f"ours-{source.name}", work / f"patchelf-{source.name}"
    shutil.copy2(source, ours)
    shutil.copy2(source, theirs)
    interpreter = INTERPRETER if info.interpreter else None
    start, start_cpu = time.perf_counter(), time.process_time()
    patcher.apply(ours, ElfPatch(interpreter, RUNPATH))
    ours_seconds = time.perf_counter() - start
    ours_cpu = time.process_time() - start_cpu
    command = [patchelf, "--set-rpath", ":".join(RUNPATH), str(theirs)]
    if interpreter:
        command[1:1] = ["--set-interpreter", interpreter]
    start, start_cpu = time.perf_counter(), _children_cpu()
    subprocess.run(command, check=True, capture_output=True)
    patchelf_seconds = time.perf_counter() - start
    patchelf_cpu = _children_cpu() - start_cpu
    for patched in (ours, theirs):
        check = read_elf(patched)
        assert check.search_path == RUNPATH and check.interpreter == interpreter, patched
    size = source.stat().st_size
    result = Result(
        source.name,
        size,
        ours.stat().st_size - size,
        theirs.stat().st_size - size,
        ours_seconds,
        patchelf_seconds,
        ours_cpu,
        patchelf_cpu,
    )
    ours.unlink()
    theirs.unlink()
    return result


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="*", default=list(DEFAULT_DIRS))
    parser.add_argument("--limit", type=int, default=120, help="at most this many files")
    parser.add_argument("--lief", action="store_true", help="have lief rebuild every file")
    args = parser.parse_args()
    patcher = LiefPatcher() if args.lief else InPlacePatcher()
    patchelf = shutil.which("patchelf")
    if patchelf is None:
        print("patchelf is not installed", file=sys.stderr)
        return 1
    files = dynamic_files(args.dirs, args.limit)
    with tempfile.TemporaryDirectory(prefix="bench-elf-") as work:
        results = [patch_both(path, info, Path(work), patchelf, patcher) for path, info in files]
    print(f"{'file':<28} {'size':>11} {'ours +bytes':>12} {'patchelf +bytes':>16}")
    for r in sorted(results, key=lambda r: -r.size):
        print(f"{r.name:<28} {r.size:>11} {r.ours_growth:>12} {r.patchelf_growth:>16}")
    ours = sum(r.ours_seconds for r in results)
    theirs = sum(r.patchelf_seconds for r in results)
    total = sum(r.size for r in results)
    print(f"\n{len(results)} files, {total / 1e6:.1f} MB (patchelf {patchelf})")
    print(f"wall: ours {ours:.2f} s, patchelf {theirs:.2f} s, ratio {ours / theirs:.2f}")
    ours_cpu = sum(r.ours_cpu for r in results)
    theirs_cpu = sum(r.patchelf_cpu for r in results)
    ratio = ours_cpu / theirs_cpu
    print(f"cpu: ours {ours_cpu:.2f} s, patchelf {theirs_cpu:.2f} s, ratio {ratio:.2f}")
    for label, growth in (
        ("ours", sum(r.ours_growth for r in results)),
        ("patchelf", sum(r.patchelf_growth for r in results)),
    ):
        print(f"growth {label}: {growth / 1e6:.3f} MB ({100 * growth / total:.2f} %)")
    over = [r for r in results if r.ours_growth > r.patchelf_growth + 4096]
    grown = sum(1 for r in results if r.ours_growth)
    print(f"files ours grew: {grown}; over patchelf's growth + 4 KiB: {len(over)}")
    for r in over:
        print(f"  {r.name}: ours +{r.ours_growth}, patchelf +{r.patchelf_growth}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
