"""Builders that run inside bootstrap instead of a sandbox: downloading and unpacking.

They are the only builders that touch the network, and only for fixed outputs, whose content
is checked against the declared hash before it is registered. Derivations name them as
`builder = "builtin:fetchurl"` (as Nix does) or `"builtin:unpack"`.

- `builtin:fetchurl`: env `urls` (space-separated); the output is the downloaded file.
- `builtin:unpack`: env `urls` and `archiveHash` (`sha256:...`); the archive is taken from the
  download cache by hash (where `bootstrap seed build` and `seed import` put it) or fetched
  from `urls`, unpacked safely, and its single top-level directory stripped if `stripTop` is
  `1`. The output is a recursive fixed output: the seed enters the store this way.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bootstrap.derivation import Derivation
from bootstrap.errors import BootstrapError
from bootstrap.fetch import Fetcher
from bootstrap.hashing import Hash

FETCHURL = "builtin:fetchurl"
UNPACK = "builtin:unpack"
BUILTINS = (FETCHURL, UNPACK)


def run_builtin(drv: Derivation, out: Path, fetcher: Fetcher) -> None:
    """Create the output of builtin derivation `drv` at the physical path `out`."""
    urls = drv.env.get("urls", "").split()
    if drv.builder == FETCHURL:
        if not urls:
            raise BootstrapError(f"derivation {drv.name}: builtin:fetchurl needs env 'urls'")
        expected = drv.outputs["out"].fixed_hash()
        shutil.copyfile(fetcher.download(urls, expected, name=drv.name), out)
        if drv.env.get("executable") == "1":
            out.chmod(0o755)
    elif drv.builder == UNPACK:
        from bootstrap.unpack import unpack  # archive modules load only when unpacking

        archive = fetcher.download(urls, unpack_archive_hash(drv), name=drv.name)
        unpack(archive, out, strip_top=drv.env.get("stripTop") == "1")
    else:
        raise BootstrapError(f"derivation {drv.name}: unknown builtin {drv.builder!r}")


def unpack_archive_hash(drv: Derivation) -> Hash:
    """The sha256 of the archive a `builtin:unpack` derivation unpacks (env `archiveHash`)."""
    return Hash.parse(drv.env.get("archiveHash", ""), "sha256")
