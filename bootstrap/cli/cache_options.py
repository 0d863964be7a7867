"""The substitution flags every command that realises paths takes, and their resolution."""

from __future__ import annotations

import argparse

from bootstrap.config import SUBSTITUTERS, TRUSTED_PUBLIC_KEYS, list_setting
from bootstrap.signing import trusted_keys
from bootstrap.substitute import SubstituteOptions


def add_substituter_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--substituters",
        action="append",
        metavar="URLS",
        help="binary caches (file://, http(s)://; several separated by spaces, or the flag "
        "repeated) asked for a path before it is built, in order (default: "
        "$BOOTSTRAP_SUBSTITUTERS, then 'substituters' in the config file)",
    )
    parser.add_argument(
        "--trusted-public-keys",
        action="append",
        metavar="KEYS",
        help="NAME:BASE64 public keys (several separated by spaces, or the flag repeated) "
        "whose signature a substituted path must carry (default: "
        "$BOOTSTRAP_TRUSTED_PUBLIC_KEYS, then 'trusted-public-keys' in the config file)",
    )
    parser.add_argument(
        "--no-check-sigs",
        action="store_true",
        help="accept unsigned paths from substituters (hashes are still checked)",
    )


def substitute_options(args: argparse.Namespace) -> SubstituteOptions:
    urls = list_setting(SUBSTITUTERS, args.substituters)
    keys = list_setting(TRUSTED_PUBLIC_KEYS, args.trusted_public_keys)
    trusted = trusted_keys(keys.values, origin=f"trusted public key (from {keys.origin})")
    return SubstituteOptions(urls.values, trusted, check_signatures=not args.no_check_sigs)
