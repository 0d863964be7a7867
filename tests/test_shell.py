"""`bootstrap shell` and `bootstrap env`, run as a user runs them.

The default suite uses a small toolchain-shaped store path around the seed's tcc (the seed is
what the default suite builds cheaply); the `toolchain` and `clang` tests build a C++ program
with threads and exceptions, a CMake project and a Meson project with the chain's gcc and
clang, in a pure shell (a bwrap that shows nothing of the host but the project directory), on
the store `BOOTSTRAP_TEST_CHAIN_ROOT` keeps (see tests/test_chain.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bootstrap.fetch import Fetcher, Source
from bootstrap.recipe import Recipes, plan_target
from bootstrap.store import Store
from bootstrap.unpack import unpack
from tests.conftest import run_cli

CHAIN_ROOT = os.environ.get("BOOTSTRAP_TEST_CHAIN_ROOT")
PROFILE = os.environ.get("BOOTSTRAP_TEST_PROFILE", "default")
MESON_SOURCE = Source.of(
    "mirror://debian/pool/main/m/meson/meson_1.0.1.orig.tar.gz",
    "d926b730de6f518728cc7c57bc5e701667bae0c3522f9e369427b2cc7839d3c1",
)

HELLO_C = '#include <stdio.h>\nint main(void) { printf("hello %d\\n", 6 * 7); return 0; }\n'

THREADS_CC = """\
#include <iostream>
#include <stdexcept>
#include <thread>
#include <vector>
int main() {
  std::vector<int> parts(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([&parts, i] { parts[i] = i * 10; });
  for (auto &t : threads) t.join();
  try {
    throw std::runtime_error("caught");
  } catch (const std::exception &e) {
    std::cout << e.what() << " " << parts[0] + parts[1] + parts[2] + parts[3] << "\\n";
  }
}
"""

CMAKE_LISTS = """\
cmake_minimum_required(VERSION 3.20)
project(demo CXX)
set(CMAKE_CXX_STANDARD 17)
find_package(Threads REQUIRED)
add_executable(demo main.cc)
target_link_libraries(demo Threads::Threads)
"""

MESON_BUILD = """\
project('demo', 'cpp', default_options: ['cpp_std=c++17'])
executable('demo', 'main.cc', dependencies: dependency('threads'))
"""


@pytest.fixture(scope="module")
def seed_store(tmp_path_factory):
    """A store holding the seed (stage 0), a path with a `cc` that runs the seed's tcc, and a
    toolchain path naming it in its toolchain.json."""
    root = tmp_path_factory.mktemp("shell")
    env = {**os.environ, "BOOTSTRAP_PROGRESS": "0"}
    run_cli("run", "--until", "stage0", "--store", root / "store", "--no-out-link", env=env)
    store = Store(root / "store")
    plan = plan_target(store.store_dir, "x86_64-linux", Recipes(), until="stage0")
    seed = plan.graph.derivations[plan.stages["stage0"][0]].outputs["out"].path
    wrapper = root / "tcc-cc"
    (wrapper / "bin").mkdir(parents=True)
    cc = wrapper / "bin" / "cc"
    cc.write_text(f'#!{seed}/bin/sh\nexec {seed}/bin/tcc -B{seed}/lib/tcc -static "$@"\n')
    cc.chmod(0o755)
    (wrapper / "toolchain.cmake").write_text("set(CMAKE_C_COMPILER cc)\n")
    wrapped = store.add_path(wrapper, "tcc-cc", references=[seed])
    tree = root / "toolchain"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "cc").symlink_to(f"{wrapped}/bin/cc")
    descriptor = {"tools": {"cc": f"{wrapped}/bin/cc"}}
    descriptor["cmakeToolchainFile"] = f"{wrapped}/toolchain.cmake"
    (tree / "toolchain.json").write_text(json.dumps(descriptor))
    toolchain = store.add_path(tree, "toolchain", references=[wrapped])
    return root / "store", toolchain, seed, wrapped, env


def _shell(*args, cwd: Path, env, check: bool = True) -> subprocess.CompletedProcess:
    """`bootstrap ARGS` run in `cwd`, as a user runs it there."""
    command = [sys.executable, "-m", "bootstrap", *map(str, args)]
    ran = subprocess.run(command, capture_output=True, env=env, cwd=cwd)
    assert ran.returncode == 0 or not check, ran.stderr.decode()
    return ran


def test_env_prints_the_toolchain_variables(seed_store):
    store, toolchain, seed, wrapped, env = seed_store
    exports = run_cli("env", toolchain, "--store", store, env=env).stdout.decode()
    assert f"export BOOTSTRAP_TOOLCHAIN={toolchain}\n" in exports
    assert f"export CC={wrapped}/bin/cc\n" in exports
    assert f"export CMAKE_TOOLCHAIN_FILE={wrapped}/toolchain.cmake\n" in exports
    shown = json.loads(run_cli("env", toolchain, "--store", store, "--json", env=env).stdout)
    assert shown["paths"][0] == toolchain and sorted(shown["paths"][1:]) == sorted([seed, wrapped])
    path = shown["variables"]["PATH"].split(":")
    assert path[0] == f"{toolchain}/bin" and sorted(path[1:]) == sorted(
        [f"{seed}/bin", f"{wrapped}/bin"]
    )


def test_pure_shell_compiles_and_runs_a_program_with_only_the_store(seed_store, tmp_path):
    store, toolchain, _, _, env = seed_store
    (tmp_path / "hello.c").write_text(HELLO_C)
    script = "test ! -e /usr && test ! -e /etc && $CC hello.c -o hello && ./hello"
    ran = _shell(
        "shell", toolchain, "--store", store, "--pure", "--", "sh", "-c", script,
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert ran.stdout == b"hello 42\n"
    assert (tmp_path / "hello").is_file()  # built in the working directory, seen outside


def test_shell_keeps_the_host_and_passes_the_exit_status(seed_store, tmp_path):
    store, toolchain, _, _, env = seed_store
    script = 'test -d /usr && test "$BOOTSTRAP_SHELL" = "$BOOTSTRAP_TOOLCHAIN" && exit 3'
    ran = _shell(
        "shell", toolchain, "--store", store, "--", "sh", "-c", script,
        env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert ran.returncode == 3, ran.stderr.decode()


def test_a_stage_without_a_toolchain_is_one_line(seed_store):
    store, _, _, _, env = seed_store
    failed = run_cli("env", "--until", "stage3", "--store", store, env=env, check=False)
    assert failed.returncode == 1
    assert failed.stderr.decode() == (
        "bootstrap: error: no toolchain up to stage3 (the first is built in stage6): "
        "give a later --until, or a toolchain store path as TARGET\n"
    )


def test_env_builds_nothing_and_says_what_would(seed_store):
    store, _, _, _, env = seed_store
    failed = run_cli("env", "--until", "stage6", "--store", store, env=env, check=False)
    message = failed.stderr.decode()
    assert failed.returncode == 1 and message.count("\n") == 1
    assert "toolchain is not built yet: `bootstrap shell" in message
    assert "or `bootstrap run --until stage6" in message


def test_an_unknown_package_names_the_known_ones(seed_store):
    store, _, _, _, env = seed_store
    failed = run_cli("env", "--with", "cmak", "--store", store, env=env, check=False)
    message = failed.stderr.decode()
    assert message.startswith("bootstrap: error: no package 'cmak' in x86_64-linux; known: ")
    assert "cmake" in message and message.count("\n") == 1


# --- the chain's toolchains ---------------------------------------------------------------------


def _project(directory: Path) -> Path:
    """A directory with the threads program, its CMake and Meson builds, and Meson itself
    (Debian's source, a fixed-output download through the mirror:// scheme)."""
    directory.mkdir()
    (directory / "main.cc").write_text(THREADS_CC)
    (directory / "CMakeLists.txt").write_text(CMAKE_LISTS)
    (directory / "meson.build").write_text(MESON_BUILD)
    unpack(Fetcher(progress=False).fetch(MESON_SOURCE), directory / "meson", strip_top=True)
    return directory


BUILD_CXX_AND_CMAKE = (
    "set -e; test ! -e /usr; "
    '$CXX -O2 -pthread main.cc -o direct; test "$(./direct)" = "caught 60"; '
    "cmake -S . -B cmake-build -G Ninja; cmake --build cmake-build; "
    'test "$(cmake-build/demo)" = "caught 60"; echo all-built'
)
BUILD_MESON = (
    "set -e; test ! -e /usr; python3 meson/meson.py setup meson-build; ninja -C meson-build; "
    'test "$(meson-build/demo)" = "caught 60"; echo all-built'
)


def _chain_shell(tmp_path: Path, script: str, *options: str) -> None:
    root = Path(CHAIN_ROOT) if CHAIN_ROOT else pytest.skip("needs BOOTSTRAP_TEST_CHAIN_ROOT")
    env = {**os.environ, "BOOTSTRAP_PROGRESS": "0", "BOOTSTRAP_CACHE_DIR": str(root / "cache")}
    project = _project(tmp_path / "project")
    ran = _shell(
        "shell", "--store", root / "store", "--profile", PROFILE, "--pure",
        "--with", "cmake", "--with", "ninja", *options, "--", "sh", "-c", script,
        env=env, cwd=project,
    )  # fmt: skip
    assert ran.stdout.decode().endswith("all-built\n"), ran.stderr.decode()


CHAIN_SHELLS = [
    pytest.param(("--until", "stage6"), marks=pytest.mark.toolchain, id="gcc"),
    pytest.param(("--compiler", "clang"), marks=pytest.mark.clang, id="clang"),
]


@pytest.mark.parametrize("options", CHAIN_SHELLS)
def test_shell_builds_a_threads_program_and_a_cmake_project(tmp_path, options):
    _chain_shell(tmp_path, BUILD_CXX_AND_CMAKE, *options)


@pytest.mark.parametrize("options", CHAIN_SHELLS)
def test_shell_builds_a_meson_project(tmp_path, options):
    _chain_shell(tmp_path, BUILD_MESON, *options)
