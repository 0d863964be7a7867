"""Real programs for the ELF tests: built here by the host gcc, run in a bubblewrap sandbox
that holds nothing but a store tree (no /lib, /lib64, /usr, /etc/ld.so.cache).

The other test_elf_* and test_audit_* modules import these helpers; the tests below check
that the helpers themselves behave (the programs run on the host, the sandbox hides the host).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from bootstrap.elf.fixup import FixupChange, FixupPolicy, fixup_output
from bootstrap.elf.paths import PathMap

STORE_DIR = "/bootstrap/store"
GLIBC = f"{STORE_DIR}/{'1' * 32}-glibc-host"
GREET = f"{STORE_DIR}/{'2' * 32}-greet"
HELLO = f"{STORE_DIR}/{'3' * 32}-hello"
DASH = f"{STORE_DIR}/{'4' * 32}-dash"
LD_SO = f"{GLIBC}/lib/ld-linux-x86-64.so.2"
GREETING = "hello from greet"
_SANDBOX = ("bwrap", "--unshare-all", "--die-with-parent", "--clearenv", "--tmpfs", "/")
_SANDBOX += ("--proc", "/proc", "--dev", "/dev")

requires_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

_LIBRARY_SOURCE = r"""
#include <stdio.h>
void greet(void) { puts("hello from greet"); }
"""
_MAIN_SOURCE = r"""
#include <stdio.h>
void greet(void);
static const char *harmless[] = {"/dev/null", "/proc/self/exe", "/tmp"};
int main(int argc, char **argv) {
    greet();
    if (argc > 5) puts(harmless[argc % 3]);
#ifdef HOST_STRING
    if (argc > 6) puts(HOST_STRING);
#endif
    return 0;
}
"""
_STATIC_SOURCE = r"""
#include <stdio.h>
int main(void) { puts("hello from greet"); return 0; }
"""


@dataclass(frozen=True)
class Programs:
    """Unpatched host builds: executables that need libgreet.so.1 and libc.so.6."""

    pie: Path
    nopie: Path
    library: Path
    static: Path
    static_pie: Path
    object_file: Path
    with_host_string: Path
    with_rpath: Path
    with_old_rpath: Path


def gcc(*args: str | Path) -> None:
    subprocess.run(["gcc", *map(str, args)], check=True, capture_output=True)


def build_programs(out: Path) -> Programs:
    lib_c, main_c, static_c = out / "greet.c", out / "main.c", out / "static.c"
    lib_c.write_text(_LIBRARY_SOURCE)
    main_c.write_text(_MAIN_SOURCE)
    static_c.write_text(_STATIC_SOURCE)
    library = out / "libgreet.so.1"
    gcc("-O2", "-shared", "-fPIC", "-Wl,-soname,libgreet.so.1", "-o", library, lib_c)
    (out / "libgreet.so").symlink_to("libgreet.so.1")
    link = ("-L", out, "-lgreet")
    gcc("-O2", "-pie", "-fPIE", "-o", out / "hello-pie", main_c, *link)
    gcc("-O2", "-no-pie", "-fno-PIE", "-o", out / "hello-nopie", main_c, *link)
    gcc("-O2", '-DHOST_STRING="/usr/share/hello/data"', "-o", out / "hello-host", main_c, *link)
    gcc("-O2", "-Wl,-rpath,/usr/lib/greet:/opt/greet", "-o", out / "hello-rpath", main_c, *link)
    old_dtags = ("-Wl,--disable-new-dtags", "-Wl,-rpath,/usr/lib/greet")
    gcc("-O2", *old_dtags, "-o", out / "hello-oldrpath", main_c, *link)
    gcc("-O2", "-static", "-o", out / "static", static_c)
    gcc("-O2", "-static-pie", "-o", out / "static-pie", static_c)
    gcc("-O2", "-c", "-o", out / "main.o", main_c)
    return Programs(
        pie=out / "hello-pie",
        nopie=out / "hello-nopie",
        library=library,
        static=out / "static",
        static_pie=out / "static-pie",
        object_file=out / "main.o",
        with_host_string=out / "hello-host",
        with_rpath=out / "hello-rpath",
        with_old_rpath=out / "hello-oldrpath",
    )


@dataclass(frozen=True)
class StoreTree:
    """A store tree at `root` (physical) that programs see at STORE_DIR (logical)."""

    root: Path

    @property
    def path_map(self) -> PathMap:
        return PathMap.of([(STORE_DIR, self.root)])

    def real(self, logical: str) -> Path:
        return self.root / logical.removeprefix(STORE_DIR + "/")

    def add(self, logical: str, source: Path, mode: int | None = None) -> Path:
        """Copy `source` (following symlinks) to `logical`; returns the physical copy."""
        target = self.real(logical)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        target.chmod(mode if mode is not None else source.stat().st_mode & 0o7777)
        return target

    def add_host_glibc(self) -> None:
        """The host's loader and libc, unchanged, as the store path GLIBC."""
        libc = subprocess.check_output(["gcc", "-print-file-name=libc.so.6"], text=True).strip()
        self.add(LD_SO, Path("/lib64/ld-linux-x86-64.so.2").resolve())
        self.add(f"{GLIBC}/lib/libc.so.6", Path(libc).resolve())


def run_sandboxed(store: StoreTree, *command: str) -> subprocess.CompletedProcess:
    """Run `command` with only the store tree mounted (read-only) at STORE_DIR."""
    return subprocess.run(
        [*_SANDBOX, "--ro-bind", str(store.root), STORE_DIR, *command],
        capture_output=True,
        text=True,
        timeout=60,
    )


def host_built_store(root: Path, programs: Programs) -> StoreTree:
    """Outputs as a host build leaves them (host interpreter, no RUNPATH): the host's glibc,
    libgreet, the host's dash as `sh`, and hello-pie / hello-nopie."""
    store = StoreTree(root)
    store.add_host_glibc()
    store.add(f"{GREET}/lib/libgreet.so.1", programs.library)
    store.add(f"{DASH}/bin/sh", Path("/bin/dash").resolve())
    store.add(f"{HELLO}/bin/hello-pie", programs.pie)
    store.add(f"{HELLO}/bin/hello-nopie", programs.nopie)
    return store


def store_policy(store: StoreTree, **overrides) -> FixupPolicy:
    """The fix-up policy for the store tree: glibc's loader, libgreet, dash for `sh`."""
    settings = dict(
        store_dir=STORE_DIR,
        interpreter=LD_SO,
        library_dirs=(f"{GREET}/lib",),
        shebangs={"sh": f"{DASH}/bin/sh"},
        path_map=store.path_map,
    )
    return FixupPolicy(**(settings | overrides))


def fix_all(store: StoreTree) -> list[FixupChange]:
    """Run the fix-up on every output of the store tree; all must be fixable."""
    changes = []
    for output in (GLIBC, GREET, DASH, HELLO):
        report = fixup_output(store.real(output), output, store_policy(store))
        assert report.ok, report.problems
        changes += report.changes
    return changes


def readelf_warnings(path: Path) -> str:
    """What `readelf -a` says on stderr (warnings) about a file it can read."""
    result = subprocess.run(["readelf", "-a", "-W", path], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Programs:
    return build_programs(tmp_path_factory.mktemp("programs"))


def test_built_programs_run_on_the_host(programs: Programs) -> None:
    env = {"LD_LIBRARY_PATH": str(programs.library.parent)}
    for program in (programs.pie, programs.nopie):
        result = subprocess.run([program], capture_output=True, text=True, env=env, check=True)
        assert result.stdout == GREETING + "\n"
    for program in (programs.static, programs.static_pie):
        assert subprocess.run([program], capture_output=True, text=True).stdout == GREETING + "\n"


@requires_bwrap
def test_sandbox_hides_the_host_but_runs_static_programs(
    programs: Programs, tmp_path: Path
) -> None:
    store = StoreTree(tmp_path / "store")
    store.add(f"{HELLO}/bin/static", programs.static)
    store.add(f"{HELLO}/bin/hello-pie", programs.pie)
    assert run_sandboxed(store, f"{HELLO}/bin/static").stdout == GREETING + "\n"
    unpatched = run_sandboxed(store, f"{HELLO}/bin/hello-pie")
    assert unpatched.returncode != 0  # its interpreter /lib64/ld-linux-x86-64.so.2 is not here
