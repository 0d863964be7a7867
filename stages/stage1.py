"""Stage 1: what the seed's tcc builds, from the same pinned sources as the seed itself.

Each row: package, version, builder script (in `builders/`), sources, patches (in `patches/`),
and the packages it is built with (their `bin/` on PATH in this order, so the newest tools come
first; the shell is the first input unless named).
"""

from bootstrap.fetch import Source
from bootstrap.recipe import Package
from stages.host_paths import BUSYBOX_APPLETS, MAKE_SEARCH, MUSL_STATIC
from stages.stage0 import MANIFEST, seed


def seed_source(unpack_to: str) -> Source:
    """A source pinned in the seed manifest, so stage 1 rebuilds exactly what the seed holds."""
    return MANIFEST.source(unpack_to).as_fetch_source()


PATCH_SOURCE = Source.of(
    "mirror://debian/pool/main/p/patch/patch_2.7.6.orig.tar.xz",
    "ac610bda97abe0d9f6b7c963255a11dcb196c25e337c61f94e4778d632f1d8fd",
)

MUSL_SOURCE = seed_source("musl")

linux_headers = Package("linux-headers", "6.1.176", "linux-headers.sh", inputs=(seed,))
musl = Package(
    "musl",
    "1.2.3",
    "musl.sh",
    sources=(MUSL_SOURCE,),
    patches=("musl-tcc.patch",),
    inputs=(seed,),
)
tcc = Package(
    "tcc",
    "0.9.27",
    "tcc.sh",
    sources=(seed_source("tcc"),),
    patches=("tcc-seed.patch",),
    files=("tcc-cc.in",),
    inputs=(seed, musl, linux_headers),
    allowed_host_paths=MUSL_STATIC,
)
make = Package(
    "make",
    "4.3",
    "make.sh",
    sources=(seed_source("make"),),
    patches=("make-seed.patch",),
    inputs=(tcc, seed),
    shell=seed,
    allowed_host_paths=MUSL_STATIC + MAKE_SEARCH,
)
busybox = Package(
    "busybox",
    "1.35.0",
    "busybox.sh",
    sources=(seed_source("busybox"),),
    patches=("busybox-seed.patch",),
    inputs=(tcc, make, seed),
    shell=seed,
    allowed_host_paths=MUSL_STATIC + BUSYBOX_APPLETS,
)
patch = Package(
    "patch",
    "2.7.6",
    "patch.sh",
    sources=(PATCH_SOURCE,),
    inputs=(busybox, tcc, make),
    allowed_host_paths=MUSL_STATIC,
)

PACKAGES = (linux_headers, musl, tcc, make, busybox, patch)
