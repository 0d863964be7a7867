"""Stage 4: what gcc 10 builds, at -O1 (see stage 3): binutils 2.40 and gcc 12.2, a current
compiler; and, by gcc 12 at -O2, Python 3.11 and GNU grep, which glibc's build needs. All
static against the store's musl. gcc 12 is the compiler that builds glibc (stage 5).
"""

from bootstrap.fetch import Source
from bootstrap.recipe import Package
from stages import stage2
from stages.gnu import gnu_tool
from stages.host_paths import (
    BINUTILS_240_DEFAULTS,
    GCC_DRIVER_LOADERS,
    GCC_SYSROOT_RELATIVE,
    LIBBACKTRACE_DEBUG,
    LIBIBERTY_TMP,
    MUSL_STATIC,
    PYTHON_STRINGS,
)
from stages.stage1 import busybox, make
from stages.stage2 import musl_by_gcc
from stages.stage3 import GMP_SOURCE, MPC_SOURCE, MPFR_SOURCE, gcc10

BINUTILS_SOURCE = Source.of(
    "mirror://debian/pool/main/b/binutils/binutils_2.40.orig.tar.xz",
    "d78c2d2eb24a9be1e02f8854cb1bd435556d7f584fb6bfb6b07e6527d43fc41d",
)
GCC12_SOURCE = Source.of(
    "mirror://debian/pool/main/g/gcc-12/gcc-12_12.2.0.orig.tar.gz",
    "b8298be16aeeb96a889c6afed0a8e2241b47452e89cc81fe65ea849d5c740fcb",
)
GREP_SOURCE = Source.of(
    "mirror://debian/pool/main/g/grep/grep_3.8.orig.tar.xz",
    "498d7cc1b4fb081904d87343febb73475cf771e424fb7e6141aff66013abc382",
)
PYTHON_SOURCE = Source.of(
    "mirror://debian/pool/main/p/python3.11/python3.11_3.11.2.orig.tar.gz",
    "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849",
)

# No gprofng (C++ with threads, unneeded), no plugins (a static ld cannot dlopen them).
binutils = gnu_tool(
    "binutils",
    "2.40",
    BINUTILS_SOURCE,
    compiler=gcc10,
    binutils=stage2.binutils,
    optimize="-O1",
    configure="--disable-werror --disable-gprofng --disable-plugins --enable-deterministic-archives"
    " --without-zstd --without-debuginfod",
    make_flags="MAKEINFO=true",
    allowed_host_paths=MUSL_STATIC + LIBIBERTY_TMP + BINUTILS_240_DEFAULTS,
)

gcc12 = Package(
    "gcc",
    "12.2.0",
    "gcc-on-musl.sh",
    sources=(GCC12_SOURCE, GMP_SOURCE, MPFR_SOURCE, MPC_SOURCE),
    files=("gcc-tree.sh",),
    inputs=(busybox, gcc10, make, binutils, musl_by_gcc),
    env={"hostOptimize": "-O1", "optimize": "-O2"},
    allowed_host_paths=(
        MUSL_STATIC + LIBIBERTY_TMP + GCC_SYSROOT_RELATIVE + GCC_DRIVER_LOADERS + LIBBACKTRACE_DEBUG
    ),
)

PYTHON_NAMES = ("python", "python3")

python = Package(
    "python",
    "3.11.2",
    "python.sh",
    sources=(PYTHON_SOURCE,),
    inputs=(busybox, gcc12, make, binutils),
    env={"optimize": "-O2"},
    allowed_host_paths=MUSL_STATIC + PYTHON_STRINGS,
    # the standard library's scripts name /usr/bin/env python3, python or /usr/local/bin/python
    shebangs=dict.fromkeys(PYTHON_NAMES, "bin/python3"),
)

# GNU grep: glibc's build needs `grep -b` (byte offsets), which busybox's grep lacks
grep = gnu_tool(
    "grep",
    "3.8",
    GREP_SOURCE,
    compiler=gcc12,
    binutils=binutils,
    configure="--disable-perl-regexp",
    make_flags="MAKEINFO=true",
)

PACKAGES = (binutils, gcc12, python, grep)
