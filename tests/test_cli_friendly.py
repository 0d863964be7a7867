"""The CLI's edges as a user meets them: a store that does not exist, suggested commands that
repeat the user's options, `config show`, shell completion in real shells, the manual page."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import run_cli
from .engine_fixtures import requires_busybox
from .test_cli_build import cli_env, make_stages

BOOTSTRAP = Path(sys.executable).with_name("bootstrap")  # the venv's entry point


def env_with(tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOTSTRAP_")}
    env["BOOTSTRAP_CONFIG"] = str(tmp_path / "config.toml")  # none unless a test writes it
    env["HOME"] = str(tmp_path / "home")
    env["PATH"] = f"{BOOTSTRAP.parent}:{env['PATH']}"
    return {**env, **extra}


@pytest.mark.parametrize(
    "command",
    [
        ("store", "path-info", "/bootstrap/store/" + "0" * 32 + "-x"),
        ("store", "gc"),
        ("store", "gc", "--dry-run"),
        ("store", "add-root", "/bootstrap/store/" + "0" * 32 + "-x"),
        ("log", "/bootstrap/store/" + "0" * 32 + "-x"),
        ("export", "--to", "cache"),
        ("audit", "manifest"),
        ("size", "/bootstrap/store/" + "0" * 32 + "-x"),
    ],
)
def test_a_typoed_store_is_one_line_and_is_not_created(tmp_path, command):
    typo = tmp_path / "stroe"
    result = run_cli(*command, "--store", typo, env=env_with(tmp_path), check=False)
    assert result.returncode == 1, result.stderr
    line = result.stderr.decode()
    assert line.startswith(f"bootstrap: error: no store at {typo} (given by --store)"), line
    assert line.count("\n") == 1 and not typo.exists()


def test_a_missing_default_store_says_where_its_name_came_from(tmp_path):
    env = env_with(tmp_path, BOOTSTRAP_STORE=str(tmp_path / "nothing"))
    result = run_cli("store", "gc", env=env, check=False)
    assert f"no store at {tmp_path}/nothing (from $BOOTSTRAP_STORE)".encode() in result.stderr
    (tmp_path / "config.toml").write_text(f'store = "{tmp_path}/elsewhere"\n')
    result = run_cli("store", "gc", env=env_with(tmp_path), check=False)
    expected = f"no store at {tmp_path}/elsewhere (from {tmp_path}/config.toml)"
    assert expected.encode() in result.stderr


def test_a_relative_store_in_the_config_file_is_beside_the_file(tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text('store = "stores/main"\n')
    monkeypatch.chdir(tmp_path.parent)  # the command runs elsewhere
    shown = json.loads(run_cli("config", "show", "--json", env=env_with(tmp_path)).stdout)
    assert shown["settings"]["store"]["value"] == f"{tmp_path}/stores/main"


def test_commands_that_add_make_the_store(tmp_path):
    root = tmp_path / "new"
    (tmp_path / "f").write_text("x\n")
    added = run_cli("store", "add", tmp_path / "f", "--store", root, env=env_with(tmp_path))
    assert added.stdout.startswith(b"/bootstrap/store/") and (root / "store").is_dir()
    gc = run_cli("store", "gc", "--dry-run", "--json", "--store", root, env=env_with(tmp_path))
    assert json.loads(gc.stdout)["deleted"] == [added.stdout.decode().strip()]


def test_a_suggested_command_repeats_the_store_options_given(tmp_path):
    root = tmp_path / "mine"
    (tmp_path / "f").write_text("x\n")
    env = env_with(tmp_path)
    run_cli("store", "add", tmp_path / "f", "--store", root, "--store-dir", "/nix/store", env=env)
    result = run_cli(
        "export", "--store", root, "--store-dir", "/nix/store", "--to", tmp_path / "c",
        "--until", "stage1", env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.decode().endswith(
        f"`bootstrap run x86_64-linux --until stage0 --store {root} --store-dir /nix/store` first\n"
    ), result.stderr


def test_config_show_says_where_each_setting_came_from(tmp_path):
    (tmp_path / "config.toml").write_text(
        f'store = "{tmp_path}/from-file"\nstore-dir = "/nix/store"\nmax-jobs = 3\ncores = 5\n'
        'substituters = ["file:///srv/cache"]\n'
    )
    env = env_with(tmp_path, BOOTSTRAP_MAX_JOBS="4")
    shown = json.loads(run_cli("config", "show", "--json", env=env).stdout)
    settings = shown["settings"]
    config = str(tmp_path / "config.toml")
    assert shown["configFile"] == config
    assert settings["store"] == {"value": f"{tmp_path}/from-file", "origin": config}
    assert settings["store-dir"] == {"value": "/nix/store", "origin": config}
    assert settings["max-jobs"] == {"value": 4, "origin": "$BOOTSTRAP_MAX_JOBS"}
    assert settings["cores"] == {"value": 5, "origin": config}
    assert settings["substituters"] == {"value": ["file:///srv/cache"], "origin": config}
    assert settings["trusted-public-keys"] == {"value": [], "origin": "default"}
    assert settings["builders"] == {"value": "", "origin": "default"}
    flagged = run_cli("config", "show", "--json", "-j", "2", "--cores", "1", env=env).stdout
    settings = json.loads(flagged)["settings"]
    assert settings["max-jobs"] == {"value": 2, "origin": "--max-jobs"}
    assert settings["cores"] == {"value": 1, "origin": "--cores"}
    text = run_cli("config", "show", "--store", tmp_path / "flag", env=env).stdout.decode()
    assert f"store                {tmp_path}/flag  (--store)" in text
    assert f"store-dir            /nix/store  ({config})" in text
    # the file's store and store dir are the ones commands use
    (tmp_path / "f").write_text("x\n")
    added = run_cli("store", "add", tmp_path / "f", env=env).stdout.decode()
    assert added.startswith("/nix/store/") and (tmp_path / "from-file" / "store").is_dir()


def test_config_show_refuses_a_bad_setting_in_one_line(tmp_path):
    (tmp_path / "config.toml").write_text("cores = 0\n")
    result = run_cli("config", "show", env=env_with(tmp_path), check=False)
    assert result.stderr.decode() == (
        f"bootstrap: error: {tmp_path}/config.toml: cores must be a whole number (1 or more); "
        "got 0\n"
    )


def _complete_in_bash(tmp_path: Path, line: str) -> list[str]:
    words = line.split() + ([""] if line.endswith(" ") else [])
    script = (
        'eval "$(bootstrap completion bash)"; '
        f"COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}; "
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}; "
        '_python_argcomplete bootstrap; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, env=env_with(tmp_path), check=True
    )
    return done.stdout.decode().split()


def test_bash_completes_commands_options_and_choices(tmp_path):
    assert _complete_in_bash(tmp_path, "bootstrap sto") == ["store"]
    assert _complete_in_bash(tmp_path, "bootstrap store gc --d") == [
        "--dry-run",
        "--delete-partial",
    ]
    assert _complete_in_bash(tmp_path, "bootstrap graph --format ") == ["dot", "mermaid", "json"]
    assert "config" in _complete_in_bash(tmp_path, "bootstrap ")


@pytest.mark.skipif(not shutil.which("fish"), reason="fish is not installed")
def test_fish_completes_from_the_same_parser(tmp_path):
    script = (
        "bootstrap completion fish | source; complete -C 'bootstrap sto'; "
        "complete -C 'bootstrap audit diff --j'"
    )
    done = subprocess.run(
        ["fish", "--no-config", "-c", script],
        capture_output=True,
        env=env_with(tmp_path),
        check=True,
    )
    names = [line.split("\t")[0] for line in done.stdout.decode().splitlines()]
    assert names == ["store", "--json"]


ZSH_SESSION = """
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z 'autoload -U compinit; compinit -u -D; eval "$(bootstrap completion zsh)"; echo READY'
zpty -r -m z out '*READY*'
zpty -n -w z $'bootstrap store g\\t'
zpty -r -m z out '*store gc*' && print COMPLETED
zpty -d z
"""


@pytest.mark.skipif(not shutil.which("zsh"), reason="zsh is not installed")
def test_zsh_completes_in_an_interactive_shell(tmp_path):
    script = run_cli("completion", "zsh", env=env_with(tmp_path)).stdout
    assert script.startswith(b"#compdef bootstrap")
    subprocess.run(["zsh", "-n"], input=script, check=True)
    # a real interactive zsh on a pseudo-terminal, TAB pressed after `bootstrap store g`
    session = subprocess.run(
        ["zsh", "-f", "-c", ZSH_SESSION],
        capture_output=True,
        env=env_with(tmp_path),
        timeout=60,
    )
    assert session.stdout.decode().splitlines()[-1:] == ["COMPLETED"], session


def test_the_manual_page_covers_every_command_and_renders(tmp_path):
    page = run_cli("man", env=env_with(tmp_path)).stdout.decode()
    assert page.startswith('.TH BOOTSTRAP "1"')
    for command in ("run", "show", "graph", "store gc", "config show", "completion", "man"):
        assert f".SH COMMAND \\fI\\,'bootstrap {command}'" in page.replace("\\-", "-")
    if shutil.which("groff"):  # groff-base: scripts/setup --test installs it
        rendered = subprocess.run(
            ["groff", "-man", "-Tutf8", "-ww"], input=page.encode(), capture_output=True
        )
        assert rendered.returncode == 0 and not rendered.stderr, rendered.stderr
        text = re.sub(r".\x08", "", rendered.stdout.decode())  # no overstrike (bold)
        assert "COMMAND 'bootstrap config show'" in text


def test_auditing_plain_files_needs_no_store_and_makes_none(tmp_path):
    tree = tmp_path / "out" / "bin"
    tree.mkdir(parents=True)
    (tree / "tool").write_text("#!/bin/sh\necho hi\n")
    root = tmp_path / "none"
    audited = run_cli(
        "audit", "hermetic", tmp_path / "out", "--store", root, env=env_with(tmp_path), check=False
    )
    assert audited.returncode == 1 and b"/bin/sh" in audited.stdout and not root.exists()
    missing = run_cli(
        "audit", "hermetic", "/bootstrap/store/" + "0" * 32 + "-x", "--store", root,
        env=env_with(tmp_path), check=False,
    )  # fmt: skip
    assert missing.stderr.startswith(b"bootstrap: error: no store at") and not root.exists()


def _commands(parser, words=()):
    """Every runnable command of the parser, as its words."""
    import argparse

    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [" ".join(words)]
    return [c for name, sub in subs[0].choices.items() for c in _commands(sub, (*words, name))]


def test_docs_cli_md_shows_every_command_with_an_example():
    from bootstrap.cli import build_parser

    docs = (Path(__file__).parent.parent / "docs" / "cli.md").read_text()
    rows = {line.split("`")[1]: line for line in docs.splitlines() if line.startswith("| `")}
    for command in _commands(build_parser()):
        assert command in rows, f"docs/cli.md has no example of `bootstrap {command}`"
        assert f"bootstrap {command}" in rows[command]


@pytest.mark.parametrize("command", ["run", "fetch", "show", "graph", "export"])
def test_an_unknown_target_names_the_known_ones_and_makes_no_store(tmp_path, command):
    root = tmp_path / "fresh"
    args = (command, "x86_64-linx", "--store", root) + (
        ("--to", "c") if command == "export" else ()
    )
    result = run_cli(*args, env=env_with(tmp_path), check=False)
    assert result.stderr.decode() == (
        "bootstrap: error: unknown target 'x86_64-linx'; known: x86_64-linux\n"
    )
    assert result.returncode == 1 and not root.exists()


def test_suggestions_repeat_only_the_options_their_command_takes():
    from argparse import Namespace

    from bootstrap.cli import with_user_options

    args = Namespace(store=Path("/srv/my store"), store_dir=None, stages=None, profile="fast")
    message = (
        "... and 3 more (`bootstrap show --timings` lists all); compare with "
        "`bootstrap audit diff`; run `bootstrap seed verify` or `bootstrap store verify`"
    )
    assert with_user_options(message, args) == (
        "... and 3 more (`bootstrap show --timings --store '/srv/my store' --profile fast` "
        "lists all); compare with `bootstrap audit diff`; run `bootstrap seed verify` or "
        "`bootstrap store verify --store '/srv/my store'`"
    )
    plain = Namespace(store=None, store_dir=None, stages=None, profile="default")
    assert with_user_options(message, plain) == message


@requires_busybox
def test_cores_from_the_config_file_reach_the_builds(tmp_path):
    stages = make_stages(tmp_path)
    (tmp_path / "config.toml").write_text("cores = 3\n")
    env = {**cli_env(tmp_path), "BOOTSTRAP_CONFIG": str(tmp_path / "config.toml")}
    run_cli("run", "--until", "stage1", "--stages", stages, "--no-out-link", env=env)
    shown = json.loads(run_cli("show", "--json", "--stages", stages, env=env).stdout)
    hello = next(entry for entry in shown if entry["name"] == "hello-1.0")
    assert hello["time"]["cores"] == 3
