"""The stage-0 seed: a real rebuild from the pinned sources, and the tools inside it at work.

The module builds the seed once (about 1.5 minutes on 2 cores; downloads are cached under
~/.cache/bootstrap) through the CLI, as a user would, and checks it against the pin that was
recorded in seeds/x86_64-linux.json from an earlier, separate build.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from bootstrap.cli.seed import render_file_table
from bootstrap.errors import BootstrapError
from bootstrap.hashing import hash_file
from bootstrap.seed.archive import ARCHIVE_TOP, archive_file_hashes, write_archive
from bootstrap.seed.manifest import load_manifest, pinned_hash, pinned_tree_hash
from bootstrap.seed.uapi import decide, drop_kernel_only, sanitize_header, syscall_header
from bootstrap.unpack import unpack
from tests.conftest import run_cli

HOST_UAPI = Path("/usr/include")
HOST_ASM = Path("/usr/include/x86_64-linux-gnu/asm")


@pytest.fixture(scope="module")
def manifest():
    return load_manifest()


@pytest.fixture(scope="module")
def seed_archive(tmp_path_factory, manifest) -> Path:
    out = tmp_path_factory.mktemp("seed") / manifest.archive_name
    result = run_cli("seed", "build", "--cc", "gcc", "--out", str(out))
    assert f"sha256 {hash_file('sha256', out).hex}" in result.stdout.decode()
    assert f"uncompressed tar: sha256 {manifest.tar_sha256.hex}" in result.stdout.decode()
    return out


@pytest.fixture(scope="module")
def seed_dir(tmp_path_factory, seed_archive) -> Path:
    return unpack(seed_archive, tmp_path_factory.mktemp("unpacked") / "seed", strip_top=True)


def run(argv, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=True, **kwargs)


def is_static(path: Path) -> bool:
    with open(path, "rb") as stream:
        segments = [segment["p_type"] for segment in ELFFile(stream).iter_segments()]
    return "PT_INTERP" not in segments and "PT_DYNAMIC" not in segments


# --- the real build ------------------------------------------------------------------------------


def test_rebuild_matches_pin(manifest, seed_archive):
    assert manifest.archive_sha256 is not None, "seeds/x86_64-linux.json has no pin"
    assert hash_file("sha256", seed_archive) == manifest.archive_sha256
    assert seed_archive.stat().st_size == manifest.archive_size


def test_archive_is_deterministic_tar(seed_archive, manifest):
    with tarfile.open(seed_archive) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names, key=lambda n: n.split("/"))
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
    assert {m.mtime for m in members} == {manifest.source_date_epoch}
    assert {m.mode for m in members if not m.issym()} <= {0o755, 0o644}
    links = [m for m in members if m.issym()]
    assert {(m.mode, m.linkname) for m in links} == {(0o777, "busybox")}
    assert "seed/bin/sh" in {m.name for m in links}
    with open(seed_archive, "rb") as raw:
        header = raw.read(10)
    assert header[4:8] == b"\0\0\0\0"  # gzip mtime 0
    assert header[3] & 0x08 == 0  # no file name stored


def test_manifest_contents_are_in_the_seed(manifest, seed_dir):
    for entry in manifest.contents:
        path = seed_dir.parent / entry
        assert path.is_dir() if entry.endswith("/") else path.is_file(), entry


def test_seed_binaries_are_static(seed_dir):
    for tool in ("tcc", "busybox", "make"):
        assert is_static(seed_dir / "bin" / tool), tool


def test_tcc_compiles_and_runs_static_hello(seed_dir, tmp_path):
    (tmp_path / "hello.c").write_text(
        "#include <stdio.h>\n#include <stdlib.h>\n#include <math.h>\n"
        'int main(void) { char *end; long double x = strtold("0x1p-16382", &end);\n'
        '  printf("hello from tcc %d %s\\n", (int)sqrt(1764.0), x > 0 ? "ld-ok" : "ld-zero");\n'
        "  return 0; }\n"
    )
    tcc = [str(seed_dir / "bin" / "tcc"), f"-B{seed_dir / 'lib' / 'tcc'}", "-static"]
    run([*tcc, "hello.c", "-o", "hello", "-lm"], tmp_path)
    assert is_static(tmp_path / "hello")
    assert run(["./hello"], tmp_path).stdout == "hello from tcc 42 ld-ok\n"


def test_busybox_sh_runs(seed_dir, tmp_path):
    busybox = str(seed_dir / "bin" / "busybox")
    script = 'for i in 1 2 3; do n=$((n + i)); done; echo "sum=$n" | tr a-z A-Z'
    assert run([busybox, "sh", "-c", script], tmp_path).stdout == "SUM=6\n"
    assert "BusyBox v1.35.0" in run([busybox, "--help"], tmp_path).stdout


def test_make_runs_with_busybox_shell(seed_dir, tmp_path):
    (tmp_path / "sh").symlink_to(seed_dir / "bin" / "busybox")
    (tmp_path / "Makefile").write_text(
        "all: out.txt\n\tcat out.txt\nout.txt: in.txt\n\tsed s/in/out/ in.txt > $@\n"
    )
    (tmp_path / "in.txt").write_text("made in make\n")
    make = [str(seed_dir / "bin" / "make"), f"SHELL={tmp_path / 'sh'}"]
    assert run(make, tmp_path).stdout.endswith("made out make\n")
    assert "is up to date" in run([*make, "out.txt"], tmp_path).stdout
    assert "GNU Make 4.3" in run([make[0], "--version"], tmp_path).stdout


def test_seed_tcc_rebuilds_make_project_with_seed_tools(seed_dir, tmp_path):
    """The seed alone (tcc + make + busybox sh) builds a two-file C program from a Makefile."""
    (tmp_path / "sh").symlink_to(seed_dir / "bin" / "busybox")
    (tmp_path / "lib.c").write_text("int twice(int x) { return 2 * x; }\n")
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\nint twice(int);\nint main(void) { printf("%d\\n", twice(21)); }\n'
    )
    cc = f"{seed_dir / 'bin' / 'tcc'} -B{seed_dir / 'lib' / 'tcc'} -static"
    (tmp_path / "Makefile").write_text(
        f"CC = {cc}\nprog: main.o lib.o\n\t$(CC) -o $@ main.o lib.o\n"
        "%.o: %.c\n\t$(CC) -c $< -o $@\n"
    )
    run([str(seed_dir / "bin" / "make"), f"SHELL={tmp_path / 'sh'}", "-j2"], tmp_path)
    assert run(["./prog"], tmp_path).stdout == "42\n"


def test_uapi_headers_match_host_linux_libc_dev(seed_dir):
    """Oracle: Debian's linux-libc-dev (made by `make headers_install` from 6.1.x)."""
    if not (HOST_ASM / "unistd_64.h").is_file():
        pytest.skip("linux-libc-dev is not installed")
    pairs = [(seed_dir / "include" / "asm", HOST_ASM)]
    pairs += [(seed_dir / "include" / d, HOST_UAPI / d) for d in ("linux", "asm-generic")]
    same = differ = 0
    for ours, host in pairs:
        for header in ours.rglob("*.h"):
            theirs = host / header.relative_to(ours)
            if theirs.is_file():
                if theirs.read_bytes() == header.read_bytes():
                    same += 1
                else:
                    differ += 1
    assert (seed_dir / "include/asm/unistd_64.h").read_bytes() == (
        HOST_ASM / "unistd_64.h"
    ).read_bytes()
    # the host's headers come from a later 6.1 stable release: a few files really changed
    assert same > 800 and differ < same // 50, (same, differ)


def test_file_table_marks_the_files_that_differ(seed_archive):
    files = archive_file_hashes(seed_archive)
    other = {**files, "seed/bin/tcc": "0" * 64}
    table = render_file_table({"pinned sha256": files, "rebuilt sha256": other}).splitlines()
    assert len(table) == len(files) + 1 and table[0].split() == [
        "pinned",
        "sha256",
        "rebuilt",
        "sha256",
        "file",
    ]
    marked = [line for line in table if line.startswith("!=")]
    assert len(marked) == 1 and marked[0].endswith(" seed/bin/tcc")


# --- import -----------------------------------------------------------------------------------


def test_import_accepts_the_pinned_archive(seed_archive, tmp_path):
    env = {**os.environ, "BOOTSTRAP_CACHE_DIR": str(tmp_path / "cache")}
    result = run_cli("seed", "import", str(seed_archive), env=env)
    cached = Path(result.stdout.decode().strip())
    assert cached.parent == tmp_path / "cache"
    assert cached.name == hash_file("sha256", seed_archive).hex
    assert cached.read_bytes() == seed_archive.read_bytes()


def test_import_refuses_a_corrupted_archive(seed_archive, tmp_path):
    corrupt = tmp_path / "seed.tar.gz"
    data = bytearray(seed_archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    corrupt.write_bytes(bytes(data))
    env = {**os.environ, "BOOTSTRAP_CACHE_DIR": str(tmp_path / "cache")}
    result = run_cli("seed", "import", str(corrupt), check=False, env=env)
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert stderr.count("\n") == 1 and stderr.startswith("bootstrap: error: ")
    assert "does not match the seed pin" in stderr and str(corrupt) in stderr
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_import_by_url_verifies_too(seed_archive, tmp_path):
    corrupt = tmp_path / "seed.tar.gz"
    corrupt.write_bytes(seed_archive.read_bytes()[:-100])
    env = {**os.environ, "BOOTSTRAP_CACHE_DIR": str(tmp_path / "cache")}
    result = run_cli("seed", "import", corrupt.as_uri(), check=False, env=env)
    assert result.returncode == 1
    # the fetcher may log a warning per failed URL first; the error itself is one line
    error = result.stderr.decode().splitlines()[-1]
    assert error.startswith("bootstrap: error: ") and "hash mismatch" in error
    assert not (tmp_path / "cache" / hash_file("sha256", seed_archive).hex).exists()
    good = run_cli("seed", "import", seed_archive.as_uri(), env=env)
    assert Path(good.stdout.decode().strip()).read_bytes() == seed_archive.read_bytes()


def test_import_of_a_missing_file_is_one_line(tmp_path):
    result = run_cli("seed", "import", str(tmp_path / "nope.tar.gz"), check=False)
    assert result.returncode == 1
    assert result.stderr.decode().count("\n") == 1


# --- manifest and archive writer (no build needed) --------------------------------------------


def test_manifest_pins_every_patch(manifest):
    for patch in manifest.patches:
        assert hash_file("sha256", manifest.root / patch.path) == patch.sha256
    assert {s.unpack_to for s in manifest.sources} == {"tcc", "musl", "busybox", "make", "linux"}
    for source in manifest.sources:
        assert source.urls[0].startswith("mirror://debian/pool/main/")


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.pop("sources"), "sources"),
        (lambda d: d["sources"][1].update(sha256="abc"), "sources[1].sha256"),
        (lambda d: d["build"].update(max_rounds=-1), "build.max_rounds"),
        (lambda d: d["archive"].update(sha256="XYZ"), "archive.sha256"),
        (lambda d: d["patches"][0].pop("path"), "patches[0].path"),
    ],
)
def test_bad_manifest_is_one_line_naming_the_field(tmp_path, edit, field):
    document = json.loads(load_manifest().path.read_text())
    edit(document)
    path = tmp_path / "seeds" / "bad.json"
    path.parent.mkdir()
    path.write_text(json.dumps(document))
    with pytest.raises(BootstrapError) as error:
        load_manifest(path)
    assert f"field {field}:" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("field", "read_pin"), [("sha256", pinned_hash), ("tree_nar_sha256", pinned_tree_hash)]
)
def test_missing_pin_is_one_line_naming_the_field(tmp_path, field, read_pin):
    document = json.loads(load_manifest().path.read_text())
    del document["archive"][field]
    path = tmp_path / "unpinned.json"
    path.write_text(json.dumps(document))
    with pytest.raises(BootstrapError) as error:
        read_pin(load_manifest(path))
    message = str(error.value)
    assert message.startswith(f"{path}: field archive.{field} is empty") and "\n" not in message


def test_write_archive_ignores_owners_times_and_umask(tmp_path):
    def tree(root: Path, mtime: int, mode: int) -> Path:
        (root / "bin").mkdir(parents=True)
        (root / "bin" / "tool").write_text("#!/bin/sh\n")
        (root / "bin" / "tool").chmod(0o700)
        (root / "data.txt").write_text("data\n")
        (root / "data.txt").chmod(mode)
        for path in (root / "bin" / "tool", root / "data.txt", root / "bin", root):
            os.utime(path, (mtime, mtime))
        return root

    first = write_archive(tree(tmp_path / "a", 1000, 0o600), tmp_path / "a.tar.gz", 42)
    second = write_archive(tree(tmp_path / "b", 2000, 0o664), tmp_path / "b.tar.gz", 42)
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    assert first == second
    assert set(first.files) == {f"{ARCHIVE_TOP}/bin/tool", f"{ARCHIVE_TOP}/data.txt"}
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        modes = {m.name: m.mode for m in tar.getmembers()}
    assert modes[f"{ARCHIVE_TOP}/bin/tool"] == 0o755 and modes[f"{ARCHIVE_TOP}/data.txt"] == 0o644


# --- UAPI header cleaning (the rules of scripts/headers_install.sh and unifdef) ---------------


def test_kernel_only_blocks_are_dropped():
    text = (
        "#ifndef _UAPI_LINUX_X_H\n#define _UAPI_LINUX_X_H\n"
        "#ifdef __KERNEL__\nkernel();\n#else\nuser();\n#endif\n"
        "#if defined(__KERNEL__) || defined(FOO)\nmaybe();\n#endif\n"
        "#ifndef __KERNEL__ /* comment */\nalways();\n#endif\n"
        "#if defined(__KERNEL__)\nk();\n#elif defined(__linux__)\nl();\n#endif\n"
        'static inline int f(void __user *p) { asm volatile(""); }\n'
        "#endif /* _UAPI_LINUX_X_H */\n"
    )
    assert sanitize_header(text) == (
        "#ifndef _LINUX_X_H\n#define _LINUX_X_H\n"
        "user();\n"
        "#if defined(__KERNEL__) || defined(FOO)\nmaybe();\n#endif\n"
        "always();\n"
        "#if defined(__linux__)\nl();\n#endif\n"
        'static __inline__ int f(void *p) { __asm__ volatile(""); }\n'  # as the kernel's sed
        "#endif /* _LINUX_X_H */\n"
    )


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("defined(__KERNEL__)", False),
        ("!defined(__KERNEL__) || defined(USE_SEQ_MACROS)", True),
        ("defined(__DVB_CORE__) || !defined(__KERNEL__)", True),
        ("__BITS_PER_LONG == 32 || defined(__KERNEL__)", None),
        ("(A != 32 || !defined(B)) && !defined(__KERNEL__)", None),
        ("!defined(__EXPORTED_HEADERS__)", False),
    ],
)
def test_conditions_are_decided_only_by_known_symbols(expr, value):
    assert decide(expr) is value


def test_nested_conditionals_inside_dropped_blocks_vanish():
    text = "#ifdef __KERNEL__\n#ifdef X\na\n#endif\n#else\nb\n#endif\nc\n"
    assert drop_kernel_only(text) == "b\nc\n"


def test_syscall_header_follows_the_table():
    table = "# comment\n0\tcommon\tread\tsys_read\n1\t64\twrite\tsys_write\n512\tx32\tioctl\tx\n"
    header = syscall_header("unistd_64.h", table, ("common", "64"), "")
    assert "#define __NR_read 0\n#define __NR_write 1\n" in header
    assert "ioctl" not in header and "#define __NR_syscalls 2" in header
    x32 = syscall_header("unistd_x32.h", table, ("common", "x32"), "__X32_SYSCALL_BIT")
    assert "#define __NR_ioctl (__X32_SYSCALL_BIT + 512)" in x32


# --- diverse double-compiling (two more full builds) -------------------------------------------


@pytest.mark.slow
def test_audit_ddc_command_prints_the_table(tmp_path):
    if not (shutil.which("gcc") and shutil.which("clang")):
        pytest.skip("needs both gcc and clang")
    result = run_cli("audit", "ddc", "--work-dir", str(tmp_path))
    table = result.stdout.decode()
    print(table)  # the reviewer's table, shown with pytest -s
    assert "archives: IDENTICAL" in table and "matches" in table
    assert "seed/bin/tcc" in table
    assert not [line for line in table.splitlines() if line.startswith("!=")]
    archives = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".log"))
    assert archives == ["seed-clang.tar.gz", "seed-gcc.tar.gz"]  # beside each, its build log


@pytest.mark.slow
def test_no_fixpoint_within_one_round_fails_clearly(manifest, tmp_path):
    document = json.loads(manifest.path.read_text())
    document["build"]["max_rounds"] = 1
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "one.json").write_text(json.dumps(document))
    for patch in manifest.patches:  # pinned files, relative to the project root
        (tmp_path / patch.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(manifest.root / patch.path, tmp_path / patch.path)
    result = run_cli(
        "seed",
        "build",
        "--cc",
        "gcc",
        "--manifest",
        str(tmp_path / "seeds" / "one.json"),
        "--out",
        str(tmp_path / "seed.tar.gz"),
        check=False,
    )
    assert result.returncode == 1
    assert "NO FIXPOINT after 1 rounds" in result.stderr.decode().splitlines()[-1]
    assert not (tmp_path / "seed.tar.gz").exists()


@pytest.mark.slow
def test_verify_rebuilds_and_matches_the_pin():
    result = run_cli("seed", "verify", "--cc", "clang" if shutil.which("clang") else "gcc")
    assert result.stdout.decode().startswith("seed OK: rebuilt with ")
