"""Writing a new interpreter and RUNPATH into an ELF file without rebuilding it.

`plan_writes(layout, interpreter, runpath)` returns the byte ranges to overwrite in a copy of
the file, or None when it has no room (then lief rebuilds it). Room, in order of preference:

- the old string itself: an interpreter or RUNPATH no longer than the old one is written over
  it, padded with NULs (a RUNPATH may take over an old DT_RPATH string);
- the file's slack after the LOAD segment that holds .dynstr (with `-z separate-code`, the
  zero padding up to the next page-aligned segment, a few hundred to 4000 bytes): a longer
  RUNPATH is appended to .dynstr, and the sections that follow .dynstr in that segment
  (.gnu.version, .gnu.version_r, .rela.dyn, .rela.plt, ...: tables the loader finds through
  dynamic tags only) slide up by its size, aligned. The segment's sizes, the moved sections'
  headers and the dynamic tags that point at them follow; code and data do not move;
- otherwise a copy of .dynstr with the new string at its end, in the slack after a read-only
  segment; a longer interpreter goes to such slack too;
- otherwise a new read-only LOAD segment at the end of the file, starting on a page, whose
  program header takes the slot of a PT_NOTE that repeats PT_GNU_PROPERTY (the file grows by
  the padding to that page, the copied .dynstr and the strings, as patchelf's does);
- a DT_RUNPATH entry, when there was none, goes into a spare DT_NULL slot of the dynamic
  table (GNU ld leaves several).

The replaced strings are zeroed, so stale host paths do not stay in the file. The result is a
pure function of the input bytes and the patch (deterministic).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

from bootstrap.elf.layout import (
    DT_NEEDED,
    DT_NULL,
    DT_RPATH,
    DT_RUNPATH,
    DT_SONAME,
    DT_STRSZ,
    DT_STRTAB,
    PHDR,
    PT_LOAD,
    SHDR,
    SHF_ALLOC,
    Layout,
    LayoutError,
    Section,
    Segment,
)

PAGE = 4096
PF_W, PF_R = 0x2, 0x4
PT_NOTE, PT_GNU_PROPERTY = 4, 0x6474E553
# Section types the loader finds through dynamic tags alone, so they may move with those tags.
_MOVABLE_TYPES = {
    4,  # SHT_RELA
    5,  # SHT_HASH
    9,  # SHT_REL
    11,  # SHT_DYNSYM
    19,  # SHT_RELR
    0x6FFFFFF6,  # SHT_GNU_HASH
    0x6FFFFFFD,  # SHT_GNU_verdef
    0x6FFFFFFE,  # SHT_GNU_verneed
    0x6FFFFFFF,  # SHT_GNU_versym
}
# Dynamic tags whose value is the address of one of those tables.
_ADDRESS_TAGS = {
    4,  # DT_HASH
    6,  # DT_SYMTAB
    7,  # DT_RELA
    17,  # DT_REL
    23,  # DT_JMPREL
    36,  # DT_RELR
    0x6FFFFEF5,  # DT_GNU_HASH
    0x6FFFFFF0,  # DT_VERSYM
    0x6FFFFFFC,  # DT_VERDEF
    0x6FFFFFFE,  # DT_VERNEED
}
_STRING_TAGS = {DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH}


class NoRoom(Exception):
    """The new strings do not fit without growing the file."""


@dataclass
class _Plan:
    elf: Layout
    writes: list[tuple[int, bytes]] = field(default_factory=list)
    room: dict[Segment, int] = field(default_factory=dict)  # LOAD -> bytes it may still grow
    headers_changed: bool = False
    added: Segment | None = None  # the new segment at the end of the file, if one was needed

    def __post_init__(self) -> None:
        for segment in self.elf.loads:
            self.room[segment] = _room_after(self.elf, segment)

    def write(self, offset: int, data: bytes) -> None:
        self.writes.append((offset, data))

    def grow(self, load: Segment, length: int) -> tuple[int, int]:
        """Extend `load` by `length` bytes; returns the file offset and address they start at."""
        if self.room[load] < length:
            raise NoRoom("no room after the segment")
        self.room[load] -= length
        start = (load.end_offset, load.end_vaddr)
        load.filesz += length
        load.memsz += length
        self.headers_changed = True
        return start

    def grow_any(self, length: int, first: Segment) -> tuple[int, int]:
        """Room for read-only data: after `first`, else after another segment not writable,
        else in a new segment at the end of the file."""
        for load in [first] + [s for s in self.elf.loads if s is not first]:
            if load is first or not load.flags & PF_W:
                with contextlib.suppress(NoRoom):
                    return self.grow(load, length)
        return self.grow(self.new_segment(), length)

    def new_segment(self) -> Segment:
        """A read-only LOAD segment after everything in the file and in memory, starting on
        a page (the file grows by the padding to that page and what goes in). Its program
        header takes the slot of a PT_NOTE that only repeats PT_GNU_PROPERTY (the loader
        reads the property from PT_GNU_PROPERTY); without one, NoRoom."""
        elf = self.elf
        if self.added is not None:
            return self.added
        spare = next((s for s in elf.segments if _repeats_property(elf, s)), None)
        if spare is None:
            raise NoRoom("no spare program header for a new segment")
        ends = [s.end_offset for s in elf.segments] + [
            elf.size,
            elf.shoff + len(elf.sections) * SHDR.size,
        ]
        offset = -(-max(ends) // PAGE) * PAGE
        address = -(-max(s.end_vaddr for s in elf.segments) // PAGE) * PAGE
        segment = Segment(PT_LOAD, PF_R, offset, address, address, 0, 0, PAGE)
        elf.segments.remove(spare)
        last = max(i for i, s in enumerate(elf.segments) if s.type == PT_LOAD)
        elf.segments.insert(last + 1, segment)
        self.room[segment] = 1 << 62
        self.added = segment
        return segment


def _repeats_property(elf: Layout, segment: Segment) -> bool:
    if segment.type != PT_NOTE:
        return False
    return any(
        other.type == PT_GNU_PROPERTY
        and (other.offset, other.vaddr, other.filesz)
        == (segment.offset, segment.vaddr, segment.filesz)
        for other in elf.segments
    )


def _room_after(elf: Layout, load: Segment) -> int:
    """How many bytes after `load` neither the file nor the address space uses."""
    if load.filesz != load.memsz:
        return 0
    end_offset, end_address = load.end_offset, load.end_vaddr
    in_file = [(elf.phoff, len(elf.segments) * PHDR.size)]
    in_file += [(elf.shoff, len(elf.sections) * SHDR.size)]
    in_file += [(s.offset, s.file_size) for s in elf.sections]
    in_file += [(s.offset, s.filesz) for s in elf.segments if s is not load]
    limit = elf.size
    for offset, length in in_file:
        if length and offset < end_offset < offset + length:
            return 0
        if length and offset >= end_offset:
            limit = min(limit, offset)
    address_limit = None
    for segment in elf.segments:
        if segment is load or not segment.memsz or segment.vaddr < end_address:
            continue
        start = segment.vaddr - segment.vaddr % PAGE if segment.type == PT_LOAD else segment.vaddr
        address_limit = start if address_limit is None else min(address_limit, start)
    room = limit - end_offset
    if address_limit is not None:
        room = min(room, address_limit - end_address)
    return max(room, 0)


def plan_writes(
    elf: Layout, interpreter: str | None, runpath: tuple[str, ...] | None
) -> list[tuple[int, bytes]] | None:
    """The (offset, bytes) writes that apply the patch to a copy of the file, in order; None if
    the file has no room for it. Raises LayoutError for files this writer does not handle."""
    plan = _Plan(elf)
    try:
        if runpath is not None:
            _set_runpath(plan, runpath)
        if interpreter is not None:
            _set_interpreter(plan, interpreter)
    except NoRoom:
        return None
    if plan.headers_changed:
        plan.write(elf.phoff, elf.packed_segments())
        plan.write(elf.shoff, elf.packed_sections())
    if runpath is not None:
        plan.write(elf.dynamic_segment.offset, elf.packed_dynamic())
    return plan.writes


def _set_interpreter(plan: _Plan, interpreter: str) -> None:
    elf = plan.elf
    segment = elf.interp_segment
    new = interpreter.encode("utf-8", "surrogateescape") + b"\0"
    if len(new) <= segment.filesz:
        plan.write(segment.offset, new.ljust(segment.filesz, b"\0"))
        return
    section = _section_at(elf, segment.vaddr, segment.offset)
    plan.write(segment.offset, bytes(segment.filesz))
    offset, address = plan.grow_any(len(new), elf.load_of(segment.vaddr))
    plan.write(offset, new)
    segment.offset, segment.vaddr, segment.paddr = offset, address, address
    segment.filesz = segment.memsz = len(new)
    if section is not None:
        section.addr, section.offset, section.size = address, offset, len(new)


def _set_runpath(plan: _Plan, runpath: tuple[str, ...]) -> None:
    elf = plan.elf
    used = elf.used_dynamic
    old = [index for index in range(used) if elf.dynamic[index][0] in (DT_RPATH, DT_RUNPATH)]
    strtab = elf.strtab_offset
    slots: dict[int, int] = {}  # string offset -> bytes it may take (with its NUL)
    for index in old:
        value = elf.dynamic[index][1]
        slots[value] = len(elf.c_string(strtab + value)) + 1
    for value, length in slots.items():
        _refuse_shared(elf, value, length, old)
        plan.write(strtab + value, bytes(length))
    entries = [row for index, row in enumerate(elf.dynamic[:used]) if index not in old]
    if runpath:
        new = ":".join(runpath).encode("utf-8", "surrogateescape") + b"\0"
        value = next((v for v, length in slots.items() if length >= len(new)), None)
        if value is None:
            try:
                value = _append_string(plan, new)
            except NoRoom:
                value = _copy_strings(plan, new, slots)
        else:
            plan.write(strtab + value, new)
        position = old[0] if old else len(entries)
        entries.insert(position, [DT_RUNPATH, value])
    if len(entries) >= len(elf.dynamic):
        raise NoRoom("no spare DT_NULL in the dynamic table")
    elf.dynamic[:] = entries + [[DT_NULL, 0] for _ in range(len(elf.dynamic) - len(entries))]


def _refuse_shared(elf: Layout, value: int, length: int, replaced: list[int]) -> None:
    """An old RPATH string shared (tail-merged) with another name must not be zeroed."""
    for index, (tag, other) in enumerate(elf.dynamic[: elf.used_dynamic]):
        if tag in _STRING_TAGS and index not in replaced and value <= other < value + length:
            raise NoRoom("the old RUNPATH string is shared with another name")


def _append_string(plan: _Plan, new: bytes) -> int:
    """Put `new` right after .dynstr, sliding what follows it in its segment; returns the
    string's offset in the table."""
    elf = plan.elf
    strtab, size = elf.tag(DT_STRTAB), elf.tag(DT_STRSZ)
    if size is None:
        raise NoRoom("no DT_STRSZ")
    load = elf.load_of(strtab)
    end_address = strtab + size
    if end_address > load.vaddr + load.filesz:
        raise LayoutError(".dynstr reaches past its segment")
    moved = [
        s
        for s in elf.sections
        if s.flags & SHF_ALLOC and end_address <= s.addr < load.end_vaddr and s.size
    ]
    if any(s.type not in _MOVABLE_TYPES for s in moved):
        raise NoRoom("sections after .dynstr that code may refer to")
    others = [s for s in elf.segments if s is not load and s.type != PT_LOAD]
    if any(s.vaddr < load.end_vaddr and s.end_vaddr > end_address for s in others):
        raise NoRoom("a segment lies after .dynstr")
    dynstr = _section_at(elf, strtab, elf.offset_of(strtab))
    if elf.sections and (dynstr is None or dynstr.size != size):
        raise NoRoom(".dynstr's section header does not match DT_STRSZ")
    align = max([s.addralign for s in moved] + [1])
    shift = -(-len(new) // align) * align
    start = elf.offset_of(strtab) + size
    tail = load.end_offset - start
    plan.grow(load, shift)
    plan.write(start, new.ljust(shift, b"\0") + os.pread(elf.fd, tail, start))
    for section in moved:
        section.addr += shift
        section.offset += shift
    if dynstr is not None:
        dynstr.size += len(new)
    for row in elf.dynamic[: elf.used_dynamic]:
        if row[0] in _ADDRESS_TAGS and end_address <= row[1] < end_address + tail:
            row[1] += shift
        elif row[0] == DT_STRSZ:
            row[1] += len(new)
    return size


def _copy_strings(plan: _Plan, new: bytes, blanked: dict[int, int]) -> int:
    """Put a copy of .dynstr with `new` at its end into some segment's slack; the old table
    stays behind, unused. Returns the string's offset in the table."""
    elf = plan.elf
    strtab, size = elf.tag(DT_STRTAB), elf.tag(DT_STRSZ)
    if size is None:
        raise NoRoom("no DT_STRSZ")
    dynstr = _section_at(elf, strtab, elf.offset_of(strtab))
    if elf.sections and (dynstr is None or dynstr.size != size):
        raise NoRoom(".dynstr's section header does not match DT_STRSZ")
    table = bytearray(os.pread(elf.fd, size, elf.offset_of(strtab)))
    for value, length in blanked.items():
        table[value : value + length] = bytes(length)
    offset, address = plan.grow_any(size + len(new), elf.load_of(strtab))
    plan.write(offset, bytes(table) + new)
    for row in elf.dynamic[: elf.used_dynamic]:
        if row[0] == DT_STRTAB:
            row[1] = address
        elif row[0] == DT_STRSZ:
            row[1] = size + len(new)
    if dynstr is not None:
        dynstr.addr, dynstr.offset, dynstr.size = address, offset, size + len(new)
    return size


def _section_at(elf: Layout, address: int, offset: int) -> Section | None:
    return next((s for s in elf.sections if s.addr == address and s.offset == offset), None)
