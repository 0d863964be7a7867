"""Stage 4: what gcc 10 builds, at -O1 (see stage 3): binutils 2.40 and gcc 12.2, a current
compiler; and, by gcc 12 at -O2, Python 3.11 (with zlib) and GNU grep, which glibc's build
needs. All static against the store's musl. gcc 12 is the compiler that builds glibc (stage 5).
"""

from bootstrap.fetch import Source
from bootstrap.recipe import Package
from stages import stage2
from stages.gcc import gcc_tree
from stages.gnu import gnu_tool
from stages.host_paths import BINUTILS_240_DEFAULTS, LIBIBERTY_TMP, MUSL_STATIC, PYTHON_STRINGS
from stages.stage1 import busybox, make
from stages.stage2 import musl_by_gcc
from stages.stage3 import gcc10

BINUTILS_SOURCE = Source.of(
    "mirror://debian/pool/main/b/binutils/binutils_2.40.orig.tar.xz",
    "d78c2d2eb24a9be1e02f8854cb1bd435556d7f584fb6bfb6b07e6527d43fc41d",
)
GREP_SOURCE = Source.of(
    "mirror://debian/pool/main/g/grep/grep_3.8.orig.tar.xz",
    "498d7cc1b4fb081904d87343febb73475cf771e424fb7e6141aff66013abc382",
)
ZLIB_SOURCE = Source.of(
    "mirror://debian/pool/main/z/zlib/zlib_1.2.13.dfsg.orig.tar.bz2",
    "71feb7947e3c00ef125f83b79a4e529bde31171e5babe48b391f06758d1ab0a1",
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
    tools=(gcc10, make, stage2.binutils),
    optimize="-O1",
    configure="--disable-werror --disable-gprofng --disable-plugins --enable-deterministic-archives"
    " --without-zstd --without-debuginfod",
    make_flags="MAKEINFO=true",
    allowed_host_paths=MUSL_STATIC + LIBIBERTY_TMP + BINUTILS_240_DEFAULTS,
)

gcc12 = gcc_tree(
    "12.2.0",
    "gcc-on-musl.sh",
    tools=(gcc10, make, binutils, musl_by_gcc),
    host_optimize="-O1",
    optimize="-O2",
)
# what the rest of stage 4 and the build tools of stages 5 and 7 are built with
GCC12_TOOLS = (gcc12, make, binutils)


def zlib_by(tools: tuple[Package, ...]) -> Package:
    """zlib, a static library only, by `tools` (whose compiler is `gcc`) at -O2."""
    return Package(
        "zlib",
        "1.2.13",
        "zlib.sh",
        shell=busybox,
        sources=(ZLIB_SOURCE,),
        inputs=tools,
        env={"optimize": "-O2"},
    )


# for Python's zlib module (pip, wheels and Meson's own code need it)
zlib = zlib_by(GCC12_TOOLS)

PYTHON_NAMES = ("python", "python3")

python = Package(
    "python",
    "3.11.2",
    "python.sh",
    shell=busybox,
    sources=(PYTHON_SOURCE,),
    inputs=(*GCC12_TOOLS, zlib),
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
    tools=GCC12_TOOLS,
    configure="--disable-perl-regexp",
    make_flags="MAKEINFO=true",
)

PACKAGES = (binutils, gcc12, zlib, python, grep)
