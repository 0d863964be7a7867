"""Store queries as a user runs them (path-info -S, store query, why-depends, size,
diff-closures, drv show OUTPUT), on real stores, with real Nix 2.8 as the oracle."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bootstrap.store import Store
from bootstrap.store.query import package_version

from .conftest import requires_nix, run_cli
from .engine_fixtures import requires_busybox
from .test_cli_build import cli_env, make_stages
from .test_export import nix, nix_copy

STORE_DIR = "/nix/store"


@dataclass
class Graph:
    """lib-1.0 <- tool-2.1 <- app-3.0 (which also names lib directly, and links to tool)."""

    store: Store
    root: Path
    lib: str
    tool: str
    app: str

    def cli(self, *args, check: bool = True):
        common = ("--store", self.root, "--store-dir", STORE_DIR)
        return run_cli(*args, *common, check=check)


def add_tree(store: Store, tmp: Path, name: str, files: dict[str, str], refs=()) -> str:
    top = tmp / "src" / name
    for rel, text in files.items():
        file = top / rel
        file.parent.mkdir(parents=True, exist_ok=True)
        if text.startswith("->"):
            file.symlink_to(text[2:])
        else:
            file.write_bytes(b"\x00\x01 padding " * 4 + text.encode() + b"\n")
    return store.add_path(top, name, refs)


def make_graph(tmp: Path, version: str = "1.0", big: int = 0) -> Graph:
    root = tmp / "root"
    store = Store(root, STORE_DIR)
    lib = add_tree(store, tmp, f"lib-{version}", {"lib/libx.so": "x" * (100 + big)})
    tool = add_tree(store, tmp, "tool-2.1", {"bin/tool": f"#!{lib}/lib/libx.so"}, [lib])
    app = add_tree(
        store,
        tmp,
        "app-3.0",
        {"share/app.conf": f"lib={lib}/lib", "bin/tool": f"->{tool}/bin/tool"},
        [lib, tool],
    )
    return Graph(store, root, lib, tool, app)


@pytest.fixture
def graph(tmp_path) -> Graph:
    return make_graph(tmp_path)


def test_path_arguments_resolve_as_nix_resolves_them(graph, tmp_path):
    physical = os.fspath(graph.store.real_path(graph.app))
    (tmp_path / "result").symlink_to(physical)
    (tmp_path / "chain").symlink_to(tmp_path / "result")
    for given in (
        graph.app,
        f"{graph.app}/share/app.conf",
        physical,
        f"{physical}/share",
        tmp_path / "result",
        tmp_path / "chain",
        tmp_path / "result" / "share" / "app.conf",
    ):
        out = graph.cli("store", "path-info", given).stdout.decode()
        assert out.split("\t")[0] == graph.app, given
    bad = graph.cli("store", "path-info", tmp_path, check=False)
    assert bad.returncode == 1 and bad.stderr.count(b"\n") == 1
    assert f"{tmp_path}: not in the store".encode() in bad.stderr


def test_path_info_closure_size(graph):
    out = graph.cli("store", "path-info", "-S", graph.app).stdout.decode().split()
    sizes = [graph.store.query_info(p).nar_size for p in (graph.lib, graph.tool, graph.app)]
    assert int(out[-1]) == sum(sizes)
    info = json.loads(graph.cli("store", "path-info", "-S", "--json", "-r", graph.app).stdout)
    by_path = {entry["path"]: entry for entry in info}
    assert by_path[graph.lib]["closureSize"] == sizes[0]
    assert by_path[graph.tool]["closureSize"] == sizes[0] + sizes[1]


def test_query_references_referrers_requisites_tree(graph):
    def query(flag, path):
        return graph.cli("store", "query", flag, path).stdout.decode().splitlines()

    assert query("--references", graph.app) == [graph.lib, graph.tool]
    assert query("--referrers", graph.lib) == [graph.tool, graph.app]
    assert query("--requisites", graph.app) == [graph.lib, graph.tool, graph.app]
    assert query("--tree", graph.app) == [
        graph.app,
        f"├───{graph.lib}",
        f"└───{graph.tool}",
        f"    └───{graph.lib} [...]",
    ]


def test_why_depends_shows_the_chain_and_the_bytes(graph):
    out = graph.cli("why-depends", graph.app, graph.lib).stdout.decode().splitlines()
    hash_part = graph.lib.split("/")[-1][:32]
    assert out[0] == graph.app
    assert out[1] == f"└───share/app.conf: …dding .. padding lib={graph.lib}/lib.…"
    assert out[2] == f"    → {graph.lib}" and len(out) == 3
    every = graph.cli("why-depends", "--all", graph.app, graph.lib).stdout.decode()
    assert f"└───bin/tool -> {graph.tool}/bin/tool\n    → {graph.tool}\n" in every
    assert f"    └───bin/tool: …padding .. padding #!/nix/store/{hash_part}-lib-1.0/" in every
    assert every.count(f"→ {graph.lib}") == 2
    none = graph.cli("why-depends", graph.lib, graph.app, check=False)
    assert none.returncode == 1 and b"does not depend on" in none.stderr


def test_size_lists_each_path_own_and_closure_size(graph):
    out = graph.cli("size", graph.app).stdout.decode().splitlines()
    assert out[0].split() == ["store", "item", "total", "self"]
    assert [line.split()[0] for line in out[1:4]] == [graph.app, graph.tool, graph.lib]
    assert out[-1].startswith("total: ")


def test_package_names_split_as_nix_splits_them():
    assert package_version("hello-2.10") == ("hello", "2.10")
    assert package_version("gcc-12.2.0-lib") == ("gcc", "12.2.0")
    assert package_version("python3.11-foo-bar-1.0") == ("python3.11-foo-bar", "1.0")
    assert package_version("toolchain") == ("toolchain", "")


def test_diff_closures_by_package(tmp_path):
    graph = make_graph(tmp_path)
    new_app = make_graph_in(graph.store, tmp_path / "again", version="1.1", big=20000)
    out = graph.cli("diff-closures", graph.app, new_app).stdout.decode().splitlines()
    assert out == ["lib: 1.0 → 1.1, +19.5 KiB"]
    back = graph.cli("diff-closures", new_app, graph.app).stdout.decode().splitlines()
    assert back == ["lib: 1.1 → 1.0, -19.5 KiB"]


def make_graph_in(store: Store, tmp: Path, version: str, big: int) -> str:
    lib = add_tree(store, tmp, f"lib-{version}", {"lib/libx.so": "x" * (100 + big)})
    tool = add_tree(store, tmp, "tool-2.1", {"bin/tool": f"#!{lib}/lib/libx.so"}, [lib])
    return add_tree(
        store,
        tmp,
        "app-3.0",
        {"share/app.conf": f"lib={lib}/lib", "bin/tool": f"->{tool}/bin/tool"},
        [lib, tool],
    )


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def nix_on(dest: Path, home: Path):
    """Run `nix CMD ARGS` or `nix-store ARGS` on the chroot store at `dest`; colours removed."""

    def run(*args: str) -> str:
        if args[0] == "nix-store":
            command = ("nix-store", "--store", str(dest), *args[1:])
        else:
            new = ("--extra-experimental-features", "nix-command", "--store", f"local?root={dest}")
            command = ("nix", args[0], *new, *args[1:])
        return ANSI.sub("", nix(*command, home=home))

    return run


@requires_nix
def test_answers_match_nix(tmp_path):
    """The same paths copied into a Nix 2.8 chroot store: path-info -S, nix-store --query,
    why-depends --precise and diff-closures answer as we do (colours aside)."""
    graph = make_graph(tmp_path)
    new_app = make_graph_in(graph.store, tmp_path / "again", version="1.1", big=20000)
    for path in (graph.app, new_app):
        graph.cli("export", path, "--to", tmp_path / "cache", "--compression", "none",
                  "--no-drvs", "--no-logs")  # fmt: skip
    dest = tmp_path / "nix"
    nix_copy(tmp_path / "cache", dest, [graph.app, new_app])

    real_nix = nix_on(dest, tmp_path / "nix-home")

    def ours(*args: str) -> str:
        return graph.cli(*args).stdout.decode()

    theirs = json.loads(real_nix("path-info", "--json", "-S", "-r", graph.app))
    mine = {
        e["path"]: e
        for e in json.loads(ours("store", "path-info", "--json", "-S", "-r", graph.app))
    }
    assert len(theirs) == len(mine) == 3
    for entry in theirs:
        for field in ("narHash", "narSize", "references", "ca", "closureSize"):
            assert mine[entry["path"]][field] == entry[field], field
    for flag, path in (("--references", graph.app), ("--referrers", graph.lib),
                       ("--requisites", graph.app), ("--tree", graph.app)):  # fmt: skip
        assert ours("store", "query", flag, path) == real_nix("nix-store", "--query", flag, path)
    for extra in ((), ("--all",)):
        assert ours("why-depends", *extra, graph.app, graph.lib) == real_nix(
            "why-depends", "--precise", *extra, graph.app, graph.lib
        )
    assert ours("diff-closures", graph.app, new_app) == real_nix(
        "store", "diff-closures", graph.app, new_app
    )


@requires_busybox
def test_a_built_target_through_its_result_link(tmp_path):
    """The small real target of test_cli_build: `result` links, outputs and targets name
    paths as a user types them; drv show OUTPUT shows the derivation that built it."""
    stages = make_stages(tmp_path)
    env = cli_env(tmp_path)
    result = tmp_path / "result"
    run_cli("run", "--stages", stages, "--out-link", result, env=env)
    store = Store(tmp_path / "root")
    greet = store.to_store_path(os.fspath(result))
    assert os.readlink(result) == os.fspath(store.real_path(greet))
    hello = next(p for p in store.all_paths() if p.endswith("-hello-1.0"))
    seed = next(p for p in store.all_paths() if p.endswith("-test-seed"))

    shown = json.loads(run_cli("drv", "show", result, env=env).stdout)
    assert list(shown) == [store.query_info(greet).deriver]
    assert shown[store.query_info(greet).deriver]["outputs"]["out"]["path"] == greet

    why = run_cli("why-depends", f"{store.real_path(hello)}/bin/hello", seed, env=env)
    lines = why.stdout.decode().splitlines()
    assert lines[0] == hello and lines[-1] == f"    → {seed}"
    assert lines[1].startswith("└───bin/hello: …") and f"{seed}/bin/sh" in lines[1]

    sized = run_cli("size", "x86_64-linux", "--stages", stages, env=env).stdout.decode()
    assert {hello, greet, seed} <= {line.split()[0] for line in sized.splitlines()[1:-1]}
    assert run_cli("size", result, env=env).stdout.decode().splitlines()[1].split()[0] == greet
    in_cwd = subprocess.run(
        [sys.executable, "-m", "bootstrap", "size", "result"], cwd=tmp_path, env=env,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert in_cwd.stdout.splitlines()[1].split()[0] == greet


def test_drv_show_of_a_path_without_deriver_is_one_line(graph):
    result = graph.cli("drv", "show", graph.app, check=False)
    assert result.returncode == 1 and result.stderr.count(b"\n") == 1
    assert f"{graph.app}: expected a .drv or an output with a deriver".encode() in result.stderr


@requires_nix
@requires_busybox
def test_built_paths_answer_as_nix_answers(tmp_path):
    """Real built outputs (a target built under /nix/store, exported, `nix copy`d into a
    chroot store): path-info -S -r JSON with derivers, the tree and why-depends as Nix's."""
    stages = make_stages(tmp_path)
    env = {**cli_env(tmp_path), "BOOTSTRAP_STORE_DIR": STORE_DIR}
    run_cli("run", "--stages", stages, "--no-out-link", env=env)
    store = Store(tmp_path / "root", STORE_DIR)
    hello = next(p for p in store.all_paths() if p.endswith("-hello-1.0"))
    seed = next(p for p in store.all_paths() if p.endswith("-test-seed"))
    run_cli("export", hello, "--to", tmp_path / "cache", "--compression", "none",
            "--no-drvs", "--no-logs", env=env)  # fmt: skip
    dest = tmp_path / "nix"
    nix_copy(tmp_path / "cache", dest, [hello])
    real_nix = nix_on(dest, tmp_path / "nix-home")

    def ours(*args: str) -> str:
        return run_cli(*args, env=env).stdout.decode()

    theirs = json.loads(real_nix("path-info", "--json", "-S", "-r", hello))
    mine = {
        e["path"]: e for e in json.loads(ours("store", "path-info", "--json", "-S", "-r", hello))
    }
    assert len(theirs) == len(mine) >= 2
    for entry in theirs:
        for field in ("narHash", "narSize", "references", "closureSize", "deriver"):
            assert mine[entry["path"]][field] == entry.get(field), field
    for flag in ("--tree", "--requisites"):
        assert ours("store", "query", flag, hello) == real_nix("nix-store", "--query", flag, hello)
    for extra in ((), ("--all",)):
        assert ours("why-depends", *extra, hello, seed) == real_nix(
            "why-depends", "--precise", *extra, hello, seed
        )
