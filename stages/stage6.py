"""Stage 6: the toolchain for glibc. gcc 12 again, by the stage-4 gcc 12 at -O2: its compilers
are static programs, everything they compile and link is for the store's glibc (their own
libstdc++ and libgcc_s first). Then `toolchain`, the one store path handed to a main builder:
`cc`/`c++` wrappers, binutils, toolchain.json, a CMake toolchain file and a Meson native file.
"""

from bootstrap.recipe import Package
from stages.host_paths import (
    GCC_DRIVER_LOADERS,
    GCC_DRIVER_MUSL_LOADERS,
    GCC_SYSROOT_RELATIVE,
    LIBBACKTRACE_DEBUG,
    LIBBACKTRACE_DEBUG_PACKED,
    LIBIBERTY_TMP,
    MUSL_STATIC,
)
from stages.stage1 import busybox, make
from stages.stage3 import GMP_SOURCE, MPC_SOURCE, MPFR_SOURCE
from stages.stage4 import GCC12_SOURCE, binutils, gcc12, python
from stages.stage5 import glibc

gcc = Package(
    "gcc",
    "12.2.0",
    "gcc-for-glibc.sh",
    sources=(GCC12_SOURCE, GMP_SOURCE, MPFR_SOURCE, MPC_SOURCE),
    files=("gcc-tree.sh",),
    inputs=(busybox, gcc12, make, binutils, glibc),
    env={"hostOptimize": "-O2", "optimize": "-O2"},
    profiles={"fast": {"hostOptimize": "-O1"}},
    libc=glibc,
    allowed_host_paths=(
        MUSL_STATIC
        + LIBIBERTY_TMP
        + GCC_SYSROOT_RELATIVE
        + GCC_DRIVER_LOADERS
        + GCC_DRIVER_MUSL_LOADERS
        + LIBBACKTRACE_DEBUG
        + LIBBACKTRACE_DEBUG_PACKED
    ),
)


def toolchain_package(*llvm_projects: Package) -> Package:
    """The toolchain path: the gcc for glibc with binutils, and clang with lld and LLVM's tools
    if those projects (llvm, clang, lld: stage 7) are given."""
    compilers = {"closure-gcc.json": gcc} | {f"closure-{p.name}.json": p for p in llvm_projects}
    return Package(
        "toolchain",
        "",
        "toolchain.sh",
        files=("toolchain.py", *(("toolchain_clang.py",) if llvm_projects else ())),
        inputs=(busybox, python, gcc, binutils, glibc, *llvm_projects),
        closure_files={
            **compilers,
            "closure-binutils.json": binutils,
            "closure-glibc.json": glibc,
            "closure-shell.json": busybox,
        },
    )


toolchain = toolchain_package()

PACKAGES = (gcc, toolchain)
