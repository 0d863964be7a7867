"""The fix-up phase on real build outputs: host-linked programs, libraries and scripts become
runnable from the store alone; right files stay untouched; what cannot be fixed is reported."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from bootstrap.elf.fixup import fixup_output
from bootstrap.elf.inspect import read_elf
from bootstrap.elf.patch import LiefPatcher
from bootstrap.elf.paths import PathMap, shrink_search_path
from tests.test_elf_programs import (
    DASH,
    GLIBC,
    GREET,
    GREETING,
    HELLO,
    LD_SO,
    STORE_DIR,
    Programs,
    StoreTree,
    fix_all,
    host_built_store,
    readelf_warnings,
    requires_bwrap,
    run_sandboxed,
    store_policy,
)
from tests.test_elf_programs import programs as programs

SCRIPT = '#!/bin/sh\necho "from script $0"\n'
HOST_LD_SO = "/lib64/ld-linux-x86-64.so.2"
ENV_SCRIPT = "#!/usr/bin/env sh -e\necho from env script\n"


@pytest.fixture
def store(tmp_path: Path, programs: Programs) -> StoreTree:
    """The host-built store plus a static program, an object file and scripts."""
    store = host_built_store(tmp_path / "store", programs)
    store.add(f"{HELLO}/bin/static", programs.static)
    store.add(f"{HELLO}/lib/main.o", programs.object_file)
    for name, text in (("greet.sh", SCRIPT), ("env.sh", ENV_SCRIPT), ("data.txt", "/usr/x\n")):
        store.real(f"{HELLO}/bin/{name}").write_text(text)
        store.real(f"{HELLO}/bin/{name}").chmod(0o755)
    return store


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_fixup_repairs_exactly_what_is_wrong(store: StoreTree) -> None:
    changes = {(c.file.removeprefix(STORE_DIR + "/"), c.what): c for c in fix_all(store)}
    lib = f"{GLIBC}/lib"
    expected = {
        (f"{GLIBC[len(STORE_DIR) + 1 :]}/lib/libc.so.6", "runpath"): (None, lib),
        (f"{GLIBC[len(STORE_DIR) + 1 :]}/lib/libc.so.6", "interpreter"): (HOST_LD_SO, LD_SO),
        (f"{GREET[len(STORE_DIR) + 1 :]}/lib/libgreet.so.1", "runpath"): (None, lib),
        (f"{DASH[len(STORE_DIR) + 1 :]}/bin/sh", "interpreter"): (HOST_LD_SO, LD_SO),
        (f"{DASH[len(STORE_DIR) + 1 :]}/bin/sh", "runpath"): (None, lib),
    }
    for name in ("hello-pie", "hello-nopie"):
        key = f"{HELLO[len(STORE_DIR) + 1 :]}/bin/{name}"
        expected[(key, "interpreter")] = (HOST_LD_SO, LD_SO)
        expected[(key, "runpath")] = (None, f"{GREET}/lib:{lib}")
    script = f"{HELLO[len(STORE_DIR) + 1 :]}/bin/greet.sh"
    expected[(script, "shebang")] = ("#!/bin/sh", f"#!{DASH}/bin/sh")
    env_script = f"{HELLO[len(STORE_DIR) + 1 :]}/bin/env.sh"
    expected[(env_script, "shebang")] = ("#!/usr/bin/env sh -e", f"#!{DASH}/bin/sh -e")
    assert {key: (c.old, c.new) for key, c in changes.items()} == expected


def test_fixup_is_idempotent(store: StoreTree) -> None:
    fix_all(store)
    before = _digests(store.root)
    assert fix_all(store) == []
    assert _digests(store.root) == before


@requires_bwrap
def test_fixed_outputs_run_in_the_sandbox(store: StoreTree) -> None:
    for change in fix_all(store):
        if change.what != "shebang":
            assert readelf_warnings(store.real(change.file)) == "", change.file
    for name in ("hello-pie", "hello-nopie"):
        result = run_sandboxed(store, f"{HELLO}/bin/{name}")
        assert (result.returncode, result.stdout) == (0, GREETING + "\n"), result.stderr
    result = run_sandboxed(store, f"{HELLO}/bin/greet.sh")
    assert result.stdout == f"from script {HELLO}/bin/greet.sh\n", result.stderr
    assert run_sandboxed(store, f"{HELLO}/bin/env.sh").stdout == "from env script\n"
    assert store.real(f"{HELLO}/bin/greet.sh").stat().st_mode & 0o777 == 0o755


def test_linked_right_means_untouched(store: StoreTree, programs: Programs) -> None:
    program = store.add(f"{HELLO}/bin/hello-pie", programs.pie)
    patched = LiefPatcher()
    patched.set_interpreter(program, LD_SO)
    # A wrapper-style RUNPATH with an extra, unneeded store entry is not wrong.
    patched.set_runpath(program, [f"{GREET}/lib", f"{DASH}/bin", f"{GLIBC}/lib"])
    digest = hashlib.sha256(program.read_bytes()).hexdigest()
    report = fixup_output(program, f"{HELLO}/bin/hello-pie", store_policy(store))
    assert (report.changes, report.problems) == ([], [])
    assert hashlib.sha256(program.read_bytes()).hexdigest() == digest
    shrunk = fixup_output(program, f"{HELLO}/bin/hello-pie", store_policy(store, shrink=True))
    assert [(c.what, c.new) for c in shrunk.changes] == [("runpath", f"{GREET}/lib:{GLIBC}/lib")]


def test_host_runpath_entries_are_dropped(store: StoreTree, programs: Programs) -> None:
    program = store.add(f"{HELLO}/bin/hello-rpath", programs.with_rpath)
    LiefPatcher().set_interpreter(program, LD_SO)
    LiefPatcher().set_runpath(program, ["/usr/lib/greet", f"{GREET}/lib", "$ORIGIN/../lib"])
    report = fixup_output(store.real(HELLO), HELLO, store_policy(store))
    assert report.ok
    assert read_elf(program).runpath == f"{GREET}/lib:{GLIBC}/lib"


def test_origin_entries_that_provide_libraries_are_kept(
    store: StoreTree, programs: Programs
) -> None:
    store.add(f"{HELLO}/lib/libgreet.so.1", programs.library)
    program = store.real(f"{HELLO}/bin/hello-pie")
    LiefPatcher().set_runpath(program, ["/usr/lib", "$ORIGIN/../lib"])
    fixup_output(store.real(HELLO), HELLO, store_policy(store, library_dirs=()))
    assert read_elf(program).runpath == f"$ORIGIN/../lib:{GLIBC}/lib"


@requires_bwrap
def test_a_library_beside_the_one_that_needs_it_is_found_through_origin(
    store: StoreTree, programs: Programs, tmp_path: Path
) -> None:
    """libwrap.so.1 needs libgreet.so.1, which lies beside it (as libstdc++ needs libgcc_s):
    no policy directory has it, so the fix-up gives libwrap `$ORIGIN`."""
    (tmp_path / "wrap.c").write_text("void greet(void);\nvoid wrap(void) { greet(); }\n")
    (tmp_path / "main.c").write_text("void wrap(void);\nint main(void) { wrap(); return 0; }\n")
    lib_dir = programs.library.parent
    wrap = tmp_path / "libwrap.so.1"
    compile_c = ("gcc", "-O2", "-L", lib_dir, "-L", tmp_path)
    soname = "-Wl,-soname,libwrap.so.1"
    subprocess.run(
        [*compile_c, "-shared", "-fPIC", soname, "-o", wrap, tmp_path / "wrap.c", "-lgreet"],
        check=True,
    )
    (tmp_path / "libwrap.so").symlink_to(wrap.name)
    main = tmp_path / "use-wrap"
    rpath_link = f"-Wl,-rpath-link,{lib_dir}"
    subprocess.run([*compile_c, rpath_link, "-o", main, tmp_path / "main.c", "-lwrap"], check=True)
    store.add(f"{GREET}/lib/libwrap.so.1", wrap)
    store.add(f"{HELLO}/bin/use-wrap", main)
    policy = store_policy(store, library_dirs=())
    assert fixup_output(store.real(GREET), GREET, policy).ok
    assert read_elf(store.real(f"{GREET}/lib/libwrap.so.1")).runpath == "$ORIGIN"
    fixup_output(store.real(HELLO), HELLO, store_policy(store))
    result = run_sandboxed(store, f"{HELLO}/bin/use-wrap")
    assert (result.returncode, result.stdout) == (0, GREETING + "\n"), result.stderr


def test_unfixable_files_are_reported(store: StoreTree) -> None:
    policy = store_policy(store, interpreter=None, shebangs={})
    problems = fixup_output(store.real(HELLO), HELLO, policy).problems
    found = {(p.file.rsplit("/", 1)[-1], p.message.split(" ", 2)[1]) for p in problems}
    assert found == {
        ("hello-pie", "file"),  # a dynamic executable in a static world
        ("hello-nopie", "file"),
        ("hello-pie", "libc.so.6"),  # no glibc directory to take it from
        ("hello-nopie", "libc.so.6"),
        ("greet.sh", "names"),  # no store path given for sh
        ("env.sh", "names"),
    }
    assert all("'sh'" in p.message for p in problems if p.file.endswith(".sh"))
    broken = store.real(f"{HELLO}/bin/broken")
    broken.write_bytes(store.real(f"{HELLO}/bin/hello-pie").read_bytes()[:100])
    report = fixup_output(store.real(HELLO), HELLO, store_policy(store))
    assert [(p.file, p.message.split(":")[0]) for p in report.problems] == [
        (f"{HELLO}/bin/broken", "truncated")
    ]


def test_absolute_symlinks_resolve_inside_the_store(store: StoreTree) -> None:
    """lib/libgreet.so.1 -> /bootstrap/store/...-greet/lib/libgreet.so.1 does not exist on the
    host; the fix-up follows it through the store's path map and keeps the entry."""
    link = store.real(f"{HELLO}/lib/libgreet.so.1")
    link.symlink_to(f"{GREET}/lib/libgreet.so.1")
    program = store.real(f"{HELLO}/bin/hello-pie")
    LiefPatcher().set_runpath(program, [f"{HELLO}/lib", f"{GLIBC}/lib"])
    report = fixup_output(store.real(HELLO), HELLO, store_policy(store, library_dirs=()))
    assert [c for c in report.changes if c.file.endswith("hello-pie") and c.what == "runpath"] == []
    assert read_elf(program).runpath == f"{HELLO}/lib:{GLIBC}/lib"


@pytest.mark.skipif(shutil.which("patchelf") is None, reason="patchelf is not installed")
def test_shrinking_agrees_with_patchelf(programs: Programs, tmp_path: Path) -> None:
    """Real directories on the host: patchelf --shrink-rpath is the oracle."""
    greet, empty, libc, mirror = (tmp_path / name for name in ("greet", "empty", "libc", "m"))
    for directory in (greet, empty, libc, mirror):
        directory.mkdir()
    shutil.copy(programs.library, greet / "libgreet.so.1")
    shutil.copy(programs.library, mirror / "libgreet.so.1")
    shutil.copy(Path("/lib/x86_64-linux-gnu/libc.so.6").resolve(), libc / "libc.so.6")
    entries = [str(empty), str(greet), "/nonexistent", str(mirror), str(libc), str(greet)]
    program = tmp_path / "hello"
    shutil.copy2(programs.pie, program)
    LiefPatcher().set_runpath(program, entries)
    info = read_elf(program)
    kept, found = shrink_search_path(
        info.search_path, info.needed, str(program), PathMap.identity()
    )
    subprocess.run(["patchelf", "--shrink-rpath", program], check=True)
    assert ":".join(kept) == read_elf(program).runpath == f"{greet}:{libc}"
    assert found == {"libgreet.so.1", "libc.so.6"}
