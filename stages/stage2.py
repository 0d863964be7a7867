"""Stage 2: from C to C++. tcc builds binutils 2.16.1 and gcc 3.4.6 (gcc-core); gcc-core
rebuilds musl, and, wrapped as cc-musl, gcc 3.4.6 again with libstdc++.

Debian's `binutils-h8300-hms` and `gcc-h8300-hms` orig tarballs are complete upstream trees of
these releases (x86-64 supported natively; generated parsers shipped, so no bison is needed).
Everything is static.
"""

from bootstrap.fetch import Source
from bootstrap.recipe import Package
from stages.host_paths import BINUTILS_DEFAULTS, LIBIBERTY_TMP, MUSL_STATIC
from stages.stage1 import MUSL_SOURCE, TCC_TOOLS, busybox, linux_headers, make, musl, patch

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
    shell=busybox,
    patches=("binutils-2.16.1-deterministic-ar.patch",),
    inputs=(*TCC_TOOLS, patch),
    allowed_host_paths=MUSL_STATIC + LIBIBERTY_TMP + BINUTILS_DEFAULTS,
)


def gcc346(name: str, inputs: tuple[Package, ...], env: dict[str, str]) -> Package:
    """gcc 3.4.6 by builders/gcc.sh; `env` names the C compiler that builds it ($CC, $CFLAGS)
    and whether libstdc++ is built too ($withLibstdcxx)."""
    return Package(
        name,
        "3.4.6",
        "gcc.sh",
        shell=busybox,
        sources=(GCC_SOURCE,),
        patches=("gcc-3.4.6-ucontext.patch",),
        inputs=inputs,
        env=env,
        allowed_host_paths=MUSL_STATIC + LIBIBERTY_TMP,
    )


gcc_core = gcc346(
    "gcc-core",
    (*TCC_TOOLS, binutils, musl, linux_headers),
    {"CC": "tcc-cc", "CFLAGS": ""},
)
musl_by_gcc = Package(
    "musl",
    "1.2.3",
    "musl-gcc.sh",
    sources=(MUSL_SOURCE,),
    shell=busybox,
    patches=("musl-gcc34.patch",),
    inputs=(gcc_core, binutils, make),
)
cc_musl = Package(
    "cc-musl",
    "3.4.6",
    "cc-musl.sh",
    shell=busybox,
    inputs=(gcc_core, musl_by_gcc, linux_headers),
)
# gcc again, compiled by gcc (cc-musl): the cc1plus tcc compiles never finishes compiling
# libstdc++'s libsupc++/tinfo2.cc, the one gcc compiles builds all of libstdc++ in 40 s.
gcc = gcc346(
    "gcc",
    (cc_musl, make, binutils, musl_by_gcc, linux_headers),
    {"CC": "cc", "CFLAGS": "-O2", "withLibstdcxx": "1"},
)

# what stage 3's packages are built with: gcc 3.4.6 (static against musl_by_gcc)
GCC346_TOOLS = (gcc, make, binutils)

PACKAGES = (binutils, gcc_core, musl_by_gcc, cc_musl, gcc)
