"""Stage 3: what the stage-2 gcc 3.4.6 builds. gcc 10.2, the newest gcc whose own sources are
C++98 (compiled unoptimized: see below), with gmp, mpfr and mpc built in its tree; and GNU m4,
bison, gawk and sed, which glibc's build needs. All static against the store's musl (as
live-bootstrap does before its libc changes).
"""

from bootstrap.fetch import Source
from bootstrap.recipe import Package
from stages.gnu import gnu_tool
from stages.host_paths import (
    GCC_DRIVER_LOADERS,
    GCC_SYSROOT_RELATIVE,
    LIBBACKTRACE_DEBUG,
    LIBIBERTY_TMP,
    MUSL_STATIC,
)
from stages.stage1 import busybox, make
from stages.stage2 import binutils, gcc, musl_by_gcc

GCC10_SOURCE = Source.of(
    "mirror://debian/pool/main/g/gcc-10/gcc-10_10.2.1.orig.tar.xz",
    "ea3c05faa381486e6b859c047dc14977418bf1ccda4567064e016493fd6fffec",
)
GMP_SOURCE = Source.of(
    "mirror://debian/pool/main/g/gmp/gmp_6.2.1+dfsg1.orig.tar.xz",
    "471b9e463e04362a0124f215afc5f0a4b99caedeeb62634c61bbc12988efa64c",
)
MPFR_SOURCE = Source.of(
    "mirror://debian/pool/main/m/mpfr4/mpfr4_4.2.0.orig.tar.xz",
    "06a378df13501248c1b2db5aa977a2c8126ae849a9d9b7be2546fb4a9c26d993",
)
MPC_SOURCE = Source.of(
    "mirror://debian/pool/main/m/mpclib3/mpclib3_1.3.1.orig.tar.gz",
    "ab642492f5cf882b74aa0cb730cd410a81edcdbec895183ce930e706c1c759b8",
)

M4_SOURCE = Source.of(
    "mirror://debian/pool/main/m/m4/m4_1.4.19.orig.tar.xz",
    "63aede5c6d33b6d9b13511cd0be2cac046f2e70fd0a07aa9573a04a82783af96",
)
BISON_SOURCE = Source.of(
    "mirror://debian/pool/main/b/bison/bison_3.8.2+dfsg.orig.tar.xz",
    "dff8a3c96dd34121828f62a7fa49e1f7765815b89e59f564e8d2a9e71c177be5",
)
GAWK_SOURCE = Source.of(
    "mirror://debian/pool/main/g/gawk/gawk_5.2.1.orig.tar.xz",
    "2337a0283b180ec1b9c727973a34781c6478b3ae9bcbdcca0a4dc49861d75a65",
)
SED_SOURCE = Source.of(
    "mirror://debian/pool/main/s/sed/sed_4.9.orig.tar.xz",
    "6e226b732e1cd739464ad6862bd1a1aba42d7982922da7a53519631d24975181",
)


def by_gcc346(name: str, version: str, source: Source, **kwargs) -> Package:
    """A GNU tool glibc's build needs, by the stage-2 gcc 3.4.6 at -O2."""
    return gnu_tool(name, version, source, compiler=gcc, binutils=binutils, **kwargs)


m4 = by_gcc346("m4", "1.4.19", M4_SOURCE)
bison = by_gcc346("bison", "3.8.2", BISON_SOURCE, patches=("bison-3.8.2-no-docs.sh",), inputs=(m4,))
# gawk's own getopt (in libsupport.a) and musl's both define getopt and its variables;
# `-z muldefs` keeps gawk's, which comes first. gawkbug is a bug-report mailer.
gawk = by_gcc346(
    "gawk",
    "5.2.1",
    GAWK_SOURCE,
    patches=("gawk-5.2.1-no-docs.sh",),
    configure="--disable-extensions --disable-pma LDFLAGS=-Wl,-z,muldefs",
    drop=("bin/gawkbug",),
)
sed = by_gcc346("sed", "4.9", SED_SOURCE)

gcc10 = Package(
    "gcc",
    "10.2.0",
    "gcc-on-musl.sh",
    sources=(GCC10_SOURCE, GMP_SOURCE, MPFR_SOURCE, MPC_SOURCE),
    files=("gcc-tree.sh",),
    patches=("gcc-10.2.0-plugin-api-musl.patch",),
    inputs=(busybox, gcc, make, binutils, musl_by_gcc),
    # compiled by g++ 3.4.6 at -O1 or -O2, gcc 10's cc1 never finishes compiling libgcc's
    # unwind-dw2.c at -O1 (and g++ 3.4.6 itself never finishes i386-common.c): its optimizer
    # miscompiles gcc 10. Compiled unoptimized, gcc 10 is right at -O1, but its -O2 drops a
    # live argument (IPA-SRA, found in Python; docs/stages.md), so nothing it builds, its own
    # runtime libraries included, is compiled above -O1.
    env={"hostOptimize": "-O0", "optimize": "-O1"},
    allowed_host_paths=(
        MUSL_STATIC + LIBIBERTY_TMP + GCC_SYSROOT_RELATIVE + GCC_DRIVER_LOADERS + LIBBACKTRACE_DEBUG
    ),
)

PACKAGES = (m4, bison, gawk, sed, gcc10)
