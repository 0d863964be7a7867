"""Stage 0: the seed archive pinned in `seeds/x86_64-linux.json`, unpacked into the store. The
manifest is read when the recipes are evaluated, not when they are loaded."""

from bootstrap.recipe import Seed
from bootstrap.seed.manifest import default_manifest
from stages import host_paths

MANIFEST = default_manifest("x86_64-linux")

seed = Seed(
    name="seed",
    manifest=MANIFEST,
    strip_top=True,
    allowed_host_paths=host_paths.SEED,
)
