"""Reading ELF files: classification on real gcc builds, clear errors on bad files, and
agreement with patchelf (the oracle) on a bounded sample of the host's binaries."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bootstrap.elf.inspect import ElfError, ElfKind, is_elf, read_elf
from tests.test_elf_programs import Programs
from tests.test_elf_programs import programs as programs

SAMPLE_SIZE = 40


def test_classifies_gcc_builds(programs: Programs) -> None:
    expected = {
        programs.pie: (ElfKind.DYNAMIC_EXECUTABLE, "ET_DYN"),
        programs.nopie: (ElfKind.DYNAMIC_EXECUTABLE, "ET_EXEC"),
        programs.library: (ElfKind.SHARED_LIBRARY, "ET_DYN"),
        programs.static: (ElfKind.STATIC_EXECUTABLE, "ET_EXEC"),
        programs.static_pie: (ElfKind.STATIC_PIE, "ET_DYN"),
        programs.object_file: (ElfKind.RELOCATABLE, "ET_REL"),
    }
    for path, (kind, elf_type) in expected.items():
        info = read_elf(path)
        assert (info.kind, info.elf_type) == (kind, elf_type), path.name


def test_reads_loader_requests(programs: Programs) -> None:
    pie = read_elf(programs.pie)
    assert pie.interpreter == "/lib64/ld-linux-x86-64.so.2"
    assert pie.needed == ("libgreet.so.1", "libc.so.6")
    assert (pie.rpath, pie.runpath, pie.soname) == (None, None, None)
    library = read_elf(programs.library)
    assert (library.soname, library.interpreter, library.needed) == (
        "libgreet.so.1",
        None,
        ("libc.so.6",),
    )
    static = read_elf(programs.static)
    assert (static.interpreter, static.needed) == (None, ())


def test_runpath_and_old_style_rpath(programs: Programs) -> None:
    new = read_elf(programs.with_rpath)
    assert (new.runpath, new.rpath) == ("/usr/lib/greet:/opt/greet", None)
    assert new.search_path == ("/usr/lib/greet", "/opt/greet")
    old = read_elf(programs.with_old_rpath)
    assert (old.runpath, old.rpath) == (None, "/usr/lib/greet")
    assert old.search_path == ("/usr/lib/greet",)


def test_libc_is_a_runnable_library() -> None:
    libc = Path(subprocess.check_output(["gcc", "-print-file-name=libc.so.6"], text=True).strip())
    info = read_elf(libc.resolve())
    assert info.kind is ElfKind.SHARED_LIBRARY
    assert info.interpreter is not None and info.soname == "libc.so.6"


def _bad_files(tmp_path: Path, programs: Programs) -> dict[str, tuple[Path, str]]:
    """Bad inputs, each with a fragment its error message must contain."""
    real = programs.pie.read_bytes()
    files = {
        "text": (b"#!/bin/sh\necho hi\n", "not an ELF file"),
        "empty": (b"", "not an ELF file"),
        "header-only": (real[:40], "truncated ELF header"),
        "half": (real[: len(real) // 2], "truncated"),
        "elf32": (real[:4] + b"\x01" + real[5:], "32-bit"),
        "big-endian": (real[:5] + b"\x02" + real[6:], "ELFDATA2LSB"),
        "aarch64": (real[:18] + (183).to_bytes(2, "little") + real[20:], "EM_AARCH64"),
    }
    result = {}
    for name, (data, fragment) in files.items():
        (tmp_path / name).write_bytes(data)
        result[name] = (tmp_path / name, fragment)
    host_i386 = Path("/usr/lib32/ld-linux.so.2")
    if host_i386.exists():
        result["host-i386"] = (host_i386, "32-bit")
    return result


def test_bad_files_raise_one_clear_line(programs: Programs, tmp_path: Path) -> None:
    for name, (path, fragment) in _bad_files(tmp_path, programs).items():
        with pytest.raises(ElfError) as caught:
            read_elf(path)
        message = str(caught.value)
        assert message.startswith(f"{path}: "), name
        assert fragment in message, (name, message)
        assert "\n" not in message, name


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ElfError, match="cannot read"):
        read_elf(tmp_path / "missing")
    with pytest.raises(ElfError, match="cannot read"):
        read_elf(tmp_path)


def test_is_elf(programs: Programs, tmp_path: Path) -> None:
    (tmp_path / "script").write_text("#!/bin/sh\n")
    assert is_elf(programs.pie) and is_elf(programs.object_file)
    assert not is_elf(tmp_path / "script")
    assert not is_elf(tmp_path / "missing")


def _sample(pattern_dirs: list[str], predicate) -> list[Path]:
    candidates = sorted(
        path
        for directory in pattern_dirs
        for path in Path(directory).iterdir()
        if path.is_file() and not path.is_symlink() and predicate(path)
    )
    step = max(1, len(candidates) // SAMPLE_SIZE)
    return [path for path in candidates[::step] if is_elf(path)][:SAMPLE_SIZE]


def _patchelf(option: str, path: Path) -> str | None:
    result = subprocess.run(["patchelf", option, path], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


@pytest.mark.skipif(shutil.which("patchelf") is None, reason="patchelf is not installed")
def test_agrees_with_patchelf_on_host_binaries() -> None:
    sample = _sample(["/usr/bin"], lambda p: True) + _sample(
        ["/usr/lib/x86_64-linux-gnu"], lambda p: ".so" in p.name
    )
    assert len(sample) > 40
    for path in sample:
        info = read_elf(path)
        assert _patchelf("--print-interpreter", path) == info.interpreter, path
        assert (_patchelf("--print-rpath", path) or None) == (info.runpath or info.rpath), path
        needed = _patchelf("--print-needed", path)
        assert (tuple(needed.split()) if needed else ()) == info.needed, path
