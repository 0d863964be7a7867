"""Stage 3: what the stage-2 gcc 3.4.6 builds. gcc 10.2, the newest gcc whose own sources are
C++98 (compiled unoptimized: see below), with gmp, mpfr and mpc built in its tree; and GNU m4,
bison, gawk and sed, which glibc's build needs. All static against the store's musl (as
live-bootstrap does before its libc changes).
"""

from bootstrap.fetch import Source
from bootstrap.recipe import Package
from stages.gcc import gcc_tree
from stages.gnu import gnu_tool
from stages.stage2 import GCC346_TOOLS, musl_by_gcc

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
    return gnu_tool(name, version, source, tools=GCC346_TOOLS, **kwargs)


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

# compiled by g++ 3.4.6 at -O1 or -O2, gcc 10's cc1 never finishes compiling libgcc's
# unwind-dw2.c at -O1 (and g++ 3.4.6 itself never finishes i386-common.c): its optimizer
# miscompiles gcc 10. Compiled unoptimized, gcc 10 is right at -O1, but its -O2 drops a live
# argument (IPA-SRA, found in Python; docs/stages.md), so nothing it builds, its own runtime
# libraries included, is compiled above -O1.
gcc10 = gcc_tree(
    "10.2.0",
    "gcc-on-musl.sh",
    tools=(*GCC346_TOOLS, musl_by_gcc),
    host_optimize="-O0",
    optimize="-O1",
    patches=("gcc-10.2.0-plugin-api-musl.patch",),
)

PACKAGES = (m4, bison, gawk, sed, gcc10)
