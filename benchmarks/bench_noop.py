"""No-op `bootstrap run` of a fully built chain against a no-op `nix-build`, whole-process.

    .venv/bin/python benchmarks/bench_noop.py [--count 200] [--repeat 10] [--profile FILE]

Both build the same chain of `--count` trivial derivations once (each runs `echo i > $out`
with Debian's static busybox and depends on the previous one: bench_engine.py's chain), ours
from a generated recipes directory (`run --stages DIR`), Nix 2.8 from a Nix expression into a
chroot store without a daemon. Then each is run again with everything valid, `--repeat` times
after one warm-up, and the best wall time and CPU time (user+sys of the process) of each are
printed with their ratio; ours runs with its bytecode cached, as an installed package does.
`--profile FILE` also writes a cProfile of one in-process no-op run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_substitute import measure

from tests.engine_fixtures import BUSYBOX, busybox_seed, make_recipes

BOOTSTRAP = str(Path(sys.executable).with_name("bootstrap"))
NIX = ["--option", "substituters", "", "--option", "build-users-group", ""]

STAGES = """\
from bootstrap.hashing import Hash
from bootstrap.recipe import Package, Seed, Stage

seed = Seed("test-seed", Hash.parse({archive!r}), Hash.parse({tree!r}), urls=({url!r},))
packages = []
previous = seed
for i in range({count}):
    previous = Package(
        f"step{{i}}", "1", "step.sh", inputs=(seed, previous) if i else (seed,),
        env={{"step": str(i)}},
    )
    packages.append(previous)
TARGETS = {{"x86_64-linux": [Stage("stage0", (seed,)), Stage("chain", tuple(packages))]}}
"""

NIX_EXPR = """\
let
  bb = builtins.storePath "{busybox}";
  mk = prev: i: derivation ({{
    name = "step${{toString i}}-1";
    system = "x86_64-linux";
    builder = "${{bb}}/bin/sh";
    args = [ "-c" "echo ${{toString i}} > $out" ];
  }} // (if prev == null then {{ }} else {{ inherit prev; }}));
in builtins.foldl' mk null (builtins.genList (i: i) {count})
"""


def ours_setup(tmp: Path, count: int) -> tuple[list[str], dict[str, str]]:
    seed, archive = busybox_seed(tmp)
    recipes = make_recipes(tmp / "r", {"step.sh": 'echo "$step" > $out\n'})
    (recipes.stages_dir / "__init__.py").write_text(
        STAGES.format(
            archive=str(seed.archive_hash),
            tree=str(seed.tree_hash),
            url=archive.as_uri(),
            count=count,
        )
    )
    env = {**os.environ, "BOOTSTRAP_CACHE_DIR": str(tmp / "cache"), "BOOTSTRAP_PROGRESS": "0"}
    # bytecode cached as an installed package has it (in the temporary directory)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    argv = [BOOTSTRAP, "run", "--stages", str(recipes.stages_dir), "--store", str(tmp / "root")]
    return [*argv, "--no-out-link"], env


def nix_setup(tmp: Path, count: int) -> list[str]:
    tree = tmp / "bb"
    (tree / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, tree / "bin" / "busybox")
    (tree / "bin" / "sh").symlink_to("busybox")
    store = str(tmp / "nix")
    added = subprocess.run(
        ["nix-store", "--store", store, *NIX, "--add", str(tree)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    expr = tmp / "chain.nix"
    expr.write_text(NIX_EXPR.format(busybox=added, count=count))
    return ["nix-build", "--store", store, *NIX, str(expr), "--no-out-link"]


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall and CPU seconds (user+sys) of one run."""
    wall, cpu, _ = measure(argv, env)
    return wall, cpu


def best(argv: list[str], repeat: int, env: dict[str, str] | None = None) -> tuple[float, float]:
    timed(argv, env)  # warm-up
    runs = [timed(argv, env) for _ in range(repeat)]
    return min(w for w, _ in runs), min(c for _, c in runs)


def profile(argv: list[str], env: dict[str, str], out: str) -> None:
    code = (
        "import cProfile; from bootstrap.cli import main; "
        f"cProfile.runctx('main(argv)', {{}}, {{'main': main, 'argv': {argv[1:]!r}}}, {out!r})"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of one no-op run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ours, env = ours_setup(tmp, args.count)
        nix = nix_setup(tmp, args.count)
        build_ours, build_nix = timed(ours, env), timed(nix)
        a_wall, a_cpu = best(ours, args.repeat, env)
        b_wall, b_cpu = best(nix, args.repeat)
        if args.profile:
            profile(ours, env, args.profile)
    print(f"chain of {args.count} derivations, first build: bootstrap {build_ours[0]:.2f} s, "
          f"nix-build {build_nix[0]:.2f} s (wall)")  # fmt: skip
    print(f"no-op bootstrap run : {a_wall * 1000:7.1f} ms wall {a_cpu * 1000:7.1f} ms CPU")
    print(f"no-op nix-build     : {b_wall * 1000:7.1f} ms wall {b_cpu * 1000:7.1f} ms CPU")
    print(f"ratio               : {a_wall / b_wall:7.2f}x wall {a_cpu / b_cpu:7.2f}x CPU")


if __name__ == "__main__":
    main()
