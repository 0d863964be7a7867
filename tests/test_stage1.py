"""Stage 0 and 1 for real: `bootstrap run --until stage1` on a machine whose download cache has
the pinned sources but no seed, so the seed is built from source first, then stage 1 in the
sandbox. About 2-3 minutes on 2 cores (sources must be downloadable or already cached).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from bootstrap.errors import BootstrapError
from bootstrap.fetch import Fetcher
from bootstrap.recipe import Recipes, Stage, plan_target, select_stages
from bootstrap.sandbox import Bind, SandboxSpec, run_in_sandbox
from bootstrap.seed import load_manifest
from bootstrap.store import Store
from stages.stage1 import PATCH_SOURCE
from tests.conftest import run_cli

TARGET = "x86_64-linux"
STAGE1 = ("linux-headers", "musl", "tcc", "make", "busybox", "patch")


def _prefill_cache(cache: Path) -> None:
    """Put every pinned source (not the seed archive) into `cache`, from the user's cache."""
    shared = Fetcher(progress=False)
    local = Fetcher(cache_dir=cache, progress=False)
    cache.mkdir(parents=True)
    for source in [*(s.as_fetch_source() for s in load_manifest().sources), PATCH_SOURCE]:
        cached = shared.download(list(source.urls), source.hash, source.name)
        target = local.cache_path(source.hash)
        try:
            os.link(cached, target)
        except OSError:
            shutil.copyfile(cached, target)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("stage1")
    _prefill_cache(root / "cache")
    env = {**os.environ, "BOOTSTRAP_CACHE_DIR": str(root / "cache"), "BOOTSTRAP_PROGRESS": "0"}
    store_args = ("--store", str(root / "store"))
    result = run_cli(
        "run",
        TARGET,
        "--until",
        "stage1",
        *store_args,
        "--out-link",
        str(root / "result"),
        env=env,
    )
    return root, store_args, env, result


def _outputs(root: Path) -> dict[str, Path]:
    store = Store(root / "store")
    plan = plan_target(store.store_dir, TARGET, Recipes(), until="stage1")
    paths = {}
    for drv_path in plan.stages["stage1"]:
        drv = plan.graph.derivations[drv_path]
        paths[drv.name.rsplit("-", 1)[0]] = store.real_path(drv.outputs["out"].path)
    return paths


def test_run_builds_the_seed_on_first_use_then_stage1(built):
    root, _, _, result = built
    stderr, stdout = result.stderr.decode(), result.stdout.decode()
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


def test_stage1_tcc_compiles_and_links_against_the_store_musl(built, tmp_path):
    root = built[0]
    store = Store(root / "store")
    tcc = _outputs(root)["tcc"]
    tcc_path = store.to_store_path(str(tcc))
    (tmp_path / "hello.c").write_text(
        "#include <stdio.h>\n#include <linux/version.h>\n"
        'int main(void) { printf("hello %d\\n", LINUX_VERSION_CODE > 0); return 0; }\n'
    )
    closure = store.closure([tcc_path])
    spec = SandboxSpec(
        command=[f"{tcc_path}/bin/tcc", "-static", "-o", "/build/hello", "/build/hello.c"],
        build_dir=tmp_path,
        inputs=[Bind(store.real_path(p), p) for p in closure],
    )
    result = run_in_sandbox(spec, tmp_path / "log")
    assert result.succeeded, (tmp_path / "log").read_text()
    hello = subprocess.run([tmp_path / "hello"], capture_output=True)
    assert hello.stdout == b"hello 1\n"
    assert any(p.endswith("-musl-1.2.3") for p in closure)


def test_stage0_and_stage1_pass_the_hermetic_audit(built):
    _, store_args, env, _ = built
    result = run_cli("audit", "hermetic", "stage0", "stage1", *store_args, env=env)
    assert result.stdout.decode().strip() == "no violations"


def test_stage1_is_bit_identical_when_built_again(built):
    _, store_args, env, _ = built
    result = run_cli("audit", "reproduce", TARGET, "--until", "stage1", *store_args, env=env)
    report = result.stdout.decode()
    assert "6 identical, 0 differs, 0 failed" in report, report


def test_a_stage_number_names_the_stage():
    stages = [Stage("stage0", ()), Stage("stage1", ()), Stage("stage2", ())]
    assert [s.name for s in select_stages(stages, "1")] == ["stage0", "stage1"]
    assert [s.name for s in select_stages(stages, "stage2")] == ["stage0", "stage1", "stage2"]
    with pytest.raises(BootstrapError, match="unknown stage '7': expected one of stage0"):
        select_stages(stages, "7")
