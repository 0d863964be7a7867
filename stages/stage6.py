"""Stage 6: the toolchain for glibc. gcc 12 again, by the stage-4 gcc 12 at -O2: its compilers
are static programs, everything they compile and link is for the store's glibc (their own
libstdc++ and libgcc_s first). Then `toolchain`, the one store path handed to a main builder:
`cc`/`c++` wrappers, binutils, toolchain.json, a CMake toolchain file and a Meson native file.
"""

from bootstrap.recipe import Package
from stages.host_paths import (
    GCC_DRIVER_LOADERS,
    GCC_SYSROOT_RELATIVE,
    LIBBACKTRACE_DEBUG,
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
    inputs=(busybox, gcc12, make, binutils, glibc),
    env={"hostOptimize": "-O2", "optimize": "-O2"},
    profiles={"fast": {"hostOptimize": "-O1"}},
    libc=glibc,
    allowed_host_paths=(
        MUSL_STATIC + LIBIBERTY_TMP + GCC_SYSROOT_RELATIVE + GCC_DRIVER_LOADERS + LIBBACKTRACE_DEBUG
    ),
)


def toolchain_package(llvm: Package | None = None) -> Package:
    """The toolchain path: the gcc for glibc with binutils, and clang and lld if `llvm` is given
    (stage 7)."""
    compilers = {"closure-gcc.json": gcc} | ({"closure-llvm.json": llvm} if llvm else {})
    return Package(
        "toolchain",
        "",
        "toolchain.sh",
        files=("toolchain.py",),
        inputs=(busybox, python, gcc, binutils, glibc, *((llvm,) if llvm else ())),
        closure_files={
            **compilers,
            "closure-binutils.json": binutils,
            "closure-glibc.json": glibc,
            "closure-shell.json": busybox,
        },
    )


toolchain = toolchain_package()

PACKAGES = (gcc, toolchain)
