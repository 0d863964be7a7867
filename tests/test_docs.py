"""Docs that come from code match it: the stage table in docs/stages.md is the recipes'."""

from __future__ import annotations

from pathlib import Path

from bootstrap.recipe import Recipes, Seed, resolve_source
from bootstrap.stage_table import BEGIN_MARKER, END_MARKER, replace_table, stage_rows, stage_table

STAGES_DOC = Path(__file__).resolve().parent.parent / "docs" / "stages.md"


def test_committed_stage_table_is_the_recipes_own() -> None:
    document = STAGES_DOC.read_text()
    expected = replace_table(document, stage_table(Recipes(), "x86_64-linux"))
    stale = "docs/stages.md's stage table is stale: run .venv/bin/python scripts/gen-docs"
    assert document == expected, stale


def test_every_package_has_one_row_naming_its_inputs_and_sources() -> None:
    stages = Recipes().stages("x86_64-linux")
    rows = stage_rows(stages)
    packages = [p for stage in stages for p in stage.packages]
    assert len(rows) == len(packages)
    for row, package in zip(rows, packages, strict=True):
        if isinstance(package, Seed):
            assert row.built_by == ""
            continue
        assert f"builders/{package.builder}" in row.sources
        for source in package.sources:
            assert resolve_source(source).name in row.sources
        assert len(row.built_by.split(", ")) == len(package.built_with)


def test_same_named_packages_are_told_apart_by_stage() -> None:
    rows = stage_rows(Recipes().stages("x86_64-linux"))
    gcc12 = [row.package for row in rows if row.package.startswith("gcc 12.2.0")]
    assert gcc12 == ["gcc 12.2.0 (stage4)", "gcc 12.2.0 (stage6)"]
    llvm = next(row for row in rows if row.package == "llvm 15.0.6")
    assert llvm.settings == "optimize `-O2` (fast: `-O1`); targets `all` (fast: `X86`)"


def test_replace_table_keeps_the_text_around_it() -> None:
    document = f"before\n{BEGIN_MARKER}\nold\n{END_MARKER}\nafter\n"
    assert replace_table(document, f"{BEGIN_MARKER}\nnew\n{END_MARKER}\n") == (
        f"before\n{BEGIN_MARKER}\nnew\n{END_MARKER}\nafter\n"
    )
