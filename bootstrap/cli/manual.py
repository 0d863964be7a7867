"""`bootstrap completion SHELL` and `bootstrap man`: shell completion and the manual page,
both drawn from the parser itself, so they cannot drift from the commands.

Completion is argcomplete's: the script a shell loads asks `bootstrap` itself for the
candidates (`main` answers when `_ARGCOMPLETE` is set), so new commands and options complete
without a new script. The manual page is argparse-manpage's rendering of every command.
"""

from __future__ import annotations

import argparse
import sys

from bootstrap import __version__

SHELLS = ("bash", "zsh", "fish")


def register(commands: argparse._SubParsersAction) -> None:
    text = (
        "print a completion script for SHELL, e.g. "
        '`eval "$(bootstrap completion bash)"` in ~/.bashrc, '
        '`eval "$(bootstrap completion zsh)"` in ~/.zshrc (after compinit), or '
        "`bootstrap completion fish > ~/.config/fish/completions/bootstrap.fish`"
    )
    completion = commands.add_parser(
        "completion", help="print a shell completion script", description=text
    )
    completion.add_argument("shell", choices=SHELLS, metavar="SHELL", help=", ".join(SHELLS))
    completion.set_defaults(func=run_completion)

    text = (
        "print the manual page of every command (roff), made from the parser: read it with "
        "`bootstrap man | man -l -`, or install it as man1/bootstrap.1"
    )
    man = commands.add_parser("man", help="print the manual page", description=text)
    man.set_defaults(func=run_man)


def run_completion(args: argparse.Namespace) -> int:
    import argcomplete

    sys.stdout.write(argcomplete.shellcode(["bootstrap"], shell=args.shell))
    return 0


def run_man(args: argparse.Namespace) -> int:
    from argparse_manpage.manpage import Manpage

    from bootstrap.cli import build_parser

    data = {
        "project_name": "bootstrap",
        "description": "grow a hermetic C/C++ toolchain from a hashed seed into a Nix-style store",
        "prog": "bootstrap",
        "version": __version__,
        "manual_section": "1",
        "manual_title": "bootstrap manual",
        "url": "",
    }
    sys.stdout.write(str(Manpage(build_parser(), data)))
    return 0


def complete(parser: argparse.ArgumentParser) -> None:
    """Answer a completing shell (argcomplete's protocol) and exit; nothing otherwise."""
    import argcomplete

    argcomplete.autocomplete(parser)
