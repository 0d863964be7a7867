"""Engine overhead: a chain of N trivial derivations built by bootstrap vs plain shell scripts.

    .venv/bin/python benchmarks/bench_engine.py [--count 200] 2>/dev/null

Each derivation runs `echo i > $out` with Debian's static busybox (an explicit seed) and
depends on the previous one. bootstrap pays for evaluation, sandbox start, canonicalisation,
hashing, reference scanning and registration; the peer runs the same 200 commands as plain
`busybox sh -c` processes writing to plain files. Also measured: a no-op rerun of the fully
built graph (evaluation + the check that everything is valid).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bootstrap.build import BuildOptions
from bootstrap.recipe import Evaluator, Package
from bootstrap.scheduler import Scheduler
from bootstrap.store import Store
from tests.engine_fixtures import BUSYBOX, busybox_seed, make_recipes, offline_fetcher


def chain_graph(tmp: Path, store: Store, count: int):
    seed, _ = busybox_seed(tmp)  # reuses the archive and recipes made by an earlier call
    recipes = make_recipes(tmp / "r", {"step.sh": 'echo "$step" > $out\n'})
    previous = seed
    packages = []
    for i in range(count):
        previous = Package(
            f"step{i}",
            "1",
            "step.sh",
            inputs=(seed, previous) if i else (seed,),
            env={"step": str(i)},
        )
        packages.append(previous)
    return Evaluator(store.store_dir, "x86_64-linux", recipes).evaluate([packages[-1]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        store = Store(tmp / "root", "/bootstrap/store")
        scheduler = Scheduler(store, BuildOptions(fetcher=offline_fetcher(tmp)), progress=False)

        start = time.perf_counter()
        graph = chain_graph(tmp, store, args.count)
        summary = scheduler.realise(graph)
        ours = time.perf_counter() - start
        assert summary.ok and len(summary.built) == args.count + 1

        start = time.perf_counter()
        for i in range(args.count):
            subprocess.run([BUSYBOX, "sh", "-c", f'echo "{i}" > {tmp}/plain{i}'], check=True)
        plain = time.perf_counter() - start

        start = time.perf_counter()
        rerun = scheduler.realise(chain_graph(tmp, store, args.count))
        noop = time.perf_counter() - start
        assert not rerun.built

    each = 1e3 / args.count
    print(f"{args.count} derivations, bootstrap : {ours:7.2f} s ({ours * each:.1f} ms each)")
    print(f"{args.count} plain sh scripts    : {plain:7.2f} s ({plain * each:.1f} ms each)")
    print(f"ratio bootstrap/plain       : {ours / plain:7.1f}x")
    print(f"no-op rerun (evaluate+check): {noop:7.2f} s")


if __name__ == "__main__":
    main()
