"""Stage 7: clang and lld. CMake, which LLVM's build needs, by the stage-4 gcc 12 (static
against musl, like the other build tools).
"""

from bootstrap.fetch import Source
from bootstrap.recipe import Package
from stages.host_paths import MUSL_STATIC
from stages.stage1 import busybox, make
from stages.stage4 import binutils, gcc12

CMAKE_SOURCE = Source.of(
    "mirror://debian/pool/main/c/cmake/cmake_3.25.1.orig.tar.gz",
    "1c511d09516af493694ed9baf13c55947a36389674d657a2d5e0ccedc6b291d8",
)

cmake = Package(
    "cmake",
    "3.25.1",
    "cmake.sh",
    sources=(CMAKE_SOURCE,),
    inputs=(busybox, gcc12, make, binutils),
    env={"optimize": "-O2"},
    allowed_host_paths=MUSL_STATIC,
)

PACKAGES = (cmake,)
