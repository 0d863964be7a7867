"""Command-line entry point.

The CLI is thin: each module in this package registers one command group and calls into the
library. Adding a group means adding its module name to `COMMAND_MODULES` and its commands to
`COMMANDS`. A command line naming a known command imports that command's module only, so
`bootstrap hash` or `--version` start without loading the builder, the recipes or requests;
help and typos build the whole parser.

Two kinds of error, as Nix and most CLIs have them: an argument error (an unknown command or
option, a missing or malformed argument) prints the usage of the command at fault, with the
nearest known command or option when there is one, and exits 2; any other error prints one line,
`bootstrap: error: ...`, and exits 1.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import re
import shlex
import signal
import sys
from collections.abc import Iterable

from bootstrap import __version__
from bootstrap.errors import BootstrapError

COMMAND_MODULES = (
    "hash",
    "nar",
    "store",
    "drv",
    "build",
    "remote",
    "audit",
    "export",
    "seed",
    "key",
    "copy",
    "query",
    "plan",
    "shell",
    "settings",
    "manual",
)

# command word -> the module that registers it (tests check this against the modules)
COMMANDS = {
    "hash": "hash",
    "nar": "nar",
    "store": "store",
    "drv": "drv",
    **dict.fromkeys(("run", "fetch", "log"), "build"),
    **dict.fromkeys(("show", "graph"), "plan"),
    "build": "remote",
    "audit": "audit",
    "export": "export",
    "seed": "seed",
    "key": "key",
    "copy": "copy",
    "import": "copy",
    **dict.fromkeys(("why-depends", "size", "diff-closures"), "query"),
    **dict.fromkeys(("shell", "env"), "shell"),
    "config": "settings",
    **dict.fromkeys(("completion", "man"), "manual"),
}

# options a user gave that a command suggested in an error message repeats, if it takes them
# (the store they named, the recipes and profile), as `dest` -> option
REPEATED_OPTIONS = {"store": "--store", "store_dir": "--store-dir", "stages": "--stages"}
SUGGESTED_COMMAND = re.compile(r"`bootstrap ([^`]*)`")

# commands that run a command of the user's, given after `--` (kept out of the parser)
PASS_THROUGH = ("shell",)


class Parser(argparse.ArgumentParser):
    """argparse as the CLI uses it: long options are never abbreviated, and a misspelt command,
    choice or option is answered with the nearest valid one. Every subparser is a `Parser` too
    (`add_subparsers` makes its parsers of the class it is called on)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        """Refuse leftover arguments here, in the (sub)command that met them, so that the
        usage and the suggestion are that command's: no command takes pass-through arguments."""
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}{self._option_hint(extras)}")
        return namespace, extras

    def _option_hint(self, extras: list[str]) -> str:
        options = [word.partition("=")[0] for word in extras if word.startswith("--")]
        return _did_you_mean(options[0], self._option_string_actions) if options else ""

    def _check_value(self, action: argparse.Action, value: object) -> None:
        try:
            super()._check_value(action, value)
        except argparse.ArgumentError as error:
            hint = _did_you_mean(str(value), [str(choice) for choice in action.choices or ()])
            raise argparse.ArgumentError(action, error.message + hint) from None


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def build_parser(modules: Iterable[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    """The parser with the commands of `modules` (all by default)."""
    parser = Parser(
        prog="bootstrap",
        description=(
            "Grow a hermetic C/C++ toolchain (glibc, binutils, gcc, clang) from a tiny hashed "
            "seed, stage by stage, into a Nix-style content-addressed store."
        ),
    )
    parser.add_argument("--version", action="version", version=f"bootstrap {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in modules:
        importlib.import_module(f"bootstrap.cli.{name}").register(commands)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (a service manager stopping us, a CI timeout), handled as Ctrl-C is."""


def _raise_terminated(_signum, _frame) -> None:
    raise Terminated


def _fail(message: str) -> int:
    print(f"bootstrap: error: {message}", file=sys.stderr)
    return 1


def _describe(error: OSError) -> str:
    """`FILE: reason`, as the C library says it."""
    reason = error.strerror or str(error)
    named = [os.fsdecode(name) for name in (error.filename, error.filename2) if name is not None]
    return ": ".join([*named, reason]) if named else reason


def _modules_for(argv: list[str]) -> tuple[str, ...]:
    """Only the module of the command `argv` names; none for a lone `--version`; else all."""
    if argv == ["--version"]:
        return ()
    word = next((arg for arg in argv if not arg.startswith("-")), None)
    return (COMMANDS[word],) if word in COMMANDS else COMMAND_MODULES


def _split_passthrough(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """A PASS_THROUGH command's own arguments, and the command after its `--` (else None)."""
    word = next((arg for arg in argv if not arg.startswith("-")), None)
    if word not in PASS_THROUGH or "--" not in argv:
        return argv, None
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1 :]


def with_user_options(message: str, args: argparse.Namespace) -> str:
    """`message` with each command it suggests (`bootstrap ...` in backquotes) repeating the
    store options, recipes and profile the user gave, where that command takes them."""
    given = [(flag, getattr(args, dest, None)) for dest, flag in REPEATED_OPTIONS.items()]
    given = [(flag, value) for flag, value in given if value is not None]
    if getattr(args, "profile", "default") != "default":
        given.append(("--profile", args.profile))
    if not given or not SUGGESTED_COMMAND.search(message):
        return message
    parser = build_parser()

    def repeat(match: re.Match) -> str:
        words = match.group(1).split()
        options = _options_of(parser, words)
        extra = [
            f"{flag} {shlex.quote(os.fspath(value))}"
            for flag, value in given
            if flag in options and flag not in words
        ]
        return f"`bootstrap {' '.join([*words, *extra])}`"

    return SUGGESTED_COMMAND.sub(repeat, message)


def _options_of(parser: argparse.ArgumentParser, words: list[str]) -> dict[str, object]:
    """The options of the (sub)command that `words` name."""
    for word in words:
        commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not commands or word not in commands[0].choices:
            break
        parser = commands[0].choices[word]
    return parser._option_string_actions


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "_ARGCOMPLETE" in os.environ:  # a shell asks for completions (bootstrap completion)
        from bootstrap.cli.manual import complete

        complete(build_parser())
    argv, passthrough = _split_passthrough(argv)
    args = build_parser(_modules_for(argv)).parse_args(argv)
    if passthrough is not None:
        args.passthrough = passthrough
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return args.func(args) or 0
    except BootstrapError as err:
        return _fail(with_user_options(str(err), args))
    except BrokenPipeError:
        return 141
    except OSError as err:  # a file system error no check foresaw: still one line
        return _fail(_describe(err))
    except RecursionError:
        return _fail("input nested too deeply to process (Python's recursion limit)")
    except KeyboardInterrupt as interrupt:
        terminated = isinstance(interrupt, Terminated)
        print(f"bootstrap: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)
