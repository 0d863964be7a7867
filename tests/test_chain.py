"""The chain for real, stage by stage, in one store.

`bootstrap run --until stage1` on a machine whose download cache has the pinned sources but no
seed builds the seed from source first, then stage 1 in the sandbox; `--stage 2` then adds
binutils and gcc-core by tcc, musl by gcc, the cc-musl wrapper, and gcc 3.4.6 with libstdc++.
About 6 minutes on 2 cores with the rebuild checks (sources must be downloadable or cached).
`--stage 3` (gcc 10 and glibc's build tools) runs only with the `slow` marker (about 11 minutes
more), stages 4 to 6 (binutils 2.40, gcc 12, Python, glibc, gcc for glibc and the toolchain
path) only with `toolchain` (hours more), stage 7 (CMake, LLVM with clang and lld, the final
toolchain) only with `clang`.

`BOOTSTRAP_TEST_CHAIN_ROOT=DIR` keeps the chain's store (DIR/store) and download cache
(DIR/cache) across test runs, so the later stages' tests can run on a store built before;
`BOOTSTRAP_TEST_PROFILE` names the build profile (default: default).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from bootstrap.audit.reproduce import IDENTICAL, render, reproduce
from bootstrap.build import BuildOptions, log_path
from bootstrap.elf.paths import PathMap
from bootstrap.errors import BootstrapError
from bootstrap.fetch import Fetcher, Source
from bootstrap.nar import dump
from bootstrap.recipe import Recipes, Stage, plan_target, select_stages
from bootstrap.remote.machines import parse_machine
from bootstrap.sandbox import Bind, SandboxSpec, run_in_sandbox
from bootstrap.seed.manifest import load_manifest
from bootstrap.store import Store
from stages import stage4, stage5, stage7
from stages.gcc import GMP_SOURCE, MPC_SOURCE, MPFR_SOURCE, RELEASES
from stages.stage1 import PATCH_SOURCE
from stages.stage2 import BINUTILS_SOURCE, GCC_SOURCE
from stages.stage3 import BISON_SOURCE, GAWK_SOURCE, M4_SOURCE, SED_SOURCE
from tests.conftest import run_cli
from tests.test_remote_support import Remote, chain_sandbox_paths, requires_remote, start_remote

TARGET = "x86_64-linux"
CHAIN_ROOT = os.environ.get("BOOTSTRAP_TEST_CHAIN_ROOT")
PROFILE = os.environ.get("BOOTSTRAP_TEST_PROFILE", "default")
STAGE1 = ("linux-headers", "musl", "tcc", "make", "busybox", "patch")


STAGE2 = ("binutils", "gcc-core", "musl", "cc-musl", "gcc")


def _prefill_cache(cache: Path, sources: list[Source]) -> None:
    """Put `sources` into `cache`, from the user's cache (downloading what it lacks)."""
    shared = Fetcher(progress=False)
    local = Fetcher(cache_dir=cache, progress=False)
    cache.mkdir(parents=True, exist_ok=True)
    for source in sources:
        target = local.cache_path(source.hash)
        if target.exists():
            continue
        cached = shared.download(list(source.urls), source.hash, source.name)
        try:
            os.link(cached, target)
        except OSError:
            shutil.copyfile(cached, target)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = Path(CHAIN_ROOT) if CHAIN_ROOT else tmp_path_factory.mktemp("stage1")
    pinned = [s.as_fetch_source() for s in load_manifest().sources]  # not the seed itself
    _prefill_cache(root / "cache", [*pinned, PATCH_SOURCE, BINUTILS_SOURCE, GCC_SOURCE])
    env = {**os.environ, "BOOTSTRAP_CACHE_DIR": str(root / "cache"), "BOOTSTRAP_PROGRESS": "0"}
    chain_args = ("--store", str(root / "store"), "--profile", PROFILE)
    result = run_cli(
        "run",
        TARGET,
        "--until",
        "stage1",
        *chain_args,
        "--out-link",
        str(root / "result"),
        env=env,
    )
    return root, chain_args, env, result


def _outputs(root: Path, stage: str = "stage1") -> dict[str, Path]:
    store = Store(root / "store")
    plan = plan_target(store.store_dir, TARGET, Recipes(), until=stage, profile=PROFILE)
    paths = {}
    for drv_path in plan.stages[stage]:
        drv = plan.graph.derivations[drv_path]
        paths[drv.name.rsplit("-", 1)[0]] = store.real_path(drv.outputs["out"].path)
    return paths


def test_run_builds_the_seed_on_first_use_then_stage1(built):
    root, _, _, result = built
    stderr, stdout = result.stderr.decode(), result.stdout.decode()
    if not CHAIN_ROOT:  # a kept root has its seed from an earlier run
        assert "seed: not cached" in stderr and "FIXPOINT" in stderr
    manifest = load_manifest()
    assert Fetcher(cache_dir=root / "cache").cache_path(manifest.archive_sha256).is_file()
    assert "0 failed" in stdout
    assert "stage0 " in stdout and "stage1 " in stdout and "incomplete" not in stdout
    assert (root / "result").is_symlink()
    assert sorted(_outputs(root)) == sorted(STAGE1)


def test_stage1_programs_are_static_and_run(built):
    outputs = _outputs(built[0])
    for package, program in [
        ("tcc", "tcc"),
        ("make", "make"),
        ("busybox", "busybox"),
        ("patch", "patch"),
    ]:
        binary = outputs[package] / "bin" / program
        with binary.open("rb") as stream:
            elf = ELFFile(stream)
            assert not any(
                seg["p_type"] in ("PT_INTERP", "PT_DYNAMIC") for seg in elf.iter_segments()
            ), binary
    version = subprocess.run([outputs["make"] / "bin/make", "--version"], capture_output=True)
    assert version.stdout.startswith(b"GNU Make 4.3")
    version = subprocess.run([outputs["patch"] / "bin/patch", "--version"], capture_output=True)
    assert version.stdout.startswith(b"GNU patch 2.7.6")
    applets = (outputs["busybox"] / "bin/sh").readlink()
    assert applets == Path("busybox")
    assert (outputs["musl"] / "lib/libc.a").is_file()
    assert (outputs["linux-headers"] / "include/linux/version.h").is_file()


def _run_from_store(root: Path, program: Path, args: list[str], build: Path) -> None:
    """Run the store's `program ARGS` in a sandbox that holds only its package's closure and
    `build` (as /build); fail with the log unless it succeeds."""
    store = Store(root / "store")
    package = store.to_store_path(str(program))
    logical = f"{package}/{program.relative_to(store.real_path(package))}"
    _run_with_closure(root, [package], [logical, *args], build)


def _run_with_closure(root: Path, packages: list[str], command: list[str], build: Path) -> str:
    """Run `command` in a sandbox that holds only the closure of `packages` and `build` (as
    /build); fail with the log unless it succeeds, else return the log (stdout and stderr)."""
    store = Store(root / "store")
    spec = SandboxSpec(
        command=command,
        build_dir=build,
        inputs=[Bind(store.real_path(p), p) for p in store.closure(packages)],
    )
    assert run_in_sandbox(spec, build / "log").succeeded, (build / "log").read_text()
    return (build / "log").read_text()


def _build_and_run(root: Path, compiler: Path, flags: list[str], source: Path) -> bytes:
    """Compile `source` with `compiler FLAGS` in a sandbox that holds only the compiler's closure
    and the source's directory; check the program is not dynamically linked, run it, and return
    its output."""
    program = source.with_suffix("")
    command = [*flags, "-o", f"/build/{program.name}", f"/build/{source.name}"]
    _run_from_store(root, compiler, command, source.parent)
    with program.open("rb") as stream:
        assert not any(s["p_type"] == "PT_INTERP" for s in ELFFile(stream).iter_segments())
    return subprocess.run([program], capture_output=True).stdout


HELLO_C = (
    "#include <stdio.h>\n#include <linux/version.h>\n"
    'int main(void) { printf("hello %d\\n", LINUX_VERSION_CODE > 0); return 0; }\n'
)


def test_stage1_tcc_compiles_and_links_against_the_store_musl(built, tmp_path):
    tcc = _outputs(built[0])["tcc"] / "bin/tcc"
    (tmp_path / "hello.c").write_text(HELLO_C)
    assert _build_and_run(built[0], tcc, ["-static"], tmp_path / "hello.c") == b"hello 1\n"


def test_stage0_and_stage1_pass_the_hermetic_audit(built):
    _, chain_args, env, _ = built
    result = run_cli("audit", "hermetic", "stage0", "stage1", *chain_args, env=env)
    assert result.stdout.decode().strip() == "no violations"


def test_stage1_is_bit_identical_when_built_again(built):
    _, chain_args, env, _ = built
    result = run_cli("audit", "reproduce", TARGET, "--until", "stage1", *chain_args, env=env)
    report = result.stdout.decode()
    assert "6 identical, 0 differs, 0 failed" in report, report


def _nix_builder(root: Path, work: Path) -> tuple[Remote, str]:
    """Real Nix on 127.0.0.1 (its files in `work`) with what the chain needs in its sandbox
    (a /bin/sh; the seed's NAR, dumped from the chain's store, where the seed derivation's
    `url` names it)."""
    store = Store(root / "store")
    plan = plan_target(store.store_dir, TARGET, Recipes(), until="stage0", profile=PROFILE)
    seed = plan.graph.derivations[plan.stages["stage0"][0]].outputs["out"]
    nars = work / "seed-nars"
    nars.mkdir(exist_ok=True)
    with open(nars / seed.hash, "wb") as out:
        dump(store.real_path(seed.path), out)
    remote = start_remote(work / "nix-builder", store.store_dir, chain_sandbox_paths(nars))
    return remote, remote.spec(systems=TARGET)


@requires_remote
def test_real_nix_builds_the_seed_and_linux_headers_to_the_same_bytes(built, tmp_path):
    """The short cross-engine check: stage 0 (Nix's builtin:fetchurl unpacking the seed's NAR)
    and one small stage-1 derivation, built again by real Nix 2.8 in its own sandbox."""
    root = built[0]
    remote, spec = _nix_builder(root, tmp_path)
    try:
        store = Store(root / "store")
        plan = plan_target(store.store_dir, TARGET, Recipes(), until="stage1", profile=PROFILE)
        headers = [d for d in plan.stages["stage1"] if "linux-headers" in d]
        plan.stages["stage1"] = headers
        check = Store(tmp_path / "check", store.store_dir)
        machine = parse_machine(spec, "test")
        stages = ["stage0", "stage1"]
        results = reproduce(store, check, plan, stages, BuildOptions(), machine=machine)
    finally:
        remote.stop()
    assert [(r.name, r.status) for r in results] == [
        ("seed", IDENTICAL),
        ("linux-headers-6.1.176", IDENTICAL),
    ], render(results)


@requires_remote
@pytest.mark.nix_reproduce
@pytest.mark.slow
def test_real_nix_builds_stages_0_to_3_to_the_same_bytes(built3, tmp_path):
    """The long cross-engine check: every derivation of stages 0 to 3 built again by real Nix
    2.8 over ssh (`audit reproduce --builders`), each compared with ours."""
    root, chain_args, env, _ = built3
    remote, spec = _nix_builder(root, tmp_path)
    try:
        result = run_cli(
            "audit", "reproduce", TARGET, "--until", "stage3", *chain_args, "--builders", spec,
            "--diffoscope", str(tmp_path / "diffoscope"), check=False, env=env,
        )  # fmt: skip
    finally:
        remote.stop()
    report = result.stdout.decode()
    assert result.returncode == 0 and " 0 differs, 0 failed, 0 not built" in report, report


def test_a_stage_number_names_the_stage():
    stages = [Stage("stage0", ()), Stage("stage1", ()), Stage("stage2", ())]
    assert [s.name for s in select_stages(stages, "1")] == ["stage0", "stage1"]
    assert [s.name for s in select_stages(stages, "stage2")] == ["stage0", "stage1", "stage2"]
    with pytest.raises(BootstrapError, match="unknown stage '7': expected one of stage0"):
        select_stages(stages, "7")


# --- stage 2: binutils, gcc-core, musl by gcc, cc-musl, gcc with libstdc++ -----------------------


@pytest.fixture(scope="module")
def built2(built):
    root, chain_args, env, _ = built
    result = run_cli("run", TARGET, "--stage", "2", *chain_args, "--no-out-link", env=env)
    return root, chain_args, env, result


def test_stage2_builds_on_top_of_stage1(built2):
    root, _, _, result = built2
    stdout = result.stdout.decode()
    assert "0 failed" in stdout and "incomplete" not in stdout, stdout
    assert sorted(_outputs(root, "stage2")) == sorted(STAGE2)


def test_cc_musl_builds_static_c_programs_with_nothing_but_the_store(built2, tmp_path):
    root = built2[0]
    cc = _outputs(root, "stage2")["cc-musl"] / "bin/cc"
    (tmp_path / "hello.c").write_text(HELLO_C)
    assert _build_and_run(root, cc, ["-O2"], tmp_path / "hello.c") == b"hello 1\n"


CPLUSPLUS = """\
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>
struct Shape { virtual ~Shape() {} virtual int sides() const = 0; };
struct Square : Shape { int sides() const { return 4; } };
int main() {
  std::vector<std::string> words;
  words.push_back("hello");
  words.push_back("c++");
  try { throw std::runtime_error("boom"); }
  catch (const std::exception& e) { std::cout << words[0] << " " << words[1] << " " << e.what(); }
  Square square;
  const Shape& shape = square;
  std::cout << " " << shape.sides() << std::endl;
  return 0;
}
"""


def test_gcc_builds_and_runs_cplusplus_with_libstdcxx(built2, tmp_path):
    root = built2[0]
    gxx = _outputs(root, "stage2")["gcc"] / "bin/g++"
    (tmp_path / "shapes.cc").write_text(CPLUSPLUS)
    assert _build_and_run(root, gxx, ["-O2"], tmp_path / "shapes.cc") == b"hello c++ boom 4\n"


def test_stage2_passes_the_hermetic_audit(built2):
    _, chain_args, env, _ = built2
    result = run_cli("audit", "hermetic", "stage2", *chain_args, env=env)
    assert result.stdout.decode().strip() == "no violations"


def _fixed_up(root: Path, until: str) -> list[str]:
    """The changes our fix-up made to the outputs of stages 0 to `until` (each is a `fixup:`
    line in its build's log): none, if every output is final when its builder exits, as a
    remote (Nix) build's must be."""
    store = Store(root / "store")
    plan = plan_target(store.store_dir, TARGET, Recipes(), until=until, profile=PROFILE)
    changes = []
    for drv_path in (d for drvs in plan.stages.values() for d in drvs):
        log = log_path(store, drv_path)
        lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
        changes += [f"{drv_path}: {line}" for line in lines if line.startswith("fixup")]
    return changes


def test_fix_up_changes_nothing_in_stages_0_to_2(built2):
    assert _fixed_up(built2[0], "stage2") == []


def test_stage2_is_bit_identical_when_built_again(built2):
    _, chain_args, env, _ = built2
    result = run_cli(
        "audit", "reproduce", TARGET, "--stage", "2", "--only", "stage2", *chain_args, env=env
    )
    report = result.stdout.decode()
    assert "5 identical, 0 differs, 0 failed" in report, report


# --- stage 3: gcc 10.2 and glibc's build tools by gcc 3.4.6 (slow: about 11 minutes more) -----


@pytest.fixture(scope="module")
def built3(built2):
    root, chain_args, env, _ = built2
    tools = [M4_SOURCE, BISON_SOURCE, GAWK_SOURCE, SED_SOURCE]
    _prefill_cache(
        root / "cache", [*tools, RELEASES["10.2.0"], GMP_SOURCE, MPFR_SOURCE, MPC_SOURCE]
    )
    result = run_cli("run", TARGET, "--stage", "3", *chain_args, "--no-out-link", env=env)
    return root, chain_args, env, result


CPLUSPLUS17 = """\
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <variant>
template <typename... T> auto sum(T... values) { return (values + ...); }
int main() {
  std::map<std::string, int> counts{{"gcc", 10}, {"musl", 1}};
  auto [name, version] = *counts.begin();
  std::optional<std::unique_ptr<int>> box = std::make_unique<int>(sum(1, 2, 3));
  std::variant<int, std::string> v = std::string("variant");
  int from_thread = 0;
  std::thread worker([&] { from_thread = 42; });
  worker.join();
  try { throw std::get<std::string>(v); }
  catch (const std::string& s) { std::cout << name << version << " " << **box << " " << s; }
  std::cout << " " << from_thread << std::endl;
}
"""


@pytest.mark.slow
def test_stage3_builds_gcc10_and_the_tools_glibc_needs(built3, tmp_path):
    root, _, _, result = built3
    stdout = result.stdout.decode()
    assert "0 failed" in stdout and "incomplete" not in stdout, stdout
    outputs = _outputs(root, "stage3")
    assert sorted(outputs) == ["bison", "gawk", "gcc", "m4", "sed"]
    # bison reads its skeletons from the store and runs the store's m4: run it in a sandbox
    (tmp_path / "sum.y").write_text('%%\nsum: "n" | sum "+" "n";\n%%\n')
    bison = outputs["bison"] / "bin/bison"
    _run_from_store(root, bison, ["-o", "/build/sum.c", "/build/sum.y"], tmp_path)
    assert "yyparse" in (tmp_path / "sum.c").read_text()
    gawk = subprocess.run(
        [outputs["gawk"] / "bin/gawk", '{ print gensub(/b+/, "B", "g"), NF }'],
        input=b"abbc d\n",
        capture_output=True,
    )
    assert gawk.stdout == b"aBc d 2\n"
    sed = subprocess.run(
        [outputs["sed"] / "bin/sed", "-E", "s/(x+)/<\\1>/"], input=b"axxb\n", capture_output=True
    )
    assert sed.stdout == b"a<xx>b\n"


@pytest.mark.slow
def test_gcc10_builds_and_runs_static_cplusplus17_with_threads(built3, tmp_path):
    root = built3[0]
    gxx = _outputs(root, "stage3")["gcc"] / "bin/g++"
    (tmp_path / "modern.cc").write_text(CPLUSPLUS17)
    output = _build_and_run(root, gxx, ["-std=c++17", "-O2", "-pthread"], tmp_path / "modern.cc")
    assert output == b"gcc10 6 variant 42\n"


@pytest.mark.slow
def test_fix_up_changes_nothing_in_stage3(built3):
    assert _fixed_up(built3[0], "stage3") == []


@pytest.mark.slow
def test_stage3_passes_the_hermetic_audit(built3):
    _, chain_args, env, _ = built3
    result = run_cli("audit", "hermetic", "stage3", *chain_args, env=env)
    assert result.stdout.decode().strip() == "no violations"


# --- stages 4 and 5: binutils 2.40, gcc 12 and Python; glibc (`toolchain`: over an hour) --------


@pytest.fixture(scope="module")
def built5(built3):
    root, chain_args, env, _ = built3
    _prefill_cache(
        root / "cache",
        [
            stage4.BINUTILS_SOURCE,
            RELEASES["12.2.0"],
            stage4.ZLIB_SOURCE,
            stage4.PYTHON_SOURCE,
            stage4.GREP_SOURCE,
            stage5.GLIBC_SOURCE,
        ],
    )
    result = run_cli("run", TARGET, "--stage", "5", *chain_args, "--no-out-link", env=env)
    return root, chain_args, env, result


PYTHON_CHECK = """\
import hashlib, json, re, zlib
data = json.dumps({"words": re.findall(r"[a-z]+", "glibc needs python3")}, sort_keys=True)
assert zlib.decompress(zlib.compress(data.encode() * 100)) == data.encode() * 100  # Meson's gzip
open("/build/python.out", "w").write(data + " " + hashlib.sha256(data.encode()).hexdigest()[:8])
"""


@pytest.mark.toolchain
def test_stage4_python_by_gcc12_at_O2_runs(built5, tmp_path):
    root, _, _, result = built5
    stdout = result.stdout.decode()
    assert "0 failed" in stdout and "incomplete" not in stdout, stdout
    assert sorted(_outputs(root, "stage4")) == ["binutils", "gcc", "grep", "python", "zlib"]
    # gcc 10's -O2 dropped a live argument in Python's startup (docs/stages.md); gcc 12's not
    (tmp_path / "check.py").write_text(PYTHON_CHECK)
    python = _outputs(root, "stage4")["python"] / "bin/python3"
    _run_from_store(root, python, ["/build/check.py"], tmp_path)
    words = '{"words": ["glibc", "needs", "python"]}'
    digest = hashlib.sha256(words.encode()).hexdigest()[:8]
    assert (tmp_path / "python.out").read_text() == f"{words} {digest}"


@pytest.mark.toolchain
def test_gcc12_builds_and_runs_static_cplusplus17_with_threads(built5, tmp_path):
    root = built5[0]
    gxx = _outputs(root, "stage4")["gcc"] / "bin/g++"
    (tmp_path / "modern.cc").write_text(CPLUSPLUS17)
    output = _build_and_run(root, gxx, ["-std=c++17", "-O2", "-pthread"], tmp_path / "modern.cc")
    assert output == b"gcc10 6 variant 42\n"


@pytest.mark.toolchain
def test_glibc_programs_run_from_the_store_with_its_loader(built5, tmp_path):
    root = built5[0]
    glibc = _outputs(root, "stage5")["glibc"]
    getconf = glibc / "bin/getconf"
    with getconf.open("rb") as stream:
        elf = ELFFile(stream)
        interp = next(s for s in elf.iter_segments() if s["p_type"] == "PT_INTERP")
        loader = f"{Store(root / 'store').to_store_path(str(glibc))}/lib/ld-linux-x86-64.so.2"
        assert interp.get_interp_name() == loader
    _run_from_store(root, getconf, ["GNU_LIBC_VERSION"], tmp_path)
    assert (tmp_path / "log").read_text().strip() == "glibc 2.36"


@pytest.mark.toolchain
def test_stages4_and_5_pass_the_hermetic_audit(built5):
    _, chain_args, env, _ = built5
    result = run_cli("audit", "hermetic", "stage4", "stage5", *chain_args, env=env)
    assert result.stdout.decode().strip() == "no violations"


# --- stage 6: gcc for glibc and the toolchain path (`toolchain`) -------------------------------


@pytest.fixture(scope="module")
def built6(built5):
    root, chain_args, env, _ = built5
    result = run_cli("run", TARGET, "--stage", "6", *chain_args, "--no-out-link", env=env)
    toolchain = _outputs(root, "stage6")["toolchain"]
    return root, chain_args, env, result, Store(root / "store").to_store_path(str(toolchain))


THREADS_C = """\
#include <pthread.h>
#include <stdio.h>
static void *work(void *arg) { *(int *)arg = 42; return 0; }
int main(void) {
  pthread_t thread; int value = 0;
  pthread_create(&thread, 0, work, &value); pthread_join(thread, 0);
  printf("thread %d\\n", value); return 0;
}
"""
GREET_C = 'const char *greeting(void) { return "from a shared library"; }\n'
USE_GREET_C = """\
#include <stdio.h>
const char *greeting(void);
int main(void) { puts(greeting()); return 0; }
"""


def _interpreter_and_runpath(program: Path) -> tuple[str | None, list[str]]:
    with program.open("rb") as stream:
        elf = ELFFile(stream)
        interp = next(
            (s.get_interp_name() for s in elf.iter_segments() if s["p_type"] == "PT_INTERP"), None
        )
        dynamic = elf.get_section_by_name(".dynamic")
        runpath = [
            path
            for tag in (dynamic.iter_tags() if dynamic else ())
            if tag.entry.d_tag == "DT_RUNPATH"
            for path in tag.runpath.split(":")
        ]
    return interp, runpath


def _check_compilers(built, cc: str, cxx: str, loader_of: str, tmp: Path) -> None:
    """Build C and C++ programs (threads, exceptions, static, dynamic, a shared library) with
    the built toolchain's `cc` and `cxx` and run them, in a sandbox that holds nothing but the
    toolchain's closure; check that the dynamic ones name the loader toolchain.json gives for
    the compiler (under key `loader_of`), and find libstdc++ through RUNPATH."""
    root, _, _, result, toolchain = built
    stdout = result.stdout.decode()
    assert "0 failed" in stdout and "incomplete" not in stdout, stdout
    (tmp / "threads.c").write_text(THREADS_C)
    (tmp / "modern.cc").write_text(CPLUSPLUS17)
    (tmp / "greet.c").write_text(GREET_C)
    (tmp / "use_greet.c").write_text(USE_GREET_C)
    cc, cxx = f"{toolchain}/bin/{cc}", f"{toolchain}/bin/{cxx}"
    script = " && ".join(
        [
            f"{cc} -O2 -pthread -o /build/threads /build/threads.c",
            f"{cc} -O2 -static -o /build/threads-static /build/threads.c",
            f"{cxx} -std=c++17 -O2 -pthread -o /build/modern /build/modern.cc",
            f"{cc} -O2 -shared -fPIC -o /build/libgreet.so /build/greet.c",
            f"{cc} -O2 -o /build/use_greet /build/use_greet.c -L/build -lgreet -Wl,-rpath,/build",
            "/build/threads",
            "/build/threads-static",
            "/build/modern",
            "/build/use_greet",
        ]
    )
    store = Store(root / "store")
    descriptor = json.loads((store.real_path(toolchain) / "toolchain.json").read_text())
    loader = descriptor[loader_of]["dynamicLinker"]
    shell = (store.real_path(toolchain) / "bin/cc").read_text().splitlines()[0][2:]
    log = _run_with_closure(root, [toolchain], [shell, "-c", script], tmp)
    expected = ["thread 42", "thread 42", "gcc10 6 variant 42", "from a shared library"]
    assert log.splitlines()[-4:] == expected, log
    assert _interpreter_and_runpath(tmp / "threads-static") == (None, [])
    for program in ("threads", "modern", "use_greet"):
        assert _interpreter_and_runpath(tmp / program)[0] == loader, program
    assert _interpreter_and_runpath(tmp / "modern")[1] == [descriptor["runtimeLibraries"]]


def _check_no_seed_in_closure(root: Path, toolchain: str) -> None:
    store = Store(root / "store")
    seed = plan_target(store.store_dir, TARGET, Recipes(), until="stage0", profile=PROFILE)
    seed_paths = {d.outputs["out"].path for d in seed.graph.derivations.values()}
    assert seed_paths and not seed_paths & set(store.closure([toolchain]))


@pytest.mark.toolchain
def test_toolchain_builds_c_and_cplusplus_that_run_with_nothing_but_the_store(built6, tmp_path):
    _check_compilers(built6, "cc", "c++", "libc", tmp_path)


@pytest.mark.toolchain
def test_toolchain_closure_holds_no_seed(built6):
    _check_no_seed_in_closure(built6[0], built6[4])


@pytest.mark.toolchain
def test_toolchain_json_describes_its_tools_and_closure(built6):
    root, _, _, _, toolchain = built6
    store = Store(root / "store")
    descriptor = json.loads((store.real_path(toolchain) / "toolchain.json").read_text())
    assert descriptor["target"] == "x86_64-pc-linux-gnu"
    assert {"cc", "c++", "ld", "ar", "as", "nm", "strip"} <= set(descriptor["tools"])
    # tools may be links into other store paths (binutils'): follow them through the store
    store_map = PathMap.of([(store.store_dir, store.physical_dir)])
    for tool in descriptor["tools"].values():
        assert store_map.resolve(tool) is not None, tool
    closure = store.closure([toolchain])
    assert [e["path"] for e in descriptor["closure"]] == [p for p in closure if p != toolchain]
    for entry in descriptor["closure"]:
        assert entry["narHash"] == store.query_info(entry["path"]).nar_hash.sri
    cmake = (store.real_path(toolchain) / "share/toolchain/toolchain.cmake").read_text()
    assert f"set(CMAKE_C_COMPILER {toolchain}/bin/cc)" in cmake
    meson = (store.real_path(toolchain) / "share/toolchain/meson-native.ini").read_text()
    assert f"cpp = '{toolchain}/bin/c++'" in meson


@pytest.mark.toolchain
def test_stage6_passes_the_hermetic_audit(built6):
    _, chain_args, env, _, _ = built6
    result = run_cli("audit", "hermetic", "stage6", *chain_args, env=env)
    assert result.stdout.decode().strip() == "no violations"


# --- stage 7: CMake, LLVM with clang and lld, the final toolchain (`clang`: hours more) --------


@pytest.fixture(scope="module")
def built7(built6):
    root, chain_args, env, _, _ = built6
    _prefill_cache(
        root / "cache",
        [stage7.CMAKE_SOURCE, stage7.NINJA_SOURCE, stage4.ZLIB_SOURCE, stage7.LLVM_SOURCE],
    )
    result = run_cli("run", TARGET, "--stage", "7", *chain_args, "--no-out-link", env=env)
    toolchain = _outputs(root, "stage7")["toolchain"]
    return root, chain_args, env, result, Store(root / "store").to_store_path(str(toolchain))


# zlib (stage 7 builds it for LLVM), a C project of some size, which clang compiles twice
ZLIB_BUILD = """set -e
export PATH={bin}
tar -xjf /build/zlib.tar.bz2 -C /build/src
cd /build/src/zlib-*
for c in *.c; do {cc} -O2 -fPIC -c "$c"; done
objects="adler32.o compress.o crc32.o deflate.o gzclose.o gzlib.o gzread.o gzwrite.o infback.o
    inffast.o inflate.o inftrees.o trees.o uncompr.o zutil.o"
{toolchain}/bin/llvm-ar rcD libz.a $objects
{cc} -shared -o libz.so $objects
{cc} -O2 -I. -o /build/src/example test/example.c libz.a
/build/src/example
cp libz.a libz.so /build/src/
"""
ZLIB_OUTPUTS = ("libz.a", "libz.so", "example")


@pytest.mark.clang
def test_clang_builds_c_and_cplusplus_that_run_with_nothing_but_the_store(built7, tmp_path):
    _check_compilers(built7, "clang", "clang++", "clang", tmp_path)


@pytest.mark.clang
def test_clang_rebuilds_zlib_bit_identically(built7, tmp_path):
    root, _, _, _, toolchain = built7
    tarball = Fetcher(cache_dir=root / "cache", progress=False).cache_path(stage4.ZLIB_SOURCE.hash)
    store = Store(root / "store")
    shell = (store.real_path(toolchain) / "bin/cc").read_text().splitlines()[0][2:]
    script = ZLIB_BUILD.format(
        bin=os.path.dirname(shell), cc=f"{toolchain}/bin/clang", toolchain=toolchain
    )
    digests = []
    for attempt in ("first", "second"):
        build = tmp_path / attempt
        (build / "src").mkdir(parents=True)
        shutil.copyfile(tarball, build / "zlib.tar.bz2")
        log = _run_with_closure(root, [toolchain], [shell, "-c", script], build)
        assert "zlib version" in log, log
        digests.append(
            {f: hashlib.sha256((build / "src" / f).read_bytes()).hexdigest() for f in ZLIB_OUTPUTS}
        )
    assert digests[0] == digests[1]


@pytest.mark.clang
def test_final_toolchain_describes_both_compilers_and_holds_no_seed(built7):
    root, _, _, _, toolchain = built7
    store = Store(root / "store")
    descriptor = json.loads((store.real_path(toolchain) / "toolchain.json").read_text())
    assert {"cc", "c++", "clang", "clang++", "ld", "ld.lld", "llvm-ar"} <= set(descriptor["tools"])
    assert descriptor["clang"]["version"] == "15.0.6"
    linked = os.readlink(store.real_path(toolchain) / "bin/ld.lld")
    assert linked == f"{descriptor['clang']['lld']}/bin/ld.lld"
    cmake = (store.real_path(toolchain) / "share/toolchain/toolchain-clang.cmake").read_text()
    assert f"set(CMAKE_CXX_COMPILER {toolchain}/bin/clang++)" in cmake
    _check_no_seed_in_closure(root, toolchain)


@pytest.mark.clang
def test_stage7_passes_the_hermetic_audit(built7):
    _, chain_args, env, _, _ = built7
    result = run_cli("audit", "hermetic", "stage7", *chain_args, env=env)
    assert result.stdout.decode().strip() == "no violations"
