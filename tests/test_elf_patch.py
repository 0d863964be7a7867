"""Patching real gcc builds to a store interpreter and RUNPATH, then running them in a sandbox
with nothing but the store tree; readelf and patchelf check the files we write."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from bootstrap.elf.inspect import ElfError, read_elf
from bootstrap.elf.patch import ElfPatch, LiefPatcher
from tests.test_elf_programs import (
    GLIBC,
    GREET,
    GREETING,
    HELLO,
    LD_SO,
    Programs,
    StoreTree,
    readelf_warnings,
    requires_bwrap,
    run_sandboxed,
)
from tests.test_elf_programs import programs as programs

STORE_RUNPATH = (f"{GREET}/lib", f"{GLIBC}/lib")
PATCH = ElfPatch(interpreter=LD_SO, runpath=STORE_RUNPATH)


@pytest.fixture
def store(tmp_path: Path, programs: Programs) -> StoreTree:
    """glibc from the host, libgreet patched to find libc, executables not yet added."""
    store = StoreTree(tmp_path / "store")
    store.add_host_glibc()
    library = store.add(f"{GREET}/lib/libgreet.so.1", programs.library)
    assert LiefPatcher().set_runpath(library, [f"{GLIBC}/lib"])
    return store


def _strip(path: Path) -> None:
    subprocess.run(["strip", path], check=True, capture_output=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@requires_bwrap
@pytest.mark.parametrize("stripped", [False, True], ids=["unstripped", "stripped-first"])
@pytest.mark.parametrize("name", ["pie", "nopie"])
def test_patched_program_runs_with_only_the_store(
    programs: Programs, store: StoreTree, name: str, stripped: bool
) -> None:
    logical = f"{HELLO}/bin/hello-{name}"
    program = store.add(logical, getattr(programs, name))
    if stripped:
        _strip(program)
        _strip(store.real(f"{GREET}/lib/libgreet.so.1"))
    assert run_sandboxed(store, logical).returncode != 0  # host interpreter: cannot start
    assert LiefPatcher().apply(program, PATCH)
    result = run_sandboxed(store, logical)
    assert (result.returncode, result.stdout) == (0, GREETING + "\n"), result.stderr
    assert readelf_warnings(program) == ""
    assert readelf_warnings(store.real(f"{GREET}/lib/libgreet.so.1")) == ""


@pytest.mark.skipif(shutil.which("patchelf") is None, reason="patchelf is not installed")
def test_patchelf_reads_back_what_we_wrote(programs: Programs, tmp_path: Path) -> None:
    for source in (programs.pie, programs.nopie, programs.with_rpath, programs.with_old_rpath):
        copy = tmp_path / source.name
        shutil.copy2(source, copy)
        LiefPatcher().apply(copy, PATCH)
        for option, expected in (
            ("--print-interpreter", LD_SO),
            ("--print-rpath", ":".join(STORE_RUNPATH)),
            ("--print-needed", "libgreet.so.1\nlibc.so.6"),
        ):
            out = subprocess.run(["patchelf", option, copy], capture_output=True, text=True)
            assert out.stdout.strip() == expected, (source.name, option)


def test_patching_is_deterministic_and_idempotent(programs: Programs, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for copy in (first, second):
        shutil.copy2(programs.nopie, copy)
        assert LiefPatcher().apply(copy, PATCH) is True
    assert _sha256(first) == _sha256(second)
    digest = _sha256(first)
    assert LiefPatcher().apply(first, PATCH) is False
    assert LiefPatcher().set_interpreter(first, LD_SO) is False
    assert LiefPatcher().set_runpath(first, STORE_RUNPATH) is False
    assert _sha256(first) == digest


def test_keeps_permission_bits_and_leaves_no_temporary_files(
    programs: Programs, tmp_path: Path
) -> None:
    copy = tmp_path / "hello"
    shutil.copy2(programs.pie, copy)
    copy.chmod(0o750)
    LiefPatcher().apply(copy, PATCH)
    assert copy.stat().st_mode & 0o7777 == 0o750
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hello"]


def test_rpath_becomes_runpath_and_can_be_removed(programs: Programs, tmp_path: Path) -> None:
    copy = tmp_path / "hello"
    shutil.copy2(programs.with_old_rpath, copy)
    assert LiefPatcher().set_runpath(copy, [f"{GLIBC}/lib"])
    info = read_elf(copy)
    assert (info.rpath, info.runpath) == (None, f"{GLIBC}/lib")
    assert LiefPatcher().set_runpath(copy, [])
    info = read_elf(copy)
    assert (info.rpath, info.runpath) == (None, None)
    assert LiefPatcher().set_runpath(copy, []) is False


def test_shrinking_a_runpath_does_not_grow_the_file(programs: Programs, tmp_path: Path) -> None:
    copy = tmp_path / "hello"
    shutil.copy2(programs.with_rpath, copy)
    size = copy.stat().st_size
    assert LiefPatcher().set_runpath(copy, ["/opt/greet"])
    assert copy.stat().st_size <= size
    assert read_elf(copy).runpath == "/opt/greet"


def test_refuses_to_add_an_interpreter(programs: Programs, tmp_path: Path) -> None:
    for source in (programs.library, programs.static, programs.static_pie):
        copy = tmp_path / source.name
        shutil.copy2(source, copy)
        digest = _sha256(copy)
        with pytest.raises(ElfError, match="has no PT_INTERP"):
            LiefPatcher().set_interpreter(copy, LD_SO)
        assert _sha256(copy) == digest


def test_refuses_bad_requests_and_bad_files(programs: Programs, tmp_path: Path) -> None:
    copy = tmp_path / "static"
    shutil.copy2(programs.static, copy)
    with pytest.raises(ElfError, match="no use for a RUNPATH"):
        LiefPatcher().set_runpath(copy, ["/x"])
    library = tmp_path / "lib.so"
    shutil.copy2(programs.library, library)
    with pytest.raises(ElfError, match="contains ':'"):
        LiefPatcher().set_runpath(library, ["/a:/b"])
    text = tmp_path / "text"
    text.write_text("not an ELF\n")
    with pytest.raises(ElfError, match="not an ELF file"):
        LiefPatcher().set_runpath(text, ["/x"])


@requires_bwrap
@pytest.mark.parametrize("name", ["pie", "nopie"])
def test_strip_after_patching_is_caught_by_the_reader(
    programs: Programs, store: StoreTree, name: str
) -> None:
    """The wrong order (patch, then strip) breaks lief-patched non-PIE executables. Whatever
    strip does, the reader must refuse exactly the files that no longer run."""
    logical = f"{HELLO}/bin/hello-{name}"
    program = store.add(logical, getattr(programs, name))
    LiefPatcher().apply(program, PATCH)
    _strip(program)
    runs = run_sandboxed(store, logical).stdout == GREETING + "\n"
    if runs:
        assert read_elf(program).interpreter == LD_SO
    else:
        with pytest.raises(ElfError, match="stripped after patching"):
            read_elf(program)
