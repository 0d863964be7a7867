"""The modern gccs of the chain (10.2 and 12.2), as one recipe shape: gcc's source tree with
gmp, mpfr and mpc built inside it (builders/gcc-tree.sh), configured by one of two builders:
gcc-on-musl.sh, a native compiler for the store's musl, or gcc-for-glibc.sh, a compiler (itself
a static musl program) for the store's glibc.
"""

from collections.abc import Mapping

from bootstrap.fetch import Source
from bootstrap.recipe import Package
from stages.host_paths import (
    GCC_DRIVER_LOADERS,
    GCC_SYSROOT_RELATIVE,
    LIBBACKTRACE_DEBUG,
    LIBIBERTY_TMP,
    MUSL_STATIC,
)
from stages.stage1 import busybox

RELEASES = {
    "10.2.0": Source.of(
        "mirror://debian/pool/main/g/gcc-10/gcc-10_10.2.1.orig.tar.xz",
        "ea3c05faa381486e6b859c047dc14977418bf1ccda4567064e016493fd6fffec",
    ),
    "12.2.0": Source.of(
        "mirror://debian/pool/main/g/gcc-12/gcc-12_12.2.0.orig.tar.gz",
        "b8298be16aeeb96a889c6afed0a8e2241b47452e89cc81fe65ea849d5c740fcb",
    ),
}
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

# what a gcc's files name: libiberty's and libbacktrace's fallbacks, the driver's
# sysroot-relative directories and the loaders of the other targets it knows
GCC_STRINGS = (
    MUSL_STATIC + LIBIBERTY_TMP + GCC_SYSROOT_RELATIVE + GCC_DRIVER_LOADERS + LIBBACKTRACE_DEBUG
)


def gcc_tree(
    version: str,
    builder: str,
    *,
    tools: tuple[Package, ...],
    host_optimize: str,
    optimize: str,
    patches: tuple[str, ...] = (),
    profiles: Mapping[str, Mapping[str, str]] | None = None,
    libc: Package | None = None,
    allowed_host_paths: tuple[str, ...] = GCC_STRINGS,
) -> Package:
    """gcc `version` built by `tools` (a gcc as `gcc`/`g++`, make, binutils, the libc it
    targets); `host_optimize` for the compiler's own code, `optimize` for its runtime libraries."""
    return Package(
        "gcc",
        version,
        builder,
        shell=busybox,
        sources=(RELEASES[version], GMP_SOURCE, MPFR_SOURCE, MPC_SOURCE),
        files=("gcc-tree.sh",),
        patches=patches,
        inputs=tools,
        env={"hostOptimize": host_optimize, "optimize": optimize},
        profiles=profiles or {},
        libc=libc,
        allowed_host_paths=allowed_host_paths,
    )
