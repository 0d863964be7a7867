"""`bootstrap build` with remote builders, through the CLI as a user runs it, against a real
sshd on 127.0.0.1 and real Nix: offloading, a builder that is down, local fallback."""

from __future__ import annotations

import os

from bootstrap.store import Store

from .conftest import run_cli
from .test_remote_support import (
    busybox_path,
    free_port,
    requires_remote,
    shell_drv,
)

pytestmark = requires_remote

SCRIPT = "echo built-by-$0 >&2; mkdir $out; echo hi > $out/greeting"


def build(store: Store, *args: str, check: bool = True, **env: str):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BOOTSTRAP_")}
    environment |= {"BOOTSTRAP_CONFIG": str(store.root / "none.toml"), **env}
    store_args = ("--store", str(store.root), "--store-dir", store.store_dir)
    return run_cli("build", *args, *store_args, check=check, env=environment)


def test_build_offloads_and_prints_the_outputs(tmp_path, remote, ours):
    shell = busybox_path(ours, tmp_path)
    drv_path, drv = shell_drv(ours, "offloaded", SCRIPT, shell)
    result = build(ours, drv_path, "--max-jobs", "0", "--builders", remote.spec())
    out = drv.outputs["out"].path
    assert result.stdout.decode().splitlines() == [out]
    assert f"building offloaded on ssh://root@127.0.0.1:{remote.port}" in result.stderr.decode()
    assert remote.nix_store("--check-validity", out, check=False).returncode == 0
    log = run_cli("log", out, "--store", ours.root, "--store-dir", ours.store_dir).stdout
    assert b"built-by-" in log
    assert ours.query_info(out).deriver == drv_path


def test_builders_come_from_the_environment_and_a_machines_file(tmp_path, remote, ours):
    shell = busybox_path(ours, tmp_path)
    drv_path, drv = shell_drv(ours, "from-env", SCRIPT, shell)
    machines = tmp_path / "machines"
    machines.write_text(f"# our test builder\n{remote.spec()}\n")
    result = build(ours, drv_path, BOOTSTRAP_BUILDERS=f"@{machines}", BOOTSTRAP_MAX_JOBS="0")
    assert result.stdout.decode().split() == [drv.outputs["out"].path]
    assert "on ssh://" in result.stderr.decode()


def test_a_builder_that_is_down_is_skipped_with_one_warning(tmp_path, remote, ours):
    shell = busybox_path(ours, tmp_path)
    drv_path, drv = shell_drv(ours, "fallback", SCRIPT, shell)
    down = remote.spec(port=free_port(), extra="1 10 - -")  # faster: tried first
    result = build(ours, drv_path, "--max-jobs", "0", "--builders", f"{down}; {remote.spec()}")
    stderr = result.stderr.decode()
    assert stderr.count("warning") == 1, stderr
    assert f"builder unavailable, not used again: {down.split()[0]}" in stderr
    assert result.stdout.decode().split() == [drv.outputs["out"].path]


def test_with_every_builder_down_it_builds_here(tmp_path, remote, ours):
    shell = busybox_path(ours, tmp_path)
    drv_path, drv = shell_drv(ours, "local", SCRIPT, shell)
    result = build(ours, drv_path, "--builders", remote.spec(port=free_port()))
    assert result.stderr.decode().count("warning") == 1
    assert result.stdout.decode().split() == [drv.outputs["out"].path]
    assert ours.is_valid(drv.outputs["out"].path)


def test_no_builder_fits_and_nothing_builds_here(tmp_path, remote, ours):
    shell = busybox_path(ours, tmp_path)
    drv_path, _ = shell_drv(ours, "nowhere", SCRIPT, shell, requiredSystemFeatures="kvm")
    result = build(ours, drv_path, "-j", "0", "--builders", remote.spec(), check=False)
    assert result.returncode == 1
    assert "max-jobs is 0" in result.stderr.decode()
    assert "no builder fits" in result.stderr.decode()
