"""Stage 5: glibc 2.36, by gcc 12 with binutils 2.40, with the tools its build needs from
stages 3 and 4 (make, gawk, bison, sed, Python) and the Linux UAPI headers.
"""

from bootstrap.fetch import Source
from bootstrap.recipe import Package
from stages.host_paths import GLIBC_DEFAULTS
from stages.stage1 import busybox, linux_headers, patch
from stages.stage3 import bison, gawk, sed
from stages.stage4 import GCC12_TOOLS, grep, python

GLIBC_SOURCE = Source.of(
    "mirror://debian/pool/main/g/glibc/glibc_2.36.orig.tar.xz",
    "a543c02070d46ccaf866957efd13f10c924daa74c86a90a0254db09a92a708ee",
)

glibc = Package(
    "glibc",
    "2.36",
    "glibc.sh",
    shell=busybox,
    sources=(GLIBC_SOURCE,),
    patches=("glibc-2.36-store-preload.patch",),
    inputs=(*GCC12_TOOLS, patch, gawk, bison, sed, grep, python, linux_headers),
    env={"optimize": "-O2"},
    loader="lib/ld-linux-x86-64.so.2",
    allowed_host_paths=GLIBC_DEFAULTS,
)

PACKAGES = (glibc,)
