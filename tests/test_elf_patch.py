"""Patching real gcc builds to a store interpreter and RUNPATH, then running them in a sandbox
with nothing but the store tree; readelf and patchelf check the files we write. Both writers
are tested: the in-place one (the default) and lief rebuilding the whole file."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bootstrap.elf.inplace import PT_GNU_PROPERTY
from bootstrap.elf.inspect import ElfError, read_elf
from bootstrap.elf.layout import Layout
from bootstrap.elf.patch import ElfPatch, ElfPatcher, InPlacePatcher, LiefPatcher
from tests.test_elf_programs import (
    _MAIN_SOURCE,
    GLIBC,
    GREET,
    GREETING,
    HELLO,
    LD_SO,
    Programs,
    StoreTree,
    gcc,
    readelf_warnings,
    requires_bwrap,
    run_sandboxed,
)
from tests.test_elf_programs import programs as programs

STORE_RUNPATH = (f"{GREET}/lib", f"{GLIBC}/lib")
PATCH = ElfPatch(interpreter=LD_SO, runpath=STORE_RUNPATH)
PATCHERS = pytest.mark.parametrize(
    "patcher", [InPlacePatcher(), LiefPatcher()], ids=["in-place", "lief"]
)
requires_patchelf = pytest.mark.skipif(
    shutil.which("patchelf") is None, reason="patchelf is not installed"
)


@pytest.fixture
def store(tmp_path: Path, programs: Programs) -> StoreTree:
    """glibc from the host, libgreet patched to find libc, executables not yet added."""
    store = StoreTree(tmp_path / "store")
    store.add_host_glibc()
    library = store.add(f"{GREET}/lib/libgreet.so.1", programs.library)
    assert InPlacePatcher().set_runpath(library, [f"{GLIBC}/lib"])
    return store


def _strip(path: Path) -> None:
    subprocess.run(["strip", path], check=True, capture_output=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@requires_bwrap
@PATCHERS
@pytest.mark.parametrize("stripped", [False, True], ids=["unstripped", "stripped-first"])
@pytest.mark.parametrize("name", ["pie", "nopie"])
def test_patched_program_runs_with_only_the_store(
    programs: Programs, store: StoreTree, name: str, stripped: bool, patcher: ElfPatcher
) -> None:
    logical = f"{HELLO}/bin/hello-{name}"
    program = store.add(logical, getattr(programs, name))
    if stripped:
        _strip(program)
        _strip(store.real(f"{GREET}/lib/libgreet.so.1"))
    assert run_sandboxed(store, logical).returncode != 0  # host interpreter: cannot start
    assert patcher.apply(program, PATCH)
    result = run_sandboxed(store, logical)
    assert (result.returncode, result.stdout) == (0, GREETING + "\n"), result.stderr
    assert readelf_warnings(program) == ""
    assert readelf_warnings(store.real(f"{GREET}/lib/libgreet.so.1")) == ""


@requires_patchelf
@PATCHERS
def test_patchelf_reads_back_what_we_wrote(
    programs: Programs, tmp_path: Path, patcher: ElfPatcher
) -> None:
    for source in (programs.pie, programs.nopie, programs.with_rpath, programs.with_old_rpath):
        copy = tmp_path / source.name
        shutil.copy2(source, copy)
        patcher.apply(copy, PATCH)
        for option, expected in (
            ("--print-interpreter", LD_SO),
            ("--print-rpath", ":".join(STORE_RUNPATH)),
            ("--print-needed", "libgreet.so.1\nlibc.so.6"),
        ):
            out = subprocess.run(["patchelf", option, copy], capture_output=True, text=True)
            assert out.stdout.strip() == expected, (source.name, option)


@PATCHERS
def test_patching_is_deterministic_and_idempotent(
    programs: Programs, tmp_path: Path, patcher: ElfPatcher
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for copy in (first, second):
        shutil.copy2(programs.nopie, copy)
        assert patcher.apply(copy, PATCH) is True
    assert _sha256(first) == _sha256(second)
    digest = _sha256(first)
    assert patcher.apply(first, PATCH) is False
    assert patcher.set_interpreter(first, LD_SO) is False
    assert patcher.set_runpath(first, STORE_RUNPATH) is False
    assert _sha256(first) == digest


@PATCHERS
def test_keeps_permission_bits_and_leaves_no_temporary_files(
    programs: Programs, tmp_path: Path, patcher: ElfPatcher
) -> None:
    copy = tmp_path / "hello"
    shutil.copy2(programs.pie, copy)
    copy.chmod(0o750)
    patcher.apply(copy, PATCH)
    assert copy.stat().st_mode & 0o7777 == 0o750
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hello"]


@PATCHERS
def test_rpath_becomes_runpath_and_can_be_removed(
    programs: Programs, tmp_path: Path, patcher: ElfPatcher
) -> None:
    copy = tmp_path / "hello"
    shutil.copy2(programs.with_old_rpath, copy)
    assert patcher.set_runpath(copy, [f"{GLIBC}/lib"])
    info = read_elf(copy)
    assert (info.rpath, info.runpath) == (None, f"{GLIBC}/lib")
    assert patcher.set_runpath(copy, [])
    info = read_elf(copy)
    assert (info.rpath, info.runpath) == (None, None)
    assert patcher.set_runpath(copy, []) is False


@PATCHERS
def test_shrinking_a_runpath_does_not_grow_the_file(
    programs: Programs, tmp_path: Path, patcher: ElfPatcher
) -> None:
    copy = tmp_path / "hello"
    shutil.copy2(programs.with_rpath, copy)
    size = copy.stat().st_size
    assert patcher.set_runpath(copy, ["/opt/greet"])
    assert copy.stat().st_size <= size
    assert read_elf(copy).runpath == "/opt/greet"
    assert b"/usr/lib/greet" not in copy.read_bytes()


@PATCHERS
def test_refuses_to_add_an_interpreter(
    programs: Programs, tmp_path: Path, patcher: ElfPatcher
) -> None:
    for source in (programs.library, programs.static, programs.static_pie):
        copy = tmp_path / source.name
        shutil.copy2(source, copy)
        digest = _sha256(copy)
        with pytest.raises(ElfError, match="has no PT_INTERP"):
            patcher.set_interpreter(copy, LD_SO)
        assert _sha256(copy) == digest


@PATCHERS
def test_refuses_bad_requests_and_bad_files(
    programs: Programs, tmp_path: Path, patcher: ElfPatcher
) -> None:
    copy = tmp_path / "static"
    shutil.copy2(programs.static, copy)
    with pytest.raises(ElfError, match="no use for a RUNPATH"):
        patcher.set_runpath(copy, ["/x"])
    library = tmp_path / "lib.so"
    shutil.copy2(programs.library, library)
    with pytest.raises(ElfError, match="contains ':'"):
        patcher.set_runpath(library, ["/a:/b"])
    text = tmp_path / "text"
    text.write_text("not an ELF\n")
    with pytest.raises(ElfError, match="not an ELF file"):
        patcher.set_runpath(text, ["/x"])


@requires_bwrap
@PATCHERS
@pytest.mark.parametrize("name", ["pie", "nopie"])
def test_strip_after_patching_is_caught_by_the_reader(
    programs: Programs, store: StoreTree, name: str, patcher: ElfPatcher
) -> None:
    """The wrong order (patch, then strip) breaks lief-patched non-PIE executables. Whatever
    strip does, the reader must refuse exactly the files that no longer run. What the
    in-place writer leaves is a consistent file, which strip keeps runnable."""
    logical = f"{HELLO}/bin/hello-{name}"
    program = store.add(logical, getattr(programs, name))
    patcher.apply(program, PATCH)
    _strip(program)
    runs = run_sandboxed(store, logical).stdout == GREETING + "\n"
    if runs:
        assert read_elf(program).interpreter == LD_SO
    else:
        with pytest.raises(ElfError, match="stripped after patching"):
            read_elf(program)
    if isinstance(patcher, InPlacePatcher):
        assert runs


# The host's own loader under a longer name, so a new interpreter never fits the old slot.
HOST_LOADER = str(Path("/lib64/ld-linux-x86-64.so.2").resolve())
HOST_LIBS = str(
    Path(subprocess.check_output(["gcc", "-print-file-name=libc.so.6"], text=True)).parent
)
LONG_ENTRY = "/nonexistent/" + "x" * 100
HOST_PROGRAMS = (("ls", "--version"), ("sort", "--version"), ("dash", "-c", "echo ok"))


def _host_patch(*dirs: str) -> ElfPatch:
    return ElfPatch(interpreter=HOST_LOADER, runpath=(*dirs, HOST_LIBS, LONG_ENTRY))


def _readback(path: Path, patch: ElfPatch) -> None:
    for option, expected in (
        ("--print-interpreter", patch.interpreter),
        ("--print-rpath", ":".join(patch.runpath)),
    ):
        out = subprocess.run(["patchelf", option, path], capture_output=True, text=True)
        assert out.stdout.strip() == expected, (path.name, option)
    dynamic = subprocess.run(["readelf", "-dW", path], capture_output=True, text=True)
    assert f"Library runpath: [{':'.join(patch.runpath)}]" in dynamic.stdout
    assert readelf_warnings(path) == ""


@requires_patchelf
@pytest.mark.parametrize("command", HOST_PROGRAMS, ids=[c[0] for c in HOST_PROGRAMS])
def test_host_programs_patched_in_place_still_run(tmp_path: Path, command: tuple) -> None:
    """Real host programs get a longer interpreter and RUNPATH in their own slack: the file
    keeps its size, reads back right, runs, and still runs after strip."""
    source = shutil.which(command[0])
    if source is None:
        pytest.skip(f"{command[0]} is not installed")
    copy = tmp_path / command[0]
    shutil.copy2(source, copy)
    expected = subprocess.run([source, *command[1:]], capture_output=True, text=True)
    assert InPlacePatcher().apply(copy, _host_patch())
    assert copy.stat().st_size == Path(source).stat().st_size
    assert b"/lib64/ld-linux-x86-64.so.2" not in copy.read_bytes()
    _readback(copy, _host_patch())
    for program in (copy, tmp_path / "stripped"):
        if program != copy:
            subprocess.run(["strip", "-o", program, copy], check=True)
        result = subprocess.run([program, *command[1:]], capture_output=True, text=True)
        assert (result.returncode, result.stdout) == (expected.returncode, expected.stdout)


@requires_patchelf
def test_without_room_after_dynstr_the_string_table_is_copied(
    programs: Programs, tmp_path: Path
) -> None:
    """Without -z separate-code, code follows .dynstr in its segment and cannot slide; the
    table is copied, with the new RUNPATH, into the slack at the segment's end."""
    main_c = tmp_path / "main.c"
    main_c.write_text(_MAIN_SOURCE)
    program = tmp_path / "hello-noseparate"
    link = ("-L", programs.library.parent, "-lgreet")
    gcc("-O2", "-Wl,-z,noseparate-code", "-o", program, main_c, *link)
    size = program.stat().st_size
    patch = _host_patch(str(programs.library.parent))
    assert InPlacePatcher().apply(program, patch)
    assert program.stat().st_size == size
    _readback(program, patch)
    result = subprocess.run([program], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, GREETING + "\n"), result.stderr


def test_in_place_patching_does_not_import_lief(programs: Programs, tmp_path: Path) -> None:
    """Neither writing into slack nor adding a segment at the end needs lief."""
    copies = [tmp_path / "slack", tmp_path / "segment"]
    for copy in copies:
        shutil.copy2(programs.pie, copy)
    script = (
        "import sys; from bootstrap.elf.patch import ElfPatch, InPlacePatcher; "
        f"assert InPlacePatcher().apply(sys.argv[1], {PATCH!r}); "
        f"assert InPlacePatcher().apply(sys.argv[2], {_host_patch(HUGE_ENTRY)!r}); "
        "print('lief' in sys.modules)"
    )
    command = [sys.executable, "-c", script, *copies]
    out = subprocess.run(command, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


HUGE_ENTRY = "/" + "y" * 5000  # more than any slack in a small program


@requires_patchelf
def test_without_room_a_new_segment_holds_the_strings(programs: Programs, tmp_path: Path) -> None:
    """A RUNPATH longer than any slack goes, with a copy of .dynstr, into a new LOAD segment
    at the end of the file: one page of padding at most, the program runs, before and after
    strip."""
    copy = tmp_path / "hello"
    shutil.copy2(programs.pie, copy)
    size = copy.stat().st_size
    dynstr = int(_dynamic_value(copy, "STRSZ"))
    patch = _host_patch(str(programs.library.parent), HUGE_ENTRY)
    assert InPlacePatcher().apply(copy, patch)
    added = len(":".join(patch.runpath)) + 1 + len(patch.interpreter) + 1
    assert size < copy.stat().st_size <= size + 4096 + dynstr + added
    _readback(copy, patch)
    for program in (copy, tmp_path / "stripped"):
        if program != copy:
            subprocess.run(["strip", "-o", program, copy], check=True)
        result = subprocess.run([program], capture_output=True, text=True)
        assert (result.returncode, result.stdout) == (0, GREETING + "\n"), result.stderr


@requires_patchelf
def test_without_room_or_a_spare_header_lief_writes_the_file(
    programs: Programs, tmp_path: Path
) -> None:
    """With no PT_NOTE that repeats PT_GNU_PROPERTY (here made PT_NULL) there is no program
    header for a new segment: lief rewrites the file."""
    copy = tmp_path / "hello"
    shutil.copy2(programs.pie, copy)
    with open(copy, "r+b") as stream:
        elf = Layout(copy, stream.fileno())
        for segment in elf.segments:
            if segment.type == PT_GNU_PROPERTY:
                segment.type = 0  # PT_NULL
        os.pwrite(stream.fileno(), elf.packed_segments(), elf.phoff)
    size = copy.stat().st_size
    patch = ElfPatch(interpreter=LD_SO, runpath=(HUGE_ENTRY,))
    assert InPlacePatcher().apply(copy, patch)
    assert copy.stat().st_size > size
    _readback(copy, patch)


def _dynamic_value(path: Path, tag: str) -> str:
    dynamic = subprocess.run(["readelf", "-dW", path], capture_output=True, text=True).stdout
    line = next(line for line in dynamic.splitlines() if f"({tag})" in line)
    return line.split()[2]
