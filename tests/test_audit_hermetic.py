"""The hermeticity audit on a store tree of real gcc builds: host-linked outputs show every
kind of violation, fixed-up outputs show none, and the CLI exits accordingly."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bootstrap.audit.hermetic import (
    AuditedPath,
    HostReference,
    ViolationKind,
    audit_hermetic,
    host_references,
    render_json,
    render_table,
)
from bootstrap.elf.paths import PathMap
from tests.test_elf_programs import (
    DASH,
    GLIBC,
    GREET,
    HELLO,
    LD_SO,
    STORE_DIR,
    Programs,
    StoreTree,
    fix_all,
    gcc,
    host_built_store,
)
from tests.test_elf_programs import programs as programs

CLOSURE = {GLIBC, GREET, HELLO, DASH}
K = ViolationKind
PROGRAMS = ("hello-pie", "hello-nopie")


@pytest.fixture
def store(tmp_path: Path, programs: Programs) -> StoreTree:
    """The host-built store plus a script and a data file."""
    store = host_built_store(tmp_path / "store", programs)
    store.real(f"{GREET}/lib/libgreet.so").symlink_to("libgreet.so.1")
    store.real(f"{HELLO}/bin/run.sh").write_text("#!/bin/sh\nexec hello </dev/null >/tmp/x\n")
    store.real(f"{HELLO}/share/notes.txt").parent.mkdir()
    store.real(f"{HELLO}/share/notes.txt").write_text("data files are not scanned: /usr/lib\n")
    return store


def _audit(store: StoreTree, outputs=(GREET, HELLO), closure=CLOSURE, allowed=()):
    audited = [AuditedPath(output, store.real(output)) for output in outputs]
    return audit_hermetic(audited, closure, STORE_DIR, store.path_map, allowed)


def _summary(violations) -> set[tuple[ViolationKind, str, str]]:
    return {(v.kind, v.file.rsplit("/", 1)[-1], v.value) for v in violations}


def test_host_linked_outputs_violate(store: StoreTree) -> None:
    assert _summary(_audit(store)) == {
        *_for_both_programs(
            (K.INTERPRETER_OUTSIDE_STORE, "/lib64/ld-linux-x86-64.so.2"),
            (K.NEEDED_UNRESOLVED, "libgreet.so.1"),
            (K.NEEDED_UNRESOLVED, "libc.so.6"),
        ),
        (K.NEEDED_UNRESOLVED, "libgreet.so.1", "libc.so.6"),
        (K.INTERPRETER_OUTSIDE_STORE, "run.sh", "/bin/sh"),
    }


def _for_both_programs(*findings: tuple[ViolationKind, str]) -> set[tuple[ViolationKind, str, str]]:
    return {(kind, name, value) for name in PROGRAMS for kind, value in findings}


def test_fixed_outputs_are_hermetic(store: StoreTree) -> None:
    fix_all(store)
    assert _audit(store) == []


def test_closure_must_hold_what_is_used(store: StoreTree) -> None:
    fix_all(store)
    assert _summary(_audit(store, closure=CLOSURE - {GLIBC, DASH})) == {
        *_for_both_programs(
            (K.INTERPRETER_OUTSIDE_CLOSURE, LD_SO),
            (K.RUNPATH_OUTSIDE_CLOSURE, f"{GLIBC}/lib"),
            (K.NEEDED_OUTSIDE_CLOSURE, "libc.so.6"),
        ),
        (K.RUNPATH_OUTSIDE_CLOSURE, "libgreet.so.1", f"{GLIBC}/lib"),
        (K.NEEDED_OUTSIDE_CLOSURE, "libgreet.so.1", "libc.so.6"),
        (K.INTERPRETER_OUTSIDE_CLOSURE, "run.sh", f"{DASH}/bin/sh"),
    }


def test_missing_interpreter_and_host_runpath(store: StoreTree, programs: Programs) -> None:
    fix_all(store)
    store.real(f"{DASH}/bin/sh").unlink()
    store.add(f"{HELLO}/bin/hello-rpath", programs.with_rpath)
    found = _summary(_audit(store, outputs=(HELLO,)))
    assert (K.INTERPRETER_MISSING, "run.sh", f"{DASH}/bin/sh") in found
    assert (K.RUNPATH_OUTSIDE_STORE, "hello-rpath", "/usr/lib/greet") in found
    assert (K.RUNPATH_OUTSIDE_STORE, "hello-rpath", "/opt/greet") in found


def test_host_strings_in_binaries_and_scripts(store: StoreTree, programs: Programs) -> None:
    fix_all(store)
    store.add(f"{HELLO}/bin/hello-host", programs.with_host_string)
    script = store.real(f"{HELLO}/bin/run.sh")
    script.write_text(script.read_text() + "PATH=/usr/bin:/bin ldconfig -C /etc/ld.so.cache\n")
    fix_all(store)
    found = _summary(_audit(store, outputs=(HELLO,)))
    assert found == {
        (K.HOST_REFERENCE, "hello-host", "/usr/share/hello/data"),
        (K.HOST_REFERENCE, "run.sh", "/usr/bin"),
        (K.HOST_REFERENCE, "run.sh", "/bin"),
        (K.HOST_REFERENCE, "run.sh", "/etc/ld.so.cache"),
    }
    allowed = ["/usr/share/hello/data", "/usr/bin", "/bin", "/etc/ld.so.cache"]
    assert _audit(store, outputs=(HELLO,), allowed=allowed) == []


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\0/bin/sh\0", ["/bin/sh"]),
        (b"PATH=/usr/bin:/bin", ["/usr/bin", "/bin"]),
        (b"-L/usr/lib -I/usr/include", ["/usr/lib", "/usr/include"]),
        (b"--prefix=/usr", ["/usr"]),
        (b'"/lib64/ld-linux-x86-64.so.2"', ["/lib64/ld-linux-x86-64.so.2"]),
        (b"/etc/ld.so.cache /etc/ld.so.conf.d", ["/etc/ld.so.cache", "/etc/ld.so.conf.d"]),
        (b"/sbin/ldconfig /libx32/x", ["/sbin/ldconfig", "/libx32/x"]),
        (f"{HELLO}/usr/lib {HELLO}/bin".encode(), []),
        (b"/library /binary /usr2 /usr.d /lib-x", []),
        (b"/dev/null /proc/self/exe /tmp/x /sys/kernel /etc/passwd", []),
    ],
)
def test_host_reference_strings(data: bytes, expected: list[str]) -> None:
    assert list(host_references(data)) == [HostReference(text) for text in expected]


# gcc -O2 stores this 15-byte string with two `movabs $imm64` (48 b8 "/usr/lib", 48 b8
# "b/debug\0"), so the file holds "/usr/lib" followed by the next instruction's bytes
# ("/usr/libH" as text), not the string itself
PIECES_SOURCE = """#include <string.h>
char debug_dir[32];
int main(void) { memcpy(debug_dir, "/usr/lib/debug", 15); return debug_dir[1]; }
"""


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [((), {"/usr/lib"}), (("/usr/lib/debug",), set()), (("/usr/lib/debug/x",), set())],
)
def test_a_string_written_in_8_byte_pieces_is_allowed_by_the_whole_string(
    tmp_path: Path, allowed: tuple[str, ...], expected: set[str]
) -> None:
    logical = f"{STORE_DIR}/{'p' * 32}-pieces"
    physical = tmp_path / logical.removeprefix(STORE_DIR + "/")
    (physical / "bin").mkdir(parents=True)
    (tmp_path / "pieces.c").write_text(PIECES_SOURCE)
    gcc("-O2", "-o", physical / "bin/pieces", tmp_path / "pieces.c")
    data = (physical / "bin/pieces").read_bytes()
    assert HostReference("/usr/lib", piece=True) in host_references(data)
    path_map = PathMap.of([(STORE_DIR, tmp_path)])
    violations = audit_hermetic(
        [AuditedPath(logical, physical)], {logical}, STORE_DIR, path_map, allowed
    )
    assert {v.value for v in violations if v.kind is K.HOST_REFERENCE} == expected


# clang's driver names multilib directories under the sysroot as "=/usr/lib/o32": gcc -O2
# stores it as 48 b8 "=/usr/li", then "b/o32\0", so the path starts inside the first operand
PREFIXED_SOURCE = """#include <string.h>
char sysroot_dir[32];
int main(void) { memcpy(sysroot_dir, "=/usr/lib/o32", 14); return sysroot_dir[1]; }
"""


def test_a_piece_may_start_inside_the_operand(tmp_path: Path) -> None:
    (tmp_path / "prefixed.c").write_text(PREFIXED_SOURCE)
    gcc("-O2", "-o", tmp_path / "prefixed", tmp_path / "prefixed.c")
    data = (tmp_path / "prefixed").read_bytes()
    assert b"\x48\xb8=/usr/li" in data  # the operand, as the comment says
    assert HostReference("/usr/li", piece=True) in host_references(data)


def test_unreadable_elf_is_a_violation(store: StoreTree) -> None:
    fix_all(store)
    store.real(f"{HELLO}/bin/cut").write_bytes(
        store.real(f"{HELLO}/bin/hello-pie").read_bytes()[:90]
    )
    (violation,) = _audit(store, outputs=(HELLO,))
    assert (violation.kind, violation.file) == (K.UNREADABLE_ELF, f"{HELLO}/bin/cut")
    assert violation.detail.startswith("truncated")


def test_renderers(store: StoreTree) -> None:
    violations = _audit(store)
    records = json.loads(render_json(violations))
    assert len(records) == len(violations) == 8
    assert {r["kind"] for r in records} == {"interpreter-outside-store", "needed-unresolved"}
    assert set(records[0]) == {"kind", "file", "value", "detail"}
    table = render_table(violations)
    assert table.splitlines()[0].split() == ["KIND", "FILE", "VALUE", "DETAIL"]
    assert table.endswith("8 violation(s)\n")
    assert render_table([]) == "no violations\n"
    assert json.loads(render_json([])) == []


def test_identity_map_audits_the_host_itself() -> None:
    ls = Path("/usr/bin/ls")
    violations = audit_hermetic([AuditedPath(str(ls), ls)], set(), STORE_DIR, PathMap.identity())
    assert (K.INTERPRETER_OUTSIDE_STORE, "ls", "/lib64/ld-linux-x86-64.so.2") in _summary(
        violations
    )


def _cli(*args: str | Path) -> subprocess.CompletedProcess:
    """`bootstrap ARGS` as a user runs it, with an empty store of its own."""
    with tempfile.TemporaryDirectory() as root:
        command = [sys.executable, "-m", "bootstrap", *map(str, args), "--store", root]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_cli_exit_status_table_and_json(store: StoreTree) -> None:
    mapping = ("--store-dir", STORE_DIR, "--map", f"{STORE_DIR}={store.root}")
    dirty = _cli("audit", "hermetic", *mapping, store.real(HELLO))
    assert dirty.returncode == 1
    assert f"{HELLO}/bin/hello-pie" in dirty.stdout and "needed-unresolved" in dirty.stdout
    fix_all(store)
    # Only the audited paths form the closure on the command line: glibc, dash and greet too.
    paths = [store.real(output) for output in (GLIBC, GREET, DASH, HELLO)]
    everything = _cli("audit", "hermetic", "--json", *mapping, *paths).stdout
    # The host's libc and dash name host paths (/usr/lib/locale...); our outputs do not.
    directories = {r["file"].rsplit("/", 1)[0] for r in json.loads(everything)}
    assert f"{GLIBC}/lib" in directories
    assert directories <= {f"{GLIBC}/lib", f"{DASH}/bin"}
    partial = _cli("audit", "hermetic", *mapping, *paths[1:2], store.real(HELLO) / "bin/hello-pie")
    assert partial.returncode == 1  # glibc is not in this closure
    assert "needed-outside-closure" in partial.stdout


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    missing = _cli("audit", "hermetic", tmp_path / "missing")
    assert missing.returncode == 1
    assert (
        missing.stderr == f"bootstrap: error: {tmp_path / 'missing'}: no such file or directory\n"
    )
    bad_map = _cli("audit", "hermetic", "--map", "nonsense", tmp_path)
    assert bad_map.stderr.startswith("bootstrap: error: --map 'nonsense'")
    empty = _cli("audit", "hermetic", tmp_path)
    assert (empty.returncode, empty.stdout) == (0, "no violations\n")
