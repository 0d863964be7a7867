"""Stage 7: clang and lld. CMake, which LLVM's build needs, by the stage-4 gcc 12 (static
against musl, like the other build tools); then by the stage-6 toolchain (gcc for glibc):
zlib, static, for LLVM's compression support (without it lld cannot read the compressed debug
sections of gcc's runtime), and LLVM 15, clang and lld as three store paths (LLVM's libraries
and tools, then clang and lld built against them), each cached on its own, as all of it
together is hours of work on two cores; then the final toolchain path, with both compilers.
"""

from bootstrap.fetch import Source
from bootstrap.recipe import Package
from stages.host_paths import (
    CLANG_DRIVER,
    CMAKE_SEARCH_DEFAULTS,
    LLD_PORTS,
    LLVM_STRINGS,
    MUSL_STATIC,
    NINJA_STRINGS,
)
from stages.stage1 import busybox, linux_headers, make
from stages.stage4 import GCC12_TOOLS, PYTHON_NAMES, python, zlib_by
from stages.stage5 import glibc
from stages.stage6 import toolchain as gcc_toolchain
from stages.stage6 import toolchain_package

CMAKE_SOURCE = Source.of(
    "mirror://debian/pool/main/c/cmake/cmake_3.25.1.orig.tar.gz",
    "1c511d09516af493694ed9baf13c55947a36389674d657a2d5e0ccedc6b291d8",
)
NINJA_SOURCE = Source.of(
    "mirror://debian/pool/main/n/ninja-build/ninja-build_1.11.1.orig.tar.gz",
    "31747ae633213f1eda3842686f83c2aa1412e0f5691d1c14dbbcc67fe7400cea",
)
LLVM_SOURCE = Source.of(
    "mirror://debian/pool/main/l/llvm-toolchain-15/llvm-toolchain-15_15.0.6.orig.tar.xz",
    "076ac9fe372b3141b4fcbee80abfae34f9574fdb959cd8d14a7fd3f39ff89399",
)

cmake = Package(
    "cmake",
    "3.25.1",
    "cmake.sh",
    shell=busybox,
    sources=(CMAKE_SOURCE,),
    inputs=(*GCC12_TOOLS, linux_headers),
    env={"optimize": "-O2"},
    allowed_host_paths=MUSL_STATIC + CMAKE_SEARCH_DEFAULTS,
)

ninja = Package(
    "ninja",
    "1.11.1",
    "ninja.sh",
    shell=busybox,
    sources=(NINJA_SOURCE,),
    inputs=(*GCC12_TOOLS, python),
    env={"optimize": "-O2"},
    allowed_host_paths=MUSL_STATIC + NINJA_STRINGS,
)

zlib = zlib_by((gcc_toolchain, make))


def llvm_project(
    project: str,
    needs: tuple[Package, ...] = (),
    env: dict[str, str] | None = None,
    fast: dict[str, str] | None = None,
    patches: tuple[str, ...] = (),
    allowed: tuple[str, ...] = (),
) -> Package:
    """One project of the LLVM monorepo (llvm-project.sh), by the stage-6 toolchain at -O2
    (-O1 in the fast profile), for the store's glibc."""
    return Package(
        project,
        "15.0.6",
        "llvm-project.sh",
        shell=busybox,
        sources=(LLVM_SOURCE,),
        patches=patches,
        inputs=(gcc_toolchain, cmake, ninja, python, glibc, zlib, *needs),
        env={"project": project, "optimize": "-O2", **(env or {})},
        profiles={"fast": {"optimize": "-O1", **(fast or {})}},
        libc=glibc,
        # clang's Python tools (git-clang-format, hmaptool) name /usr/bin/env python(3)
        shebangs=dict.fromkeys(PYTHON_NAMES, (python, "bin/python3")),
        allowed_host_paths=allowed,
        resumable=True,
    )


# every code generator by default; the fast profile builds X86 only
llvm = llvm_project("llvm", env={"targets": "all"}, fast={"targets": "X86"}, allowed=LLVM_STRINGS)
# no static analyzer: its 184 of clang's 860 compile units are not built (of no use without it)
clang = llvm_project(
    "clang",
    needs=(llvm,),
    patches=("llvm-15-clang-no-static-analyzer.patch",),
    allowed=CLANG_DRIVER,
)
lld = llvm_project("lld", needs=(llvm,), allowed=LLD_PORTS)

toolchain = toolchain_package(llvm, clang, lld)

PACKAGES = (cmake, ninja, zlib, llvm, clang, lld, toolchain)
