"""Stage 6: the toolchain for glibc. gcc 12 again, by the stage-4 gcc 12 at -O2: its compilers
are static programs, everything they compile and link is for the store's glibc (their own
libstdc++ and libgcc_s first). Then `toolchain`, the one store path handed to a main builder:
`cc`/`c++` wrappers, binutils, toolchain.json, a CMake toolchain file and a Meson native file.
"""

from bootstrap.recipe import Package
from stages.gcc import GCC_STRINGS, gcc_tree
from stages.host_paths import GCC_DRIVER_MUSL_LOADERS, LIBBACKTRACE_DEBUG_PACKED
from stages.stage1 import busybox
from stages.stage4 import GCC12_TOOLS, binutils, python
from stages.stage5 import glibc

gcc = gcc_tree(
    "12.2.0",
    "gcc-for-glibc.sh",
    tools=(*GCC12_TOOLS, glibc),
    host_optimize="-O2",
    optimize="-O2",
    profiles={"fast": {"hostOptimize": "-O1"}},
    libc=glibc,
    allowed_host_paths=GCC_STRINGS + GCC_DRIVER_MUSL_LOADERS + LIBBACKTRACE_DEBUG_PACKED,
)


def toolchain_package(*llvm_projects: Package) -> Package:
    """The toolchain path: the gcc for glibc with binutils, and clang with lld and LLVM's tools
    if those projects (llvm, clang, lld: stage 7) are given."""
    compilers = {"closure-gcc.json": gcc} | {f"closure-{p.name}.json": p for p in llvm_projects}
    return Package(
        "toolchain",
        "",
        "toolchain.sh",
        shell=busybox,
        files=("toolchain.py", *(("toolchain_clang.py",) if llvm_projects else ())),
        inputs=(python, gcc, binutils, glibc, *llvm_projects),
        closure_files={
            **compilers,
            "closure-binutils.json": binutils,
            "closure-glibc.json": glibc,
            "closure-shell.json": busybox,
        },
    )


toolchain = toolchain_package()

PACKAGES = (gcc, toolchain)
