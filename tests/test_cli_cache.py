"""The cache round trip as a user runs it: store A builds and exports a signed cache; a fresh
store B substitutes everything from it, builds nothing and prints the same stage hashes."""

from __future__ import annotations

import json
import os

import pytest

from bootstrap.config import SUBSTITUTERS, list_setting
from bootstrap.errors import BootstrapError
from bootstrap.hashing import Hash
from bootstrap.signing import fingerprint, signature_valid, trusted_keys
from bootstrap.store import Store
from bootstrap.store.verify import verify_store

from .conftest import run_cli
from .engine_fixtures import requires_busybox
from .test_cli_build import cli_env, make_stages


def stage_hashes(stdout: str) -> list[str]:
    lines = stdout.split("stage hashes", 1)[1].splitlines()
    return [line.split()[1] for line in lines if line.startswith("  stage")]


@requires_busybox
def test_round_trip_through_a_signed_cache(tmp_path):
    stages = make_stages(tmp_path)
    env_a = cli_env(tmp_path)
    built = run_cli("run", "--stages", stages, "--no-out-link", env=env_a).stdout.decode()
    assert "3 built" in built or " built," in built
    run_cli("key", "generate", "--name", "test-1", "--secret", tmp_path / "sk",
            "--public", tmp_path / "pk", env=env_a)  # fmt: skip
    public = (tmp_path / "pk").read_text().strip()
    run_cli("export", "--stages", stages, "--to", tmp_path / "bincache",
            "--sign-key", tmp_path / "sk", env=env_a)  # fmt: skip

    env_b = {**cli_env(tmp_path / "b"), "BOOTSTRAP_CONFIG": str(tmp_path / "none.toml")}
    cache = f"file://{tmp_path / 'bincache'}"
    result = run_cli("run", "--stages", stages, "--no-out-link", "--substituters", cache,
                     "--trusted-public-keys", public, env=env_b)  # fmt: skip
    out = result.stdout.decode()
    assert out.startswith("0 built, 3 substituted"), out  # the seed, hello, greet
    assert stage_hashes(out) == stage_hashes(built)
    store_b = Store(tmp_path / "b" / "root")
    assert verify_store(store_b).ok
    manifest = json.loads((store_b.state_dir / "manifests" / "x86_64-linux.json").read_text())
    assert set(manifest["substituted"].values()) == {cache}
    # every substituted path carries the signature it came with
    for path in manifest["substituted"]:
        assert store_b.query_info(path).signatures[0].startswith("test-1:")

    shown = run_cli("show", "--stages", stages, env=env_b).stdout.decode()
    statuses = {line.split()[1]: line.split()[2] for line in shown.splitlines()[1:]}
    assert statuses["greet-2.0"] == statuses["hello-1.0"] == "substituted"

    # a store that does not trust the key builds instead, with one warning per refused path
    env_c = {**cli_env(tmp_path / "c"), "BOOTSTRAP_SUBSTITUTERS": cache,
             "BOOTSTRAP_CONFIG": str(tmp_path / "none.toml")}  # fmt: skip
    refused = run_cli("run", "--stages", stages, "--no-out-link", env=env_c)
    assert refused.stdout.decode().startswith("4 built, 0 reused"), refused.stdout
    assert "no valid signature by a trusted key" in refused.stderr.decode()
    assert stage_hashes(refused.stdout.decode()) == stage_hashes(built)


def test_settings_come_from_flag_then_environment_then_file(tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text('substituters = ["file:///from/file", "file:///second"]\n')
    monkeypatch.setenv("BOOTSTRAP_CONFIG", str(config))
    monkeypatch.delenv("BOOTSTRAP_SUBSTITUTERS", raising=False)
    from_file = list_setting(SUBSTITUTERS, None)
    assert from_file.values == ("file:///from/file", "file:///second")
    assert from_file.origin == str(config)
    monkeypatch.setenv("BOOTSTRAP_SUBSTITUTERS", "file:///env-a file:///env-b")
    from_env = list_setting(SUBSTITUTERS, None)
    assert (from_env.values, from_env.origin) == (
        ("file:///env-a", "file:///env-b"),
        "$BOOTSTRAP_SUBSTITUTERS",
    )
    from_flag = list_setting(SUBSTITUTERS, ["file:///flag"])
    assert (from_flag.values, from_flag.origin) == (("file:///flag",), "--substituters")


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("substituters = [", "not valid TOML"),
        ("substituter = []", "unknown setting 'substituter'"),
        ('substituters = "file:///x"', "substituters must be a list of strings"),
    ],
)
def test_bad_config_file_is_one_line(tmp_path, monkeypatch, text, complaint):
    config = tmp_path / "config.toml"
    config.write_text(text + "\n")
    monkeypatch.setenv("BOOTSTRAP_CONFIG", str(config))
    monkeypatch.delenv("BOOTSTRAP_SUBSTITUTERS", raising=False)
    with pytest.raises(BootstrapError, match=complaint):
        list_setting(SUBSTITUTERS, None)
    result = run_cli("run", "--store", tmp_path / "s", check=False,
                     env={**os.environ, "BOOTSTRAP_CONFIG": str(config)})  # fmt: skip
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert stderr.startswith(f"bootstrap: error: {config}: ") and stderr.count("\n") == 1


def test_bad_trusted_key_is_one_line(tmp_path):
    env = {**os.environ, "BOOTSTRAP_CONFIG": str(tmp_path / "none.toml")}
    result = run_cli("run", "--store", tmp_path / "s", "--trusted-public-keys", "k:abc",
                     check=False, env=env)  # fmt: skip
    assert result.returncode == 1
    assert "trusted public key (from --trusted-public-keys): the part after 'k:' is not base64" in (
        result.stderr.decode()
    )


@requires_busybox
def test_store_sign_shows_in_path_info_and_export(tmp_path):
    stages = make_stages(tmp_path)
    env = cli_env(tmp_path)
    run_cli("run", "--stages", stages, "--out-link", tmp_path / "result", env=env)
    run_cli("key", "generate", "--name", "k-1", "--secret", tmp_path / "sk",
            "--public", tmp_path / "pk", env=env)  # fmt: skip
    result = os.readlink(tmp_path / "result")  # the physical path, which every command takes
    signed = run_cli("store", "sign", "-r", "--key", tmp_path / "sk", result,
                     env=env).stdout.decode()  # fmt: skip
    infos = json.loads(run_cli("store", "path-info", "-r", "--json", result, env=env).stdout)
    assert signed.splitlines() == [f"signed {info['path']}" for info in infos]
    public = (tmp_path / "pk").read_text().strip()
    trusted = trusted_keys([public])
    for info in infos:
        assert len(info["signatures"]) == 1
        message = fingerprint(
            info["path"], Hash.parse(info["narHash"]), info["narSize"], info["references"]
        )
        assert signature_valid(info["signatures"][0], message, trusted)
    # export without a key publishes the stored signatures
    run_cli("export", result, "--no-drvs", "--to", tmp_path / "c", env=env)
    narinfos = list((tmp_path / "c").glob("*.narinfo"))
    assert narinfos and all("\nSig: k-1:" in n.read_text() for n in narinfos)


@requires_busybox
def test_build_a_derivation_copied_from_the_cache_substitutes_its_outputs(tmp_path):
    """The cache carries the derivations too: copy a .drv into an empty store, then
    `bootstrap build` it with the cache as substituter; nothing is built."""
    stages = make_stages(tmp_path)
    env_a = cli_env(tmp_path)
    run_cli("run", "--stages", stages, "--no-out-link", env=env_a)
    run_cli("key", "generate", "--name", "k-1", "--secret", tmp_path / "sk",
            "--public", tmp_path / "pk", env=env_a)  # fmt: skip
    run_cli("export", "--stages", stages, "--to", tmp_path / "c", "--sign-key", tmp_path / "sk",
            env=env_a)  # fmt: skip
    store_a = Store(tmp_path / "root")
    greet = next(p for p in store_a.all_paths() if p.endswith("-greet-2.0"))
    drv = store_a.query_info(greet).deriver
    cache, key = f"file://{tmp_path / 'c'}", (tmp_path / "pk").read_text().strip()

    env_b = {**cli_env(tmp_path / "b"), "BOOTSTRAP_CONFIG": str(tmp_path / "none.toml")}
    trust = ("--trusted-public-keys", key)
    run_cli("copy", "--from", cache, *trust, drv, env=env_b)
    built = run_cli("build", drv, "--substituters", cache, *trust, env=env_b)
    assert built.stdout.decode().split() == [greet]
    assert "\n0 built, 1 substituted, " in built.stderr.decode(), built.stderr
    assert Store(tmp_path / "b" / "root").db.substituted_from(greet) == cache
