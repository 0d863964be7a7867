"""Command-line entry point.

The CLI is thin: each module in this package registers one command group and calls into the
library. Adding a group means adding its module name to `COMMAND_MODULES`.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from bootstrap import __version__
from bootstrap.errors import BootstrapError

COMMAND_MODULES = (
    "hash",
    "nar",
    "store",
    "drv",
    "build",
    "audit",
    "export",
    "seed",
    "key",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bootstrap",
        description=(
            "Grow a hermetic C/C++ toolchain (glibc, binutils, gcc, clang) from a tiny hashed "
            "seed, stage by stage, into a Nix-style content-addressed store."
        ),
    )
    parser.add_argument("--version", action="version", version=f"bootstrap {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"bootstrap.cli.{name}").register(commands)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (a service manager stopping us, a CI timeout), handled as Ctrl-C is."""


def _raise_terminated(_signum, _frame) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return args.func(args) or 0
    except BootstrapError as err:
        print(f"bootstrap: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as interrupt:
        terminated = isinstance(interrupt, Terminated)
        print(f"bootstrap: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)
    except BrokenPipeError:
        return 141
