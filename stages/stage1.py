"""Stage 1: what the seed's tcc builds, from the same pinned sources as the seed itself.

Each row: package, version, builder script (in `builders/`), the shell that runs it, sources,
patches (in `patches/`), and the packages it is built with (their `bin/` on PATH in this order
after the shell's, so the newest tools come first; where the seed's own tcc or make would shadow
a new one, the seed is placed last among them).
"""

from bootstrap.fetch import Source
from bootstrap.recipe import Package, PinnedSource
from stages.host_paths import BUSYBOX_APPLETS, MAKE_SEARCH, MUSL_STATIC
from stages.stage0 import MANIFEST, seed


def seed_source(unpack_to: str) -> PinnedSource:
    """A source pinned in the seed manifest, so stage 1 rebuilds exactly what the seed holds."""
    return PinnedSource(MANIFEST, unpack_to)


PATCH_SOURCE = Source.of(
    "mirror://debian/pool/main/p/patch/patch_2.7.6.orig.tar.xz",
    "ac610bda97abe0d9f6b7c963255a11dcb196c25e337c61f94e4778d632f1d8fd",
)

MUSL_SOURCE = seed_source("musl")

linux_headers = Package("linux-headers", "6.1.176", "linux-headers.sh", shell=seed)
musl = Package(
    "musl",
    "1.2.3",
    "musl.sh",
    shell=seed,
    sources=(MUSL_SOURCE,),
    patches=("musl-tcc.patch",),
)
tcc = Package(
    "tcc",
    "0.9.27",
    "tcc.sh",
    shell=seed,
    sources=(seed_source("tcc"),),
    patches=("tcc-seed.patch",),
    files=("tcc-cc.in",),
    inputs=(musl, linux_headers),
    allowed_host_paths=MUSL_STATIC,
)
make = Package(
    "make",
    "4.3",
    "make.sh",
    shell=seed,
    sources=(seed_source("make"),),
    patches=("make-seed.patch",),
    inputs=(tcc, seed),
    allowed_host_paths=MUSL_STATIC + MAKE_SEARCH,
)
# the tools every later stage-1 and stage-2 package is built with
TCC_TOOLS = (tcc, make)
busybox = Package(
    "busybox",
    "1.35.0",
    "busybox.sh",
    shell=seed,
    sources=(seed_source("busybox"),),
    patches=("busybox-seed.patch",),
    inputs=(*TCC_TOOLS, seed),
    allowed_host_paths=MUSL_STATIC + BUSYBOX_APPLETS,
)
patch = Package(
    "patch",
    "2.7.6",
    "patch.sh",
    shell=busybox,
    sources=(PATCH_SOURCE,),
    inputs=TCC_TOOLS,
    allowed_host_paths=MUSL_STATIC,
)

PACKAGES = (linux_headers, musl, tcc, make, busybox, patch)
