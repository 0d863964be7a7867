"""The audit commands (hermetic, reproduce, manifest, diff) on a small real target."""

from __future__ import annotations

import json

from bootstrap.store import Store

from .conftest import run_cli
from .engine_fixtures import requires_busybox
from .test_cli_build import cli_env, make_stages

pytestmark = requires_busybox


def test_audits_of_a_built_target(tmp_path):
    stages = make_stages(tmp_path)
    env = cli_env(tmp_path)
    run_cli("run", "--stages", stages, "--no-out-link", env=env)

    # Stage 1's closure is hello and the test seed. hello's script names the seed's sh, so it
    # is clean; Debian's busybox names host directories (its applets' install paths), which
    # the audit reports as host references, and nothing else.
    hermetic = run_cli(
        "audit", "hermetic", "stage1", "--json", "--stages", stages, env=env, check=False
    )
    assert hermetic.returncode == 1
    violations = json.loads(hermetic.stdout)
    assert violations and {(v["kind"], v["file"].rsplit("/", 1)[1]) for v in violations} == {
        ("host-reference", "busybox")
    }

    # The recipe declares those strings: the audit accepts them, by stage and by store path,
    # and as allowances are audit policy, not build input, nothing is rebuilt.
    shown = run_cli("show", "--stages", stages, env=env).stdout
    declared = tuple(sorted({v["value"] for v in violations}))
    init = stages / "__init__.py"
    seed_line = next(line for line in init.read_text().splitlines() if line.startswith("seed ="))
    declaring = f"{seed_line[:-1]}, allowed_host_paths={declared!r})"
    init.write_text(init.read_text().replace(seed_line, declaring))
    assert run_cli("show", "--stages", stages, env=env).stdout == shown
    rows = shown.decode().splitlines()
    seed_path = next(line.split()[-1] for line in rows if " test-seed " in line)
    for audited in ("stage1", seed_path):
        clean = run_cli("audit", "hermetic", audited, "--stages", stages, env=env)
        assert clean.stdout == b"no violations\n", clean.stdout

    repro = run_cli("audit", "reproduce", "--stages", stages, env=env)
    assert b"2 identical, 0 differs" in repro.stdout

    manifest = json.loads(run_cli("audit", "manifest", "--stages", stages, env=env).stdout)
    a = tmp_path / "a.json"
    a.write_text(json.dumps(manifest))
    same = run_cli("audit", "diff", a, tmp_path / "root/var/bootstrap/manifests/x86_64-linux.json")
    assert same.stdout == b"identical: every stage hash matches\n"

    manifest["stages"]["stage2"]["hash"] = "sha256:" + "0" * 64
    b = tmp_path / "b.json"
    b.write_text(json.dumps(manifest))
    differs = run_cli("audit", "diff", a, b, check=False)
    assert differs.returncode == 1 and differs.stdout.startswith(b"stage stage2: sha256:")


def test_audit_errors_are_one_line(tmp_path):
    stages = make_stages(tmp_path)
    env = cli_env(tmp_path)
    Store(tmp_path / "root")  # an empty store: audits never make one
    for args, message in (
        (("audit", "hermetic", "stage9", "--stages", stages), b"neither a store path"),
        (("audit", "hermetic", "stage1", "--stages", stages), b"is not fully built"),
        (("audit", "reproduce", "--only", "nope", "--stages", stages), b"unknown stage 'nope'"),
        (("audit", "diff", tmp_path / "x.json", tmp_path / "y.json"), b"cannot read manifest"),
    ):
        result = run_cli(*args, env=env, check=False)
        assert result.returncode == 1, (args, result.stderr)
        assert message in result.stderr and result.stderr.count(b"\n") == 1, result.stderr
