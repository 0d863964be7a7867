"""Reading ELF files: what kind of object a file is and what it asks of the dynamic loader.

Only 64-bit little-endian x86-64 files are accepted; everything else (non-ELF, truncated,
32-bit, other machines) raises `ElfError` with one line naming the file and the field at fault.
Reading never modifies anything; `bootstrap.elf.patch` does that.
"""

from __future__ import annotations

import enum
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError as _PyElfError
from elftools.construct.core import ConstructError
from elftools.elf.elffile import ELFFile

from bootstrap.errors import BootstrapError

ELF_MAGIC = b"\x7fELF"
_EHDR64_SIZE = 64
_ELFCLASS64 = 2
_ELFDATA2LSB = 1
_EM_X86_64 = 62
_DF_1_PIE = 0x08000000
_SHF_ALLOC = 0x2
_ELF_TYPES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
_MACHINE_NAMES = {3: "EM_386", 40: "EM_ARM", 62: "EM_X86_64", 183: "EM_AARCH64", 243: "EM_RISCV"}
_STRING_TAGS = {
    "DT_NEEDED": "needed",
    "DT_RPATH": "rpath",
    "DT_RUNPATH": "runpath",
    "DT_SONAME": "soname",
}
_PARSE_ERRORS = (_PyElfError, ConstructError, struct.error, ValueError, IndexError, KeyError)


class ElfError(BootstrapError):
    """A file that is not a readable 64-bit x86-64 ELF object."""


class ElfKind(enum.Enum):
    STATIC_EXECUTABLE = "static"
    STATIC_PIE = "static-pie"
    DYNAMIC_EXECUTABLE = "dynamic"
    SHARED_LIBRARY = "shared-library"
    RELOCATABLE = "relocatable"
    OTHER = "other"


@dataclass(frozen=True)
class ElfInfo:
    """What one ELF file asks of the loader. Search paths are kept as written (with $ORIGIN)."""

    path: Path
    elf_type: str
    kind: ElfKind
    interpreter: str | None
    needed: tuple[str, ...]
    rpath: str | None
    runpath: str | None
    soname: str | None

    @property
    def search_path(self) -> tuple[str, ...]:
        """Directories the loader tries for DT_NEEDED: RUNPATH, else RPATH (split on ':')."""
        value = self.runpath if self.runpath is not None else self.rpath
        return tuple(entry for entry in (value or "").split(":") if entry)

    @property
    def is_dynamic(self) -> bool:
        return self.kind in (ElfKind.DYNAMIC_EXECUTABLE, ElfKind.SHARED_LIBRARY)


def is_elf(path: Path) -> bool:
    """True if `path` is a regular file starting with the ELF magic (any class or machine)."""
    try:
        with open(path, "rb") as stream:
            return stream.read(4) == ELF_MAGIC
    except OSError:
        return False


def read_elf(path: Path) -> ElfInfo:
    """Read the header, program headers and dynamic section of a 64-bit x86-64 ELF file.

    Raises ElfError for non-ELF, truncated, 32-bit, big-endian or foreign-machine files.
    """
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            _check_header(path, stream.read(_EHDR64_SIZE))
            stream.seek(0)
            return _read_parsed(path, ELFFile(stream), os.fstat(stream.fileno()).st_size)
    except OSError as err:
        raise ElfError(f"{path}: cannot read: {err.strerror}") from None
    except _PARSE_ERRORS as err:
        raise ElfError(f"{path}: malformed ELF ({err}); expected a valid ELF64 file") from None


def _check_header(path: Path, header: bytes) -> None:
    if header[:4] != ELF_MAGIC:
        raise ElfError(f"{path}: not an ELF file (magic {header[:4]!r}, expected {ELF_MAGIC!r})")
    if len(header) < _EHDR64_SIZE:
        raise ElfError(f"{path}: truncated ELF header ({len(header)} of {_EHDR64_SIZE} bytes)")
    if header[4] != _ELFCLASS64:
        bits = "32-bit" if header[4] == 1 else f"class {header[4]}"
        raise ElfError(f"{path}: EI_CLASS is {bits}; expected ELFCLASS64 (64-bit)")
    if header[5] != _ELFDATA2LSB:
        raise ElfError(f"{path}: EI_DATA is {header[5]}; expected ELFDATA2LSB (little-endian)")
    machine = struct.unpack_from("<H", header, 18)[0]
    if machine != _EM_X86_64:
        name = _MACHINE_NAMES.get(machine, str(machine))
        raise ElfError(f"{path}: e_machine is {name}; expected EM_X86_64")


def _read_parsed(path: Path, elf: ELFFile, size: int) -> ElfInfo:
    _check_extents(path, elf, size)
    _check_layout(path, elf)
    elf_type = _ELF_TYPES.get(elf.header["e_type"], str(elf.header["e_type"]))
    interpreter = None
    tags: dict[str, list] = {}
    has_dynamic = False
    for segment in elf.iter_segments():
        if segment["p_type"] == "PT_INTERP":
            interpreter = segment.get_interp_name()
        elif segment["p_type"] == "PT_DYNAMIC":
            has_dynamic = True
            tags = _dynamic_tags(segment)
    soname = _first(tags.get("DT_SONAME"))
    is_pie = any(flags & _DF_1_PIE for flags in tags.get("DT_FLAGS_1", ()))
    return ElfInfo(
        path=path,
        elf_type=elf_type,
        kind=_classify(elf_type, has_dynamic, interpreter, is_pie, soname),
        interpreter=interpreter,
        needed=tuple(tags.get("DT_NEEDED", ())),
        rpath=_first(tags.get("DT_RPATH")),
        runpath=_first(tags.get("DT_RUNPATH")),
        soname=soname,
    )


def _check_extents(path: Path, elf: ELFFile, size: int) -> None:
    """Refuse files whose header tables or segments reach past the end of the file."""
    header = elf.header
    tables = (
        ("program header table", header["e_phoff"], header["e_phnum"] * header["e_phentsize"]),
        ("section header table", header["e_shoff"], header["e_shnum"] * header["e_shentsize"]),
    )
    for what, offset, length in tables:
        if length and offset + length > size:
            raise ElfError(f"{path}: truncated: {what} ends at {offset + length}, file is {size}")
    for index, segment in enumerate(elf.iter_segments()):
        end = segment["p_offset"] + segment["p_filesz"]
        if segment["p_filesz"] and end > size:
            raise ElfError(f"{path}: truncated: segment {index} ends at {end}, file is {size}")


def _check_layout(path: Path, elf: ELFFile) -> None:
    """Refuse files whose loaded sections are not where their LOAD segment maps them.

    This is what `strip` leaves when run on a lief-patched non-PIE executable: the program
    headers say one thing, the sections another, and the program crashes in ld.so.
    """
    loads = [seg.header for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD"]
    for section in elf.iter_sections():
        header = section.header
        if not header["sh_flags"] & _SHF_ALLOC or header["sh_type"] == "SHT_NOBITS":
            continue
        address, offset = header["sh_addr"], header["sh_offset"]
        for index, load in enumerate(loads):
            if load["p_vaddr"] <= address < load["p_vaddr"] + load["p_filesz"]:
                if address - load["p_vaddr"] != offset - load["p_offset"]:
                    raise ElfError(
                        f"{path}: section {section.name} (address {address:#x}, offset "
                        f"{offset:#x}) is not where LOAD segment {index} maps it; "
                        "was it stripped after patching?"
                    )
                break


def _dynamic_tags(segment) -> dict[str, list]:
    values: dict[str, list] = {}
    for tag in segment.iter_tags():
        kind = tag.entry.d_tag
        if kind == "DT_NULL":
            break
        if kind in _STRING_TAGS:
            values.setdefault(kind, []).append(getattr(tag, _STRING_TAGS[kind]))
        elif kind == "DT_FLAGS_1":
            values.setdefault(kind, []).append(tag.entry.d_val)
    return values


def _classify(
    elf_type: str, has_dynamic: bool, interpreter: str | None, is_pie: bool, soname: str | None
) -> ElfKind:
    if elf_type == "ET_REL":
        return ElfKind.RELOCATABLE
    if elf_type not in ("ET_EXEC", "ET_DYN"):
        return ElfKind.OTHER
    if not has_dynamic:
        return ElfKind.STATIC_EXECUTABLE
    if interpreter is not None:
        # libc.so.6 carries PT_INTERP to be runnable but is a library (SONAME, no DF_1_PIE).
        runnable_library = elf_type == "ET_DYN" and soname is not None and not is_pie
        return ElfKind.SHARED_LIBRARY if runnable_library else ElfKind.DYNAMIC_EXECUTABLE
    if elf_type == "ET_EXEC" or is_pie:
        return ElfKind.STATIC_PIE if elf_type == "ET_DYN" else ElfKind.STATIC_EXECUTABLE
    return ElfKind.SHARED_LIBRARY


def _first(values: list | None) -> str | None:
    return values[0] if values else None
