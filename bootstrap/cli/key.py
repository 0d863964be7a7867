"""`bootstrap key generate|public`: Ed25519 signing keys in Nix's `NAME:BASE64` forms."""

from __future__ import annotations

import argparse
from pathlib import Path

from bootstrap.signing import SecretKey, read_secret_key, write_key_file


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "key",
        help="make signing keys for binary caches (Nix's format)",
        description="Signing keys, interchangeable with `nix key generate-secret`'s.",
    )
    actions = parser.add_subparsers(dest="key_action", metavar="ACTION", required=True)
    generate = actions.add_parser(
        "generate",
        help="write a new secret key (mode 0600) and its public key",
        description="Write a new Ed25519 key pair: SECRET holds NAME:BASE64 of 64 bytes (seed "
        "then public key), PUBLIC holds NAME:BASE64 of 32 bytes. Existing files are never "
        "overwritten. Give PUBLIC to whoever trusts your cache (--trusted-public-keys).",
    )
    generate.add_argument("--name", required=True, help="key name, e.g. cache.example.org-1")
    generate.add_argument("--secret", required=True, type=Path, metavar="FILE")
    generate.add_argument("--public", required=True, type=Path, metavar="FILE")
    generate.set_defaults(func=run_generate)
    public = actions.add_parser(
        "public",
        help="print the public key of a secret key file (as `nix key convert-secret-to-public`)",
    )
    public.add_argument("secret", type=Path, metavar="SECRET_FILE")
    public.set_defaults(func=run_public)


def run_generate(args: argparse.Namespace) -> int:
    secret = SecretKey.generate(args.name)
    write_key_file(args.secret, secret, secret=True)
    try:
        write_key_file(args.public, secret.public_key(), secret=False)
    except BaseException:
        args.secret.unlink()  # no half-made pair: a secret without its public key
        raise
    print(secret.public_key())
    return 0


def run_public(args: argparse.Namespace) -> int:
    print(read_secret_key(args.secret).public_key())
    return 0
