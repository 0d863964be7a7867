"""Handing a closure over to another builder: a Nix binary cache or a plain tar archive."""

from bootstrap.export.binary_cache import CacheExport, NarInfo, export_binary_cache
from bootstrap.export.closure_tar import TarExport, export_closure_tar
from bootstrap.export.files import COMPRESSIONS
from bootstrap.export.roots import stage_outputs, store_path_root

__all__ = [
    "COMPRESSIONS",
    "CacheExport",
    "NarInfo",
    "TarExport",
    "export_binary_cache",
    "export_closure_tar",
    "stage_outputs",
    "store_path_root",
]
