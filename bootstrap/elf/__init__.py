"""ELF files as the loader sees them: read (inspect), change (patch), repair outputs (fixup).

A leaf layer: it imports only `bootstrap.errors`, so the builder and the audit can use it.
"""

from bootstrap.elf.fixup import FixupChange, FixupPolicy, FixupProblem, FixupReport, fixup_output
from bootstrap.elf.inspect import ElfError, ElfInfo, ElfKind, is_elf, read_elf
from bootstrap.elf.patch import ElfPatch, ElfPatcher, InPlacePatcher, LiefPatcher
from bootstrap.elf.paths import PathMap, find_library, shrink_search_path

__all__ = [
    "ElfError",
    "ElfInfo",
    "ElfKind",
    "ElfPatch",
    "ElfPatcher",
    "FixupChange",
    "FixupPolicy",
    "FixupProblem",
    "FixupReport",
    "InPlacePatcher",
    "LiefPatcher",
    "PathMap",
    "find_library",
    "fixup_output",
    "is_elf",
    "read_elf",
    "shrink_search_path",
]
