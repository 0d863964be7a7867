"""The tables of an ELF64 little-endian file, read with `struct`: header, program headers,
section headers and the dynamic table, plus what the loader reads from them.

pyelftools (`bootstrap.elf.inspect`) parses the same tables through `construct`, about 10 ms
per file; the in-place writer (`bootstrap.elf.inplace`) needs them twice per file (to plan
and to read back), so it reads them here in well under a millisecond. Anything this reader
does not understand raises `LayoutError`; callers then fall back to the full reader.
"""

from __future__ import annotations

import os
import struct
from dataclasses import astuple, dataclass
from pathlib import Path

from bootstrap.elf.inspect import _DF_1_PIE, _ELF_TYPES, ElfInfo, _check_header, _classify

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")
SHDR = struct.Struct("<IIQQQQIIQQ")
DYN = struct.Struct("<qQ")

PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
SHT_NOBITS = 8
SHF_ALLOC = 0x2
DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ, DT_SONAME, DT_RPATH, DT_RUNPATH = 0, 1, 5, 10, 14, 15, 29
DT_FLAGS_1 = 0x6FFFFFFB
_STRING_READ = 4096
_PN_XNUM = 0xFFFF


class LayoutError(Exception):
    """Something this reader does not handle; the caller uses the full reader instead."""


@dataclass(eq=False)
class Segment:
    type: int
    flags: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int
    memsz: int
    align: int

    @property
    def end_offset(self) -> int:
        return self.offset + self.filesz

    @property
    def end_vaddr(self) -> int:
        return self.vaddr + self.memsz

    def maps(self, address: int) -> bool:
        return self.vaddr <= address < self.vaddr + self.filesz


@dataclass(eq=False)
class Section:
    name: int
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int

    @property
    def file_size(self) -> int:
        return 0 if self.type == SHT_NOBITS else self.size


class Layout:
    """The tables of one open file; `fd` stays owned by the caller."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.size = os.fstat(fd).st_size
        header = os.pread(fd, EHDR.size, 0)
        try:
            _check_header(path, header)
        except Exception as err:
            raise LayoutError(str(err)) from None
        fields = EHDR.unpack(header)
        self.e_type = fields[1]
        self.phoff, self.shoff = fields[5], fields[6]
        phentsize, self.phnum, shentsize, self.shnum = fields[9], fields[10], fields[11], fields[12]
        if (self.phnum and phentsize != PHDR.size) or (self.shnum and shentsize != SHDR.size):
            raise LayoutError("unusual header entry sizes")
        if self.phnum == _PN_XNUM or (self.shnum == 0 and self.shoff):
            raise LayoutError("extended header numbering")
        self.segments = [Segment(*row) for row in self._table(self.phoff, self.phnum, PHDR)]
        self.sections = [Section(*row) for row in self._table(self.shoff, self.shnum, SHDR)]
        for segment in self.segments:
            if segment.filesz and segment.end_offset > self.size:
                raise LayoutError("a segment reaches past the end of the file")
        self.dynamic_segment = self._only(PT_DYNAMIC)
        self.interp_segment = self._only(PT_INTERP)
        self.dynamic: list[list[int]] = []
        if self.dynamic_segment is not None:
            rows = self._table(
                self.dynamic_segment.offset, self.dynamic_segment.filesz // DYN.size, DYN
            )
            self.dynamic = [list(row) for row in rows]

    def _table(self, offset: int, count: int, shape: struct.Struct) -> list[tuple]:
        data = os.pread(self.fd, count * shape.size, offset)
        if len(data) != count * shape.size:
            raise LayoutError("a header table reaches past the end of the file")
        return list(shape.iter_unpack(data))

    def _only(self, kind: int) -> Segment | None:
        found = [segment for segment in self.segments if segment.type == kind]
        if len(found) > 1:
            raise LayoutError(f"{len(found)} segments of type {kind}")
        return found[0] if found else None

    @property
    def loads(self) -> list[Segment]:
        return [segment for segment in self.segments if segment.type == PT_LOAD]

    @property
    def used_dynamic(self) -> int:
        """How many dynamic entries come before the first DT_NULL."""
        for index, (tag, _) in enumerate(self.dynamic):
            if tag == DT_NULL:
                return index
        raise LayoutError("the dynamic table has no DT_NULL")

    def tag(self, tag: int) -> int | None:
        return next((v for t, v in self.dynamic[: self.used_dynamic] if t == tag), None)

    def load_of(self, address: int) -> Segment:
        load = next((load for load in self.loads if load.maps(address)), None)
        if load is None:
            raise LayoutError(f"address {address:#x} is in no LOAD segment")
        return load

    def offset_of(self, address: int) -> int:
        load = self.load_of(address)
        return address - load.vaddr + load.offset

    @property
    def strtab_offset(self) -> int:
        strtab = self.tag(DT_STRTAB)
        if strtab is None:
            raise LayoutError("no DT_STRTAB")
        return self.offset_of(strtab)

    def c_string(self, offset: int) -> bytes:
        data = b""
        while b"\0" not in data:
            chunk = os.pread(self.fd, _STRING_READ, offset + len(data))
            if not chunk:
                raise LayoutError("a string runs past the end of the file")
            data += chunk
        return data[: data.index(b"\0")]

    def dynamic_string(self, value: int) -> str:
        return self.c_string(self.strtab_offset + value).decode("utf-8", "surrogateescape")

    @property
    def interpreter(self) -> str | None:
        if self.interp_segment is None:
            return None
        return self.c_string(self.interp_segment.offset).decode("utf-8", "surrogateescape")

    def info(self) -> ElfInfo:
        """What `read_elf` would say; LayoutError for what only `read_elf` should judge."""
        self.check_sections_mapped()
        strings: dict[int, list[str]] = {}
        flags_1 = 0
        has_dynamic = self.dynamic_segment is not None
        if has_dynamic:
            for tag, value in self.dynamic[: self.used_dynamic]:
                if tag in (DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH):
                    strings.setdefault(tag, []).append(self.dynamic_string(value))
                elif tag == DT_FLAGS_1:
                    flags_1 |= value
        elf_type = _ELF_TYPES.get(self.e_type, str(self.e_type))
        soname = strings.get(DT_SONAME, [None])[0]
        interpreter = self.interpreter
        is_pie = bool(flags_1 & _DF_1_PIE)
        return ElfInfo(
            path=self.path,
            elf_type=elf_type,
            kind=_classify(elf_type, has_dynamic, interpreter, is_pie, soname),
            interpreter=interpreter,
            needed=tuple(strings.get(DT_NEEDED, ())),
            rpath=strings.get(DT_RPATH, [None])[0],
            runpath=strings.get(DT_RUNPATH, [None])[0],
            soname=soname,
        )

    def check_sections_mapped(self) -> None:
        """Every loaded section lies where its LOAD segment maps it (what `strip` after a
        rewriting patcher breaks); `read_elf` makes the same check with its own message."""
        loads = self.loads
        for section in self.sections:
            if not section.flags & SHF_ALLOC or section.type == SHT_NOBITS:
                continue
            for load in loads:
                if load.maps(section.addr):
                    if section.addr - load.vaddr != section.offset - load.offset:
                        raise LayoutError("a section is not where its LOAD segment maps it")
                    break

    def packed_segments(self) -> bytes:
        return b"".join(PHDR.pack(*astuple(segment)) for segment in self.segments)

    def packed_sections(self) -> bytes:
        return b"".join(SHDR.pack(*astuple(section)) for section in self.sections)

    def packed_dynamic(self) -> bytes:
        return b"".join(DYN.pack(tag, value) for tag, value in self.dynamic)
