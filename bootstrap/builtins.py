"""Builders that run inside bootstrap instead of a sandbox: downloads, the seed among them.

They are the only builders that touch the network, and only for fixed outputs, whose content
is checked against the declared hash before it is registered. There is one, named as Nix's
and taking Nix 2.8's settings, so real Nix builds these derivations too:

- `builtin:fetchurl`: env `url` (Nix's) and `urls` (ours: every URL to try, mirrors
  included; `url` when absent); the output is the downloaded file (mode 0755 if `executable`
  is `1`).
- with `unpack = "1"` and `outputHashMode = "recursive"`, the downloaded file is a NAR and the
  output is the tree it holds: the seed enters the store this way. Its `url` is
  `file://` + SEED_NAR_DIR + `/<NAR sha256 hex>`, a directory real Nix's sandbox must be given
  (`extra-sandbox-paths`, docs/seed.md); we take the NAR from the download cache (its key is
  that same hash), else the seed archive (ours: `archiveHash`, `archiveUrls`, `stripTop`,
  which Nix ignores), unpacked safely.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bootstrap.derivation import Derivation
from bootstrap.errors import BootstrapError
from bootstrap.fetch import Fetcher
from bootstrap.hashing import Hash

FETCHURL = "builtin:fetchurl"
BUILTINS = (FETCHURL,)
# where real Nix's sandbox finds seed NARs, each named by its sha256 (the seed tree's NAR hash)
SEED_NAR_DIR = "/bootstrap/seeds"


def is_seed(drv: Derivation) -> bool:
    """Whether `drv` unpacks a NAR into the store (the seed)."""
    return drv.builder == FETCHURL and drv.env.get("unpack") == "1"


def run_builtin(drv: Derivation, out: Path, fetcher: Fetcher) -> None:
    """Create the output of builtin derivation `drv` at the physical path `out`."""
    if drv.builder != FETCHURL:
        raise BootstrapError(f"derivation {drv.name}: unknown builtin {drv.builder!r}")
    urls = drv.env.get("urls", "").split() or drv.env.get("url", "").split()
    expected = drv.outputs["out"].fixed_hash()
    if is_seed(drv):
        _unpack_seed(drv, out, fetcher, urls, expected)
        return
    if not urls:
        raise BootstrapError(f"derivation {drv.name}: builtin:fetchurl needs env 'url'")
    shutil.copyfile(fetcher.download(urls, expected, name=drv.name), out)
    if drv.env.get("executable") == "1":
        out.chmod(0o755)


def _unpack_seed(drv: Derivation, out: Path, fetcher: Fetcher, urls: list, expected: Hash) -> None:
    if drv.env.get("outputHashMode") != "recursive" or expected.algo != "sha256":
        raise BootstrapError(
            f"derivation {drv.name}: builtin:fetchurl with unpack needs a recursive sha256 output"
        )
    nar = fetcher.cached(expected, drv.name)
    if nar is None and drv.env.get("archiveHash"):
        from bootstrap.unpack import unpack  # archive modules load only when unpacking

        archive_hash = seed_archive_hash(drv)
        archive_urls = drv.env.get("archiveUrls", "").split()
        archive = fetcher.cached(archive_hash, drv.name) or (
            fetcher.download(archive_urls, archive_hash, drv.name) if archive_urls else None
        )
        if archive is not None:
            unpack(archive, out, strip_top=drv.env.get("stripTop") == "1")
            return
    from bootstrap.nar import restore

    with open(nar or fetcher.download(urls, expected, name=drv.name), "rb") as stream:
        restore(stream, out)


def seed_archive_hash(drv: Derivation) -> Hash:
    """The sha256 of the seed archive a seed derivation may be unpacked from (env
    `archiveHash`, ours)."""
    return Hash.parse(drv.env.get("archiveHash", ""), "sha256")
