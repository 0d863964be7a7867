"""`bootstrap config show`: the settings every command takes, and where each came from."""

from __future__ import annotations

import argparse

from bootstrap.cli.common import add_store_options, print_json
from bootstrap.config import SETTINGS, config_path, effective_settings


def register(commands: argparse._SubParsersAction) -> None:
    text = (
        "show the effective settings (store, store-dir, max-jobs, cores, substituters, "
        "trusted-public-keys, builders) and where each came from: a flag, an environment "
        "variable, the config file (~/.config/bootstrap/config.toml, or $BOOTSTRAP_CONFIG) or "
        "the default"
    )
    parser = commands.add_parser("config", help="show the effective settings", description=text)
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help=text, description=text)
    add_store_options(show)
    what = "as a command given this flag would take it"
    show.add_argument("-j", "--max-jobs", type=_count, metavar="N", help=what)
    show.add_argument("--cores", type=_count, metavar="N", help=what)
    for flag in ("--substituters", "--trusted-public-keys"):
        show.add_argument(flag, action="append", metavar="LIST", help=what)
    show.add_argument("--builders", metavar="SPEC", help=what)
    show.add_argument("--json", action="store_true", help="print the settings as JSON")
    show.set_defaults(func=run_show)


def run_show(args: argparse.Namespace) -> int:
    flags = {key.key: getattr(args, key.key.replace("-", "_")) for key in SETTINGS}
    settings = effective_settings(flags)
    if args.json:
        print_json(
            {
                "configFile": str(config_path()),
                "settings": {s.key: {"value": s.value, "origin": s.origin} for s in settings},
            }
        )
        return 0
    width = max(len(s.key) for s in settings)
    print(f"config file: {config_path()}")
    for setting in settings:
        print(f"{setting.key:<{width}}  {_shown(setting.value)}  ({setting.origin})")
    return 0


def _shown(value: object) -> str:
    if isinstance(value, list):
        return " ".join(value) if value else "(none)"
    if isinstance(value, str):
        return " ; ".join(value.split("\n")) if value.strip() else "(none)"
    return str(value)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(text)
