"""The fix-up phase run on a build output: repair loader settings and `#!` lines that are wrong.

Most binaries are already right (compiler wrappers pass -dynamic-linker and -rpath), so each
file is checked first and rewritten only when something is wrong:
- a file whose PT_INTERP is not the intended interpreter gets it (none is added);
- a RUNPATH/RPATH that names a directory outside the store, or that leaves a DT_NEEDED
  unresolved, becomes a RUNPATH of the in-store directories that provide a needed library
  (shrunk as `patchelf --shrink-rpath` does) plus candidates for what is still missing;
- a script whose `#!` names a host program (/bin/sh, /usr/bin/env perl) is pointed at the
  store path given for that program.
What cannot be repaired is listed as a problem; nothing raises for a file's content.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from bootstrap.elf.inspect import ElfError, ElfInfo, is_elf, read_elf
from bootstrap.elf.patch import ElfPatch, ElfPatcher, InPlacePatcher, staged_replacement
from bootstrap.elf.paths import (
    PathMap,
    expand_origin,
    find_library,
    is_host_path,
    is_under,
    regular_files,
    shrink_search_path,
)
from bootstrap.elf.shebang import (
    MAX_SHEBANG_LENGTH,
    open_no_follow,
    read_shebang,
    starts_with_shebang,
)


@dataclass(frozen=True)
class FixupChange:
    """One setting rewritten in one file (`what` is interpreter, runpath or shebang)."""

    file: str
    what: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class FixupProblem:
    file: str
    message: str


@dataclass
class FixupReport:
    changes: list[FixupChange] = field(default_factory=list)
    problems: list[FixupProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class FixupPolicy:
    """What a build output should look like.

    `interpreter` is the logical store path of ld.so, or None in a static world (then a dynamic
    executable is a problem). `library_dirs` are logical directories tried, in order, for a
    DT_NEEDED the existing RUNPATH does not provide; the interpreter's directory is tried last.
    `shebangs` maps program names ("sh", "perl") to logical store paths. `path_map` says where
    other store paths physically are. `shrink` rewrites every RUNPATH with unneeded entries.
    """

    store_dir: str
    interpreter: str | None
    library_dirs: tuple[str, ...] = ()
    shebangs: Mapping[str, str] = field(default_factory=dict)
    path_map: PathMap = field(default_factory=lambda: PathMap.of([]))
    shrink: bool = False

    @property
    def candidate_dirs(self) -> tuple[str, ...]:
        extra = (posixpath.dirname(self.interpreter),) if self.interpreter else ()
        return tuple(dict.fromkeys(self.library_dirs + extra))


def fixup_output(
    output: Path, output_path: str, policy: FixupPolicy, patcher: ElfPatcher | None = None
) -> FixupReport:
    """Check and repair every file of the output at physical `output`, logically `output_path`.

    An output that is a symlink has no files of its own: it is never followed (it may point
    anywhere on the host), and neither is any symlink inside an output."""
    output = Path(output)
    if output.is_symlink():
        return FixupReport()
    path_map = policy.path_map.with_mount(output_path, output)
    fixer = _Fixer(policy, patcher or InPlacePatcher(), path_map)
    for physical in regular_files(output):
        fixer.fix_file(physical, path_map.logical(physical))
    return fixer.report


@dataclass
class _Fixer:
    policy: FixupPolicy
    patcher: ElfPatcher
    path_map: PathMap
    report: FixupReport = field(default_factory=FixupReport)

    def fix_file(self, physical: Path, logical: str) -> None:
        if is_elf(physical):
            self._fix_elf(physical, logical)
        elif starts_with_shebang(physical):
            self._fix_shebang(physical, logical)

    def _problem(self, logical: str, message: str) -> None:
        self.report.problems.append(FixupProblem(logical, message))

    def _fix_elf(self, physical: Path, logical: str) -> None:
        try:
            info = read_elf(physical)
        except ElfError as err:
            self._problem(logical, str(err).removeprefix(f"{physical}: "))
            return
        if not info.is_dynamic:
            return
        patch = ElfPatch(
            self._wanted_interpreter(info, logical), self._wanted_runpath(info, logical)
        )
        if patch.is_empty:
            return
        try:
            self.patcher.apply(physical, patch)
        except ElfError as err:
            self._problem(logical, str(err).removeprefix(f"{physical}: "))
            return
        self._record_elf_changes(info, logical, patch)

    def _record_elf_changes(self, info: ElfInfo, logical: str, patch: ElfPatch) -> None:
        if patch.interpreter is not None:
            change = FixupChange(logical, "interpreter", info.interpreter, patch.interpreter)
            self.report.changes.append(change)
        if patch.runpath is not None:
            old = info.runpath if info.runpath is not None else info.rpath
            change = FixupChange(logical, "runpath", old, ":".join(patch.runpath) or None)
            self.report.changes.append(change)

    def _wanted_interpreter(self, info: ElfInfo, logical: str) -> str | None:
        if info.interpreter is None:
            return None
        wanted = self.policy.interpreter
        if wanted is None:
            self._problem(
                logical,
                f"{info.kind.value} file asks for interpreter {info.interpreter} in a static "
                "world; link it with -static",
            )
            return None
        return wanted if info.interpreter != wanted else None

    def _wanted_runpath(self, info: ElfInfo, logical: str) -> tuple[str, ...] | None:
        """The RUNPATH to write, or None if the current one is fine."""
        in_store = partial(is_under, directory=self.policy.store_dir)
        kept, found = shrink_search_path(
            info.search_path, info.needed, logical, self.path_map, usable=in_store
        )
        wrong = any(not in_store(expand_origin(e, logical)) for e in info.search_path)
        missing = [name for name in info.needed if name not in found]
        added = self._provide(missing, logical)
        shrinkable = self.policy.shrink and kept != info.search_path
        return kept + added if wrong or added or missing or shrinkable else None

    def _provide(self, missing: Sequence[str], logical: str) -> tuple[str, ...]:
        """RUNPATH entries that provide `missing`: the policy's directories, else `$ORIGIN` for a
        library that lies beside the file (libstdc++.so.6 needs the libgcc_s.so.1 next to it)."""
        added: list[str] = []
        candidates = (*self.policy.candidate_dirs, "$ORIGIN")
        for name in missing:
            directory = next(
                (
                    d
                    for d in candidates
                    if find_library(name, [expand_origin(d, logical)], self.path_map)
                ),
                None,
            )
            if directory is None:
                self._problem(logical, f"DT_NEEDED {name} not found in RUNPATH or library dirs")
            elif directory not in added:
                added.append(directory)
        return tuple(added)

    def _fix_shebang(self, physical: Path, logical: str) -> None:
        shebang = read_shebang(physical)
        if shebang is None or not is_host_path(shebang.interpreter):
            return
        target = self.policy.shebangs.get(shebang.program)
        if target is None:
            self._problem(
                logical,
                f"#! names host {shebang.interpreter} and no store path is "
                f"given for {shebang.program!r}",
            )
            return
        new = shebang.rerooted(target)
        if len(new.line) > MAX_SHEBANG_LENGTH:
            self._problem(
                logical, f"new #! line is {len(new.line)} bytes; Linux reads {MAX_SHEBANG_LENGTH}"
            )
            return
        _replace_first_line(physical, new.line)
        self.report.changes.append(FixupChange(logical, "shebang", shebang.line, new.line))


def _replace_first_line(path: Path, line: str) -> None:
    with open_no_follow(path) as stream:
        body = stream.read()
    newline = body.find(b"\n")
    rest = body[newline:] if newline >= 0 else b""
    with staged_replacement(path) as staged:
        staged.write_bytes(line.encode("utf-8", "surrogateescape") + rest)
