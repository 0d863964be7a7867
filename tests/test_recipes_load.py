"""Loading the chain's recipes reads Python files only: the seed manifest, the builder scripts
and the patches are read when the recipes are evaluated (a real interpreter, watched by an
audit hook for every file it opens)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

WATCH = """
import json, os, sys
opened = []


def watch(event, args):
    if event == "open" and isinstance(args[0], (str, bytes)):
        opened.append(os.fsdecode(args[0]))


sys.addaudithook(watch)
from bootstrap.recipe import Recipes, plan_target
recipes = Recipes()
recipes.stages("x86_64-linux")
# what loading read besides Python: anything under stages/ (builder scripts) or a JSON manifest
loaded = [
    path for path in opened
    if ("/stages" in path and not path.endswith((".py", ".pyc"))) or path.endswith(".json")
]
opened.clear()
plan_target("/bootstrap/store", "x86_64-linux", recipes, until="stage1")
print(json.dumps({"loaded": loaded, "evaluated": opened}))
"""


def test_loading_the_recipes_reads_no_manifest_and_evaluating_them_does() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", WATCH], cwd=REPO, capture_output=True, text=True, check=True
    )
    files = json.loads(ran.stdout)
    assert files["loaded"] == []
    assert str(REPO / "seeds" / "x86_64-linux.json") in files["evaluated"]
    assert str(REPO / "stages" / "builders" / "prelude.sh") in files["evaluated"]
