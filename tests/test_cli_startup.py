"""The CLI imports only what the command it runs needs, and knows which module has which."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from bootstrap.cli import COMMAND_MODULES, COMMANDS

HEAVY = ("bootstrap.build", "bootstrap.recipe", "bootstrap.sandbox", "requests", "lief", "elftools")


def test_every_command_is_registered_by_the_module_the_table_names():
    for module in COMMAND_MODULES:
        parser = argparse.ArgumentParser()
        commands = parser.add_subparsers()
        importlib.import_module(f"bootstrap.cli.{module}").register(commands)
        registered = set(commands.choices)
        assert registered == {word for word, owner in COMMANDS.items() if owner == module}


@pytest.mark.parametrize(
    "argv",
    [["--version"], ["hash", "path", "README.md"], ["nar", "dump", "README.md"],
     ["key", "public", "/nonexistent"], ["store", "path-info", "--store", "{tmp}", "x"]],
)  # fmt: skip
def test_light_commands_do_not_load_the_builder(tmp_path, argv):
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    probe = (
        "import sys\n"
        "from bootstrap.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=False)
    stderr = result.stderr.decode()  # stdout may be a NAR: bytes, not text
    assert stderr.strip().splitlines()[-1] == "[]", stderr


def test_help_and_typos_still_see_every_command():
    result = subprocess.run(
        [sys.executable, "-m", "bootstrap", "--help"], capture_output=True, text=True, check=True
    )
    for word in COMMANDS:
        assert word in result.stdout
    typo = subprocess.run(
        [sys.executable, "-m", "bootstrap", "expot"], capture_output=True, text=True, check=False
    )
    assert typo.returncode == 2 and "did you mean 'export'" in typo.stderr
