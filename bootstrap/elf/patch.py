"""Changing what an ELF file asks of the loader: its interpreter and its RUNPATH.

`ElfPatcher` is the small interface callers use. `InPlacePatcher` (the default) writes the new
strings where the old ones were or into the file's slack (`bootstrap.elf.inplace`) and leaves
only files without room to lief; `LiefPatcher` has lief rebuild every file. A patch is applied
only when the file differs from what is asked, so patching twice gives the same bytes. Files
are rewritten through a temporary name and keep their permission bits.

Pitfalls (see docs/elf.md): strip before patching, never after (lief moves the program header
table; `strip` on a lief-patched non-PIE executable leaves it crashing in ld.so); a RUNPATH
longer than the space the old strings free makes lief move the whole .dynstr into a new
segment, so the file grows by the size of .dynstr.
"""

from __future__ import annotations

import abc
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bootstrap.elf.inplace import plan_writes
from bootstrap.elf.inspect import ElfError, ElfInfo, read_elf
from bootstrap.elf.layout import Layout, LayoutError

if TYPE_CHECKING:
    import lief


@dataclass(frozen=True)
class ElfPatch:
    """Wanted loader settings; None leaves a setting alone. `runpath=()` removes it."""

    interpreter: str | None = None
    runpath: tuple[str, ...] | None = None

    def needed_on(self, info: ElfInfo) -> ElfPatch:
        """The part of this patch that `info` does not already satisfy."""
        interpreter = self.interpreter if self.interpreter != info.interpreter else None
        runpath = self.runpath
        if runpath is not None and info.rpath is None and runpath == info.search_path:
            runpath = None
        if runpath == () and info.rpath is None and info.runpath is None:
            runpath = None
        return ElfPatch(interpreter, runpath)

    @property
    def is_empty(self) -> bool:
        return self.interpreter is None and self.runpath is None


class ElfPatcher(abc.ABC):
    """Patch loader settings in place; returns whether the file was rewritten."""

    def set_interpreter(self, path: Path, interpreter: str) -> bool:
        return self.apply(path, ElfPatch(interpreter=interpreter))

    def set_runpath(self, path: Path, entries: Sequence[str]) -> bool:
        """Replace DT_RPATH and DT_RUNPATH by one DT_RUNPATH (empty entries: remove both)."""
        return self.apply(path, ElfPatch(runpath=tuple(entries)))

    def apply(self, path: Path, patch: ElfPatch) -> bool:
        """Apply `patch` to the file at `path` if it is not already so; raise ElfError if not
        possible (not ELF, interpreter asked of a file without PT_INTERP, bad runpath)."""
        path = Path(path)
        info = read_elf(path)
        _check_patch(info, patch)
        todo = patch.needed_on(info)
        if todo.is_empty:
            return False
        data = self._patched_bytes(path, todo)
        with staged_replacement(path) as staged:
            staged.write_bytes(data)
            if not patch.needed_on(read_elf(staged)).is_empty:
                raise ElfError(f"{path}: patched file does not read back as asked ({patch})")
        return True

    @abc.abstractmethod
    def _patched_bytes(self, path: Path, patch: ElfPatch) -> bytes:
        """The whole new file contents with `patch` applied."""


class LiefPatcher(ElfPatcher):
    """Backend on lief: deterministic output, one parse and one rebuild per file."""

    def _patched_bytes(self, path: Path, patch: ElfPatch) -> bytes:
        lief = _import_lief()
        tag = lief.ELF.DynamicEntry.TAG
        binary = lief.ELF.parse(str(path))
        if binary is None:
            raise ElfError(f"{path}: lief could not parse this ELF file")
        _blank_replaced_strings(binary, patch)
        if patch.interpreter is not None:
            binary.interpreter = patch.interpreter
        if patch.runpath is not None:
            binary.remove(tag.RPATH)
            binary.remove(tag.RUNPATH)
            if patch.runpath:
                binary.add(lief.ELF.DynamicEntryRunPath(":".join(patch.runpath)))
        return bytes(binary.write_to_bytes())


class InPlacePatcher(LiefPatcher):
    """Writes the new strings into a copy of the file where they fit (no rebuild, no lief
    import); files without room, and files the fast reader does not handle, go to lief."""

    def apply(self, path: Path, patch: ElfPatch) -> bool:
        path = Path(path)
        try:
            with open(path, "rb") as stream:
                elf = Layout(path, stream.fileno())
                info = elf.info()
                _check_patch(info, patch)
                todo = patch.needed_on(info)
                if todo.is_empty:
                    return False
                writes = plan_writes(elf, todo.interpreter, todo.runpath)
        except (OSError, LayoutError):
            writes = None
        if writes is None:
            return super().apply(path, patch)
        with staged_replacement(path) as staged:
            shutil.copyfile(path, staged)
            with open(staged, "r+b") as stream:
                for offset, data in writes:
                    os.pwrite(stream.fileno(), data, offset)
                _check_written(staged, stream.fileno(), patch)
        return True


def _check_written(path: Path, fd: int, patch: ElfPatch) -> None:
    try:
        info = Layout(path, fd).info()
    except LayoutError as err:
        raise ElfError(f"{path}: patched file does not read back: {err}") from None
    if not patch.needed_on(info).is_empty:
        raise ElfError(f"{path}: patched file does not read back as asked ({patch})")


def _import_lief():
    """lief takes most of a second to import; only patching needs it."""
    import lief

    lief.logging.disable()
    return lief


def _blank_replaced_strings(binary: lief.ELF.Binary, patch: ElfPatch) -> None:
    """Zero the old interpreter and RUNPATH/RPATH strings before replacing them.

    lief leaves a moved .interp or .dynstr behind as dead bytes; blanking the replaced values
    keeps stale host paths (/lib64/ld-linux-x86-64.so.2, /usr/lib) out of the patched file, so
    the audit's string scan does not see them. lief has parsed every string already.
    """
    lief = _import_lief()
    tag = lief.ELF.DynamicEntry.TAG
    if patch.interpreter is not None:
        for segment in binary.segments:
            if segment.type == lief.ELF.Segment.TYPE.INTERP:
                binary.patch_address(segment.virtual_address, [0] * segment.physical_size)
    strtab = binary.get(tag.STRTAB)
    if patch.runpath is None or strtab is None:
        return
    for kind, attribute in ((tag.RPATH, "rpath"), (tag.RUNPATH, "runpath")):
        entry = binary.get(kind)
        if entry is not None:
            old = getattr(entry, attribute).encode()
            binary.patch_address(strtab.value + entry.value, [0] * len(old))


def _check_patch(info: ElfInfo, patch: ElfPatch) -> None:
    if patch.interpreter is not None and info.interpreter is None:
        raise ElfError(
            f"{info.path}: has no PT_INTERP ({info.kind.value}); an interpreter can only be "
            "replaced, not added"
        )
    if patch.runpath is not None:
        if not info.is_dynamic:
            raise ElfError(f"{info.path}: {info.kind.value} file has no use for a RUNPATH")
        bad = [entry for entry in patch.runpath if not entry or ":" in entry]
        if bad:
            raise ElfError(f"{info.path}: RUNPATH entry {bad[0]!r} is empty or contains ':'")


@contextlib.contextmanager
def staged_replacement(path: Path) -> Iterator[Path]:
    """A temporary sibling of `path` that replaces it (with the same permission bits) when the
    block succeeds and is removed when it fails."""
    mode = path.stat().st_mode & 0o7777
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    staged = Path(name)
    try:
        yield staged
        os.chmod(staged, mode)
        os.replace(staged, path)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
