"""Stage 2: tcc builds binutils 2.16.1 and gcc 3.4.6; gcc rebuilds musl; cc-musl wraps them.

Debian's `binutils-h8300-hms` and `gcc-h8300-hms` orig tarballs are complete upstream trees of
these releases (x86-64 supported natively; generated parsers shipped, so no bison is needed).
Everything is static. gcc's C++ compiler is built, its runtime library (libstdc++) not yet.
"""

from bootstrap.fetch import Source
from bootstrap.recipe import Package
from stages.host_paths import BINUTILS_DEFAULTS, LIBIBERTY_TMP, MUSL_STATIC
from stages.stage1 import MUSL_SOURCE, busybox, linux_headers, make, musl, patch, tcc

BINUTILS_SOURCE = Source.of(
    "mirror://debian/pool/main/b/binutils-h8300-hms/binutils-h8300-hms_2.16.1.orig.tar.gz",
    "8e122775367a8d7a0a923e2a635bc7ec9a98177aed13c5fae11399368b7c37bd",
)
GCC_SOURCE = Source.of(
    "mirror://debian/pool/main/g/gcc-h8300-hms/gcc-h8300-hms_3.4.6+dfsg2.orig.tar.gz",
    "1626f9e00509268ca7c791528aca41258bfd5b784cb317cf2bccd68f2f63cfed",
)

binutils = Package(
    "binutils",
    "2.16.1",
    "binutils.sh",
    sources=(BINUTILS_SOURCE,),
    patches=("binutils-2.16.1-deterministic-ar.patch",),
    inputs=(busybox, tcc, make, patch),
    allowed_host_paths=MUSL_STATIC + LIBIBERTY_TMP + BINUTILS_DEFAULTS,
)

gcc = Package(
    "gcc",
    "3.4.6",
    "gcc.sh",
    sources=(GCC_SOURCE,),
    patches=("gcc-3.4.6-ucontext.patch",),
    inputs=(busybox, tcc, make, binutils, musl, linux_headers),
    allowed_host_paths=MUSL_STATIC + LIBIBERTY_TMP,
)
musl_by_gcc = Package(
    "musl",
    "1.2.3",
    "musl-gcc.sh",
    sources=(MUSL_SOURCE,),
    patches=("musl-gcc34.patch",),
    inputs=(busybox, gcc, binutils, make),
)
cc_musl = Package(
    "cc-musl",
    "3.4.6",
    "cc-musl.sh",
    inputs=(busybox, gcc, musl_by_gcc, linux_headers),
)

PACKAGES = (binutils, gcc, musl_by_gcc, cc_musl)
