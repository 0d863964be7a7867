"""Stage 0: the seed archive pinned in `seeds/x86_64-linux.json`, unpacked into the store."""

from bootstrap.recipe import Seed
from bootstrap.seed.manifest import load_manifest, pinned_hash, pinned_tree_hash
from stages import host_paths

MANIFEST = load_manifest()

seed = Seed(
    name="seed",
    archive_hash=pinned_hash(MANIFEST),
    tree_hash=pinned_tree_hash(MANIFEST),
    urls=MANIFEST.archive_urls,
    strip_top=True,
    allowed_host_paths=host_paths.SEED,
)
