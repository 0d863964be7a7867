"""The content-addressed store: database, adding paths, locks, closures, GC and verification."""

from bootstrap.store.db import PathInfo
from bootstrap.store.store import Store, default_root, default_store_dir

__all__ = ["PathInfo", "Store", "default_root", "default_store_dir"]
