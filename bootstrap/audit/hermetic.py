"""The hermeticity audit: does a closure run without anything from the host?

For every ELF file and script of the audited store paths it checks that:
- the interpreter (PT_INTERP or `#!`) is a file in the store and in the closure;
- every RUNPATH/RPATH entry lies in the store and in the closure;
- every DT_NEEDED resolves through the file's own RUNPATH/RPATH to a file in the closure;
- no host path is named anywhere in the file: nothing under /usr, /bin, /sbin, /lib, /lib32,
  /lib64, /libx32, and no /etc/ld.so.* (a `#!/bin/sh` line included).
- every symlink stays in the store: an absolute target must lie in a store path of the
  closure, and a relative one, followed through the links it passes, inside its own store path.
Strings under /dev, /proc, /sys and /tmp are fine (they are not host software). Anything else
must be allowed explicitly, as exact strings (a symlink by its target as written): by the
caller (`allowed`) or, for one store path, by the recipe that built it (`AuditedPath.allowed`,
the recipe's `allowed_host_paths`). Other files (headers, data, archives) are not scanned.
Paths are reasoned about logically and read physically through a `PathMap`.
"""

from __future__ import annotations

import enum
import json
import os
import posixpath
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bootstrap.elf.inspect import ElfError, ElfInfo, is_elf, read_elf
from bootstrap.elf.paths import (
    HOST_DIRS,
    HOST_FILE_PREFIXES,
    PathMap,
    expand_origin,
    find_library,
    is_under,
    store_path_of,
)
from bootstrap.elf.shebang import read_shebang, starts_with_shebang
from bootstrap.errors import BootstrapError

_NAME_CHARS = rb"A-Za-z0-9._+~\-"
_TOPS = b"|".join(re.escape(top.encode()) for top in HOST_DIRS)
_FILES = b"|".join(re.escape(prefix.encode()) for prefix in HOST_FILE_PREFIXES)
# A host top directory (as a whole path component) or loader file; starts with a literal "/",
# which lets the regex engine skip through megabytes of binary quickly.
_CANDIDATE = re.compile(rb"(?:%s)(?![%s])|(?:%s)" % (_TOPS, _NAME_CHARS, _FILES))
_REST_OF_PATH = re.compile(rb"[%s@%%=/]*" % _NAME_CHARS)
_PATH_BYTES = frozenset(re.sub(rb"[^%s/]" % _NAME_CHARS, b"", bytes(range(128))))
_LETTERS = frozenset(re.sub(rb"[^A-Za-z]", b"", bytes(range(128))))
_MOVABS_BYTES = 8
_MAX_LINK_HOPS = 40


@dataclass(frozen=True)
class HostReference:
    """A host path named in a file. A `piece` is the 8-byte operand of an x86-64 `movabs`:
    compilers write a short string constant into memory 8 bytes at a time, so only `text` is
    the string's, and the bytes after it are the next instruction's."""

    text: str
    piece: bool = False


def host_references(data: bytes) -> Iterator[HostReference]:
    """Host paths named in `data`: each starts a path (not inside a longer one, such as a store
    path's .../usr/lib) or follows a one-letter option (-L/usr/lib)."""
    for match in _CANDIDATE.finditer(data):
        start = match.start()
        if _starts_path(data, start):
            end = _REST_OF_PATH.match(data, match.end()).end()
            operand_end = _movabs_operand_end(data, start)
            piece = operand_end is not None and end >= operand_end
            if piece:
                end = operand_end
            yield HostReference(data[start:end].decode("utf-8", "surrogateescape"), piece)


def _movabs_operand_end(data: bytes, start: int) -> int | None:
    """The end of the `movabs $imm64, %reg` operand that `start` lies in, if any: the operand
    follows REX.W (0x48, or 0x49 for %r8-%r15) and 0xB8 plus the register number, and the path
    may start inside it (gcc writes "=/usr/lib/o32" as "=/usr/li", then "b/o32")."""
    for operand in range(start, max(2, start - _MOVABS_BYTES + 1) - 1, -1):
        if data[operand - 2] in (0x48, 0x49) and 0xB8 <= data[operand - 1] <= 0xBF:
            return operand + _MOVABS_BYTES
    return None


def _starts_path(data: bytes, start: int) -> bool:
    before = data[max(0, start - 3) : start]
    if not before or before[-1] not in _PATH_BYTES:
        return True
    is_option = len(before) >= 2 and before[-2] == ord("-") and before[-1] in _LETTERS
    return is_option and (len(before) < 3 or before[-3] not in _PATH_BYTES)


class ViolationKind(enum.Enum):
    UNREADABLE_ELF = "unreadable-elf"
    INTERPRETER_OUTSIDE_STORE = "interpreter-outside-store"
    INTERPRETER_OUTSIDE_CLOSURE = "interpreter-outside-closure"
    INTERPRETER_MISSING = "interpreter-missing"
    RUNPATH_OUTSIDE_STORE = "runpath-outside-store"
    RUNPATH_OUTSIDE_CLOSURE = "runpath-outside-closure"
    NEEDED_UNRESOLVED = "needed-unresolved"
    NEEDED_OUTSIDE_CLOSURE = "needed-outside-closure"
    HOST_REFERENCE = "host-reference"
    SYMLINK_OUTSIDE_STORE = "symlink-outside-store"
    SYMLINK_OUTSIDE_CLOSURE = "symlink-outside-closure"
    SYMLINK_LEAVES_STORE_PATH = "symlink-leaves-store-path"


@dataclass(frozen=True)
class Violation:
    """One way a file depends on something outside the closure. `value` is the offending
    interpreter, RUNPATH entry, library name, string or symlink target."""

    kind: ViolationKind
    file: str
    value: str
    detail: str = ""


@dataclass(frozen=True)
class AuditedPath:
    """A store path to audit: its logical name and the physical directory holding its files."""

    logical: str
    physical: Path
    allowed: frozenset[str] = frozenset()  # host path strings its recipe declares (exact)


def audit_hermetic(
    paths: Sequence[AuditedPath],
    closure: Collection[str],
    store_dir: str,
    path_map: PathMap,
    allowed: Collection[str] = (),
) -> list[Violation]:
    """Audit every file of `paths` against `closure` (logical store paths).

    `path_map` locates the other store paths of the closure; the audited paths are added to it.
    """
    for audited in paths:
        path_map = path_map.with_mount(audited.logical, audited.physical)
    auditor = _Auditor(frozenset(closure), store_dir.rstrip("/"), path_map, frozenset(allowed))
    violations: list[Violation] = []
    for audited in paths:
        path_auditor = replace(auditor, allowed=auditor.allowed | audited.allowed)
        for physical, is_link in _files_and_links(audited.physical):
            logical = path_map.logical(physical)
            if is_link:
                boundary = store_path_of(logical, auditor.store_dir) or audited.logical
                violations.extend(path_auditor.audit_link(physical, logical, boundary))
            else:
                violations.extend(path_auditor.audit_file(physical, logical))
    return violations


def _files_and_links(root: Path) -> Iterator[tuple[Path, bool]]:
    """(path, is a symlink) for `root` and every regular file and symlink under it, each
    directory's entries sorted; iterative, so a tree of any depth is walked."""
    if root.is_symlink() or not root.is_dir():
        if root.is_symlink() or root.is_file():
            yield root, root.is_symlink()
        return
    pending = [root]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as error:
            raise BootstrapError(f"{directory}: cannot audit: {error.strerror}") from None
        for entry in entries:
            if entry.is_symlink() or entry.is_file(follow_symlinks=False):
                yield Path(entry.path), entry.is_symlink()
        subdirectories = [e for e in entries if e.is_dir(follow_symlinks=False)]
        pending += [Path(entry.path) for entry in reversed(subdirectories)]


@dataclass(frozen=True)
class _Auditor:
    closure: frozenset[str]
    store_dir: str
    path_map: PathMap
    allowed: frozenset[str]

    def audit_file(self, physical: Path, logical: str) -> list[Violation]:
        if is_elf(physical):
            return self._audit_elf(physical, logical)
        if starts_with_shebang(physical):
            return self._audit_script(physical, logical)
        return []

    def _audit_elf(self, physical: Path, logical: str) -> list[Violation]:
        try:
            info = read_elf(physical)
        except ElfError as err:
            detail = str(err).removeprefix(f"{physical}: ")
            return [Violation(ViolationKind.UNREADABLE_ELF, logical, logical, detail)]
        found = list(self._check_interpreter(logical, info.interpreter))
        found += self._check_search_path(logical, info)
        found += self._check_needed(logical, info)
        structural = {v.value for v in found}
        found += self._host_references(physical, logical, skip=structural)
        return found

    def _audit_script(self, physical: Path, logical: str) -> list[Violation]:
        shebang = read_shebang(physical)
        found = list(self._check_interpreter(logical, shebang.interpreter if shebang else None))
        return found + self._host_references(physical, logical, skip={v.value for v in found})

    def _check_interpreter(self, logical: str, interpreter: str | None) -> Iterator[Violation]:
        if interpreter is None:
            return
        store_path = store_path_of(interpreter, self.store_dir)
        if store_path is None:
            yield Violation(ViolationKind.INTERPRETER_OUTSIDE_STORE, logical, interpreter)
        elif store_path not in self.closure:
            yield Violation(
                ViolationKind.INTERPRETER_OUTSIDE_CLOSURE, logical, interpreter, store_path
            )
        elif find_library(interpreter, (), self.path_map) is None:
            yield Violation(ViolationKind.INTERPRETER_MISSING, logical, interpreter)

    def _check_search_path(self, logical: str, info: ElfInfo) -> Iterator[Violation]:
        for entry in info.search_path:
            directory = expand_origin(entry, logical)
            store_path = store_path_of(directory, self.store_dir)
            if store_path is None:
                yield Violation(ViolationKind.RUNPATH_OUTSIDE_STORE, logical, entry)
            elif store_path not in self.closure:
                yield Violation(ViolationKind.RUNPATH_OUTSIDE_CLOSURE, logical, entry, store_path)

    def _check_needed(self, logical: str, info: ElfInfo) -> Iterator[Violation]:
        search = [expand_origin(entry, logical) for entry in info.search_path]
        for name in info.needed:
            resolved = find_library(name, search, self.path_map)
            if resolved is None:
                yield Violation(ViolationKind.NEEDED_UNRESOLVED, logical, name, "not in RUNPATH")
            elif store_path_of(resolved, self.store_dir) not in self.closure:
                yield Violation(ViolationKind.NEEDED_OUTSIDE_CLOSURE, logical, name, resolved)

    def _host_references(self, physical: Path, logical: str, skip: set[str]) -> list[Violation]:
        found: dict[str, None] = {}
        for reference in host_references(physical.read_bytes()):
            if reference.text not in skip and not self._is_allowed(reference):
                found.setdefault(reference.text)
        return [Violation(ViolationKind.HOST_REFERENCE, logical, text) for text in found]

    def audit_link(self, physical: Path, logical: str, boundary: str) -> list[Violation]:
        """A symlink must not lead out of the store, nor out of the closure, nor (relative)
        out of `boundary`, its own store path."""
        target = os.readlink(physical)
        if target in self.allowed:
            return []
        leads = _LinkWalk(self.path_map, boundary).leads_out(logical, target)
        if leads is None:
            return []
        destination, climbed = leads
        store_path = store_path_of(destination, self.store_dir)
        if store_path is None:
            kind = ViolationKind.SYMLINK_OUTSIDE_STORE
        elif climbed:
            kind = ViolationKind.SYMLINK_LEAVES_STORE_PATH
        elif store_path not in self.closure:
            kind = ViolationKind.SYMLINK_OUTSIDE_CLOSURE
        else:
            return []
        return [Violation(kind, logical, target, destination)]

    def _is_allowed(self, reference: HostReference) -> bool:
        """Whether `reference` is an allowed string or a `piece` (8 bytes) of one."""
        if reference.text in self.allowed:
            return True
        return reference.piece and any(reference.text in allowed for allowed in self.allowed)


@dataclass(frozen=True)
class _LinkWalk:
    """Follows a symlink as the kernel would, through the links inside `boundary`, to the
    point where it leaves `boundary`, if it does."""

    path_map: PathMap
    boundary: str

    def leads_out(self, link: str, target: str) -> tuple[str, bool] | None:
        """Where the link at logical `link` leaves the boundary, and whether it left by
        climbing (`..`) rather than by an absolute target; None if it never leaves it (a
        dangling link and a loop lead nowhere)."""
        if link == self.boundary and not target.startswith("/"):
            return posixpath.normpath(posixpath.join(posixpath.dirname(link), target)), True
        current, pending, hops = posixpath.dirname(link), [], 0
        text: str | None = target
        while text is not None:
            if text.startswith("/"):
                if not is_under(text, self.boundary):
                    return posixpath.normpath(posixpath.join(text, *pending)), False
                current, text = self.boundary, text[len(self.boundary) :]
            pending[:0] = [part for part in text.split("/") if part not in ("", ".")]
            text = None
            while pending and text is None:
                part = pending.pop(0)
                if part == "..":
                    if current == self.boundary:
                        above = posixpath.join(posixpath.dirname(current), *pending)
                        return posixpath.normpath(above), True
                    current = posixpath.dirname(current)
                    continue
                physical = self.path_map.physical(f"{current}/{part}")
                if physical is None or not os.path.lexists(physical):
                    return None
                if physical.is_symlink():
                    hops += 1
                    text = os.readlink(physical) if hops <= _MAX_LINK_HOPS else None
                    if text is None:
                        return None
                elif pending and not physical.is_dir():
                    return None
                else:
                    current = f"{current}/{part}"
        return None


def render_table(violations: Sequence[Violation]) -> str:
    """A plain-text table, one violation per line, for people."""
    if not violations:
        return "no violations\n"
    rows = [("KIND", "FILE", "VALUE", "DETAIL")]
    rows += [(v.kind.value, v.file, v.value, v.detail) for v in violations]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + ("  " + row[3] if row[3] else "")
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines) + f"\n{len(violations)} violation(s)\n"


def render_json(violations: Sequence[Violation]) -> str:
    """A JSON list of {kind, file, value, detail} objects, for tools."""
    records = [asdict(v) | {"kind": v.kind.value} for v in violations]
    return json.dumps(records, indent=2, sort_keys=True) + "\n"
