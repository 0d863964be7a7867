"""Stage 0: the seed archive pinned in `seeds/x86_64-linux.json`, unpacked into the store."""

from bootstrap.recipe import Seed
from bootstrap.seed import load_manifest
from stages import host_paths

MANIFEST = load_manifest()

seed = Seed(
    name="seed",
    archive_hash=MANIFEST.archive_sha256,
    tree_hash=MANIFEST.tree_sha256,
    urls=MANIFEST.archive_urls,
    strip_top=True,
    allowed_host_paths=host_paths.SEED,
)
