"""The chain, as data: for each target system, its stages in order and what each builds.

Stage 0 is the hashed seed (static tcc + musl, busybox, make; see `seeds/`). Every later
package is built inside the sandbox from pinned sources by the tools of earlier packages only.
"""

from bootstrap.recipe import Stage
from stages import stage0, stage1, stage2, stage3, stage4, stage5, stage6, stage7

PROFILES = {
    "default": "what users ship",
    "fast": "the compilers' own code optimised less, and LLVM with the X86 target only, so the "
    "chain builds sooner",
}

TARGETS = {
    "x86_64-linux": [
        Stage("stage0", (stage0.seed,), "the hashed seed: static tcc, musl, busybox, make"),
        Stage("stage1", stage1.PACKAGES, "everything tcc builds: musl, tcc, make, busybox, patch"),
        Stage("stage2", stage2.PACKAGES, "from C to C++ by tcc: binutils 2.16.1, gcc 3.4.6"),
        Stage(
            "stage3", stage3.PACKAGES, "by gcc 3.4.6: gcc 10.2, and m4, bison, gawk, sed for glibc"
        ),
        Stage(
            "stage4", stage4.PACKAGES, "by gcc 10: binutils 2.40, gcc 12.2; by gcc 12: Python, grep"
        ),
        Stage("stage5", stage5.PACKAGES, "by gcc 12: glibc 2.36"),
        Stage("stage6", stage6.PACKAGES, "gcc 12 for glibc, and the toolchain path"),
        Stage("stage7", stage7.PACKAGES, "CMake by gcc 12; clang and lld; the final toolchain"),
    ],
}
