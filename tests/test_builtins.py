"""The seed's derivation is Nix's `builtin:fetchurl` unpacking a NAR: what it holds, and how
we build it (the NAR from the download cache, else the seed archive)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bootstrap.builtins import FETCHURL, SEED_NAR_DIR, is_seed, run_builtin
from bootstrap.errors import BootstrapError
from bootstrap.nar import dump, nar_hash
from bootstrap.recipe import Evaluator

from .engine_fixtures import busybox_seed, offline_fetcher, requires_busybox

pytestmark = requires_busybox


def _seed_drv(tmp_path):
    seed, archive = busybox_seed(tmp_path)
    evaluator = Evaluator("/bootstrap/store", "x86_64-linux")
    drv = evaluator.graph.derivations[evaluator.drv_path_of(seed)]
    return seed, archive, drv


def test_the_seed_derivation_has_nix_builtin_fetchurl_settings(tmp_path):
    seed, _, drv = _seed_drv(tmp_path)
    assert drv.builder == FETCHURL and is_seed(drv)
    env = drv.env
    assert env["url"] == f"file://{SEED_NAR_DIR}/{seed.tree_hash.hex}" and env["unpack"] == "1"
    assert (env["outputHashMode"], env["outputHashAlgo"]) == ("recursive", "sha256")
    assert env["outputHash"] == seed.tree_hash.hex and env["out"] == drv.outputs["out"].path


def test_the_seed_builds_from_its_nar_in_the_download_cache(tmp_path):
    seed, _, drv = _seed_drv(tmp_path)
    fetcher = offline_fetcher(tmp_path)
    unpacked = tmp_path / "from-archive"
    run_builtin(drv, unpacked, fetcher)  # the archive, from its file:// URL
    fetcher.cache_dir.mkdir(parents=True, exist_ok=True)
    with open(fetcher.cache_path(seed.tree_hash), "wb") as nar:
        dump(unpacked, nar)
    no_archive = replace(drv, env={**drv.env, "archiveHash": "sha256:" + "0" * 64})
    run_builtin(no_archive, tmp_path / "from-nar", fetcher)
    assert nar_hash(tmp_path / "from-nar")[0] == seed.tree_hash


def test_a_seed_with_neither_nar_nor_archive_fails_in_one_line(tmp_path):
    _, _, drv = _seed_drv(tmp_path)
    lost = replace(drv, env={**drv.env, "archiveUrls": "", "archiveHash": "sha256:" + "0" * 64})
    with pytest.raises(BootstrapError) as failure:
        run_builtin(lost, tmp_path / "out", offline_fetcher(tmp_path))
    assert f"{SEED_NAR_DIR}/" in str(failure.value) and "\n" not in str(failure.value)
