"""Random derivation graphs instantiated by real Nix, compared byte for byte with ours.

Each example is a JSON spec: derivations with random names, systems, args, env, multiple
outputs, fixed outputs (flat or recursive, any algorithm, hex/nix32/SRI) and references to
earlier derivations' outputs and to `builtins.toFile` sources. One generic Nix expression turns
the spec into derivations; `nix-instantiate` writes them into a throwaway chroot store. We build
the same graph from the spec ourselves and require identical `.drv` bytes and paths, then
recompute Nix's own files and compare `nix show-derivation` JSON with ours.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bootstrap.derivation import (
    Derivation,
    DerivationHasher,
    drv_path,
    name_from_drv_file,
    parse_aterm,
    show_json,
    to_aterm,
)
from bootstrap.hashing import DIGEST_SIZES, Hash
from bootstrap.storepath import text_path

from .conftest import run_cli
from .test_derivation import GRAPH_PATHS, nix_like

pytestmark = pytest.mark.skipif(
    not (shutil.which("nix-instantiate") and shutil.which("nix")),
    reason="nix-bin (nix-instantiate) is not installed",
)

GENERIC_NIX = r"""
let
  spec = builtins.fromJSON (builtins.readFile ./spec.json);
  part = p:
    if p ? s then p.s
    else if p ? drv then "${builtins.getAttr p.out (builtins.elemAt drvs p.drv)}"
    else builtins.toFile p.file (builtins.getAttr p.file spec.files);
  str = parts: builtins.concatStringsSep "" (map part parts);
  optional = cond: attrs: if cond then attrs else { };
  fixedAttrs = f:
    { outputHash = f.hash; }
    // optional (f.algo != null) { outputHashAlgo = f.algo; }
    // optional (f.mode != null) { outputHashMode = f.mode; };
  mk = d: derivation (
    { inherit (d) name system; builder = str d.builder; args = map str d.args; }
    // builtins.mapAttrs (_: str) d.attrs
    // optional (d.outputs != null) { inherit (d) outputs; }
    // optional (d.fixed != null) (fixedAttrs d.fixed));
  drvs = map mk spec.drvs;
in drvs
"""

OUTPUT_POOL = ["out", "dev", "lib", "bin", "doc", "man-1"]
RESERVED = {"name", "system", "builder", "args", "outputs", "outputHash", "outputHashAlgo"}
RESERVED |= {"outputHashMode", *OUTPUT_POOL}

nix_text = st.text(
    alphabet=st.characters(exclude_characters="\0", exclude_categories=("Cs",)), max_size=8
)
tricky_text = st.text(alphabet=st.sampled_from('"\\\n\r\t${}é€😀 \x01\x7f'), max_size=6)
texts = st.one_of(nix_text, tricky_text)
attr_names = st.one_of(nix_text, tricky_text).filter(
    lambda k: k and k not in RESERVED and not k.startswith("__")
)
store_names = st.text(alphabet="abcXYZ0189+-._?=", min_size=1, max_size=12).filter(
    lambda n: not n.startswith(".") and not n.endswith(".drv")
)
systems = st.text(alphabet="abx86_64-linux", min_size=1, max_size=12)


def parts(draw, index: int, outputs_of: list[list[str]], files: list[str]) -> list[dict]:
    """A string as a list of literal pieces and references to earlier drvs or to files."""
    kinds = ["s"] + (["drv"] if index else []) + (["file"] if files else [])
    result = []
    for kind in draw(st.lists(st.sampled_from(kinds), max_size=3)):
        if kind == "s":
            result.append({"s": draw(texts)})
        elif kind == "drv":
            j = draw(st.integers(0, index - 1))
            result.append({"drv": j, "out": draw(st.sampled_from(outputs_of[j]))})
        else:
            result.append({"file": draw(st.sampled_from(files))})
    return result


def fixed_spec(draw) -> dict:
    algo = draw(st.sampled_from(sorted(DIGEST_SIZES)))
    size = DIGEST_SIZES[algo]
    hash_ = Hash(algo, draw(st.binary(min_size=size, max_size=size)))
    form = draw(st.sampled_from(["hex", "nix32", "sri"]))
    text = {"hex": hash_.hex, "nix32": hash_.nix32, "sri": hash_.sri}[form]
    with_algo = form != "sri" or draw(st.booleans())
    mode = draw(st.sampled_from([None, "flat", "recursive"]))
    return {"hash": text, "algo": algo if with_algo else None, "mode": mode}


@st.composite
def graph_specs(draw) -> dict:
    files = draw(st.dictionaries(store_names, nix_text, max_size=2))
    drvs: list[dict] = []
    outputs_of: list[list[str]] = []
    for index in range(draw(st.integers(1, 6))):
        fixed = fixed_spec(draw) if draw(st.booleans()) and draw(st.booleans()) else None
        outputs = None
        if fixed is None and draw(st.booleans()):
            outputs = draw(
                st.lists(st.sampled_from(OUTPUT_POOL), min_size=1, max_size=4, unique=True)
            )
        names = draw(st.lists(attr_names, max_size=4, unique=True))
        drvs.append({
            "name": draw(store_names),
            "system": draw(systems),
            "builder": [{"s": "/"}, *parts(draw, index, outputs_of, list(files))],
            "args": [parts(draw, index, outputs_of, list(files))
                     for _ in range(draw(st.integers(0, 3)))],
            "attrs": {k: parts(draw, index, outputs_of, list(files)) for k in names},
            "outputs": outputs,
            "fixed": fixed,
        })  # fmt: skip
        outputs_of.append(outputs or ["out"])
    return {"files": files, "drvs": drvs}


# -- our side: the same graph built from the spec ----------------------------------------------


def build_ours(spec: dict, store_dir: str) -> dict[str, Derivation]:
    """drv path -> derivation, made with our library only, following Nix's `derivation`."""
    sources = {
        name: text_path(content.encode(), name, store_dir)
        for name, content in spec["files"].items()
    }
    made: list[Derivation] = []
    by_path: dict[str, Derivation] = {}
    for d in spec["drvs"]:
        input_drvs: dict[str, set[str]] = defaultdict(set)
        input_srcs: set[str] = set()

        def render(pieces: list[dict], drvs=input_drvs, srcs=input_srcs) -> str:
            text = []
            for p in pieces:
                if "s" in p:
                    text.append(p["s"])
                elif "drv" in p:
                    dep = made[p["drv"]]
                    drvs[drv_path(dep, store_dir)].add(p["out"])
                    text.append(dep.outputs[p["out"]].path)
                else:
                    srcs.add(sources[p["file"]])
                    text.append(sources[p["file"]])
            return "".join(text)

        builder = render(d["builder"])
        args = [render(a) for a in d["args"]]
        attrs = {key: render(value) for key, value in d["attrs"].items()}
        fixed = None
        if f := d["fixed"]:
            attrs["outputHash"] = f["hash"]
            attrs.update({"outputHashAlgo": f["algo"]} if f["algo"] else {})
            attrs.update({"outputHashMode": f["mode"]} if f["mode"] else {})
            fixed = (Hash.parse(f["hash"], f["algo"]), f["mode"] == "recursive")
        drv = nix_like(
            d["name"], builder, system=d["system"], args=args, attrs=attrs,
            outputs=d["outputs"], fixed=fixed, input_drvs=input_drvs, input_srcs=input_srcs,
        )  # fmt: skip
        drv = DerivationHasher(by_path.__getitem__, store_dir).fill_outputs(drv)
        made.append(drv)
        by_path[drv_path(drv, store_dir)] = drv
    return by_path


# -- Nix's side --------------------------------------------------------------------------------


def nix_env(store_dir: str) -> dict[str, str]:
    return {**os.environ, "NIX_STORE_DIR": store_dir}


def instantiate(spec: dict, work: Path, store_dir: str) -> dict[str, bytes]:
    """Run nix-instantiate into a chroot store under `work`; return drv path -> file bytes."""
    (work / "spec.json").write_text(json.dumps(spec))
    (work / "gen.nix").write_text(GENERIC_NIX)
    root = work / "root"
    subprocess.run(
        ["nix-instantiate", "--store", str(root), str(work / "gen.nix")],
        check=True, capture_output=True, env=nix_env(store_dir),
    )  # fmt: skip
    physical = root / "nix" / "store"  # a chroot store keeps files here whatever the store dir
    return {f"{store_dir}/{f.name}": f.read_bytes() for f in physical.glob("*.drv")}


def nix_show(root: Path, paths: list[str], store_dir: str) -> bytes:
    result = subprocess.run(
        ["nix", "--extra-experimental-features", "nix-command", "show-derivation",
         "--store", str(root), *paths],
        check=True, capture_output=True, env=nix_env(store_dir),
    )  # fmt: skip
    return result.stdout


def assert_recomputes(nix_drvs: dict[str, bytes], store_dir: str) -> dict[str, Derivation]:
    """Parse Nix's files, print them back, recompute their drv and output paths."""
    parsed = {path: parse_aterm(data, name_from_drv_file(path), path) for path, data in
              nix_drvs.items()}  # fmt: skip
    for path, drv in parsed.items():
        assert to_aterm(drv) == nix_drvs[path]
        assert drv_path(drv, store_dir) == path
        assert DerivationHasher(parsed.__getitem__, store_dir).fill_outputs(drv) == drv
    return parsed


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph_specs(), st.sampled_from(["/nix/store", "/bootstrap/store"]))
def test_random_graphs_equal_nix(spec, store_dir):
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        nix_drvs = instantiate(spec, work, store_dir)
        ours = build_ours(spec, store_dir)
        assert sorted(ours) == sorted(nix_drvs)
        for path, drv in ours.items():
            assert to_aterm(drv) == nix_drvs[path], path
        parsed = assert_recomputes(nix_drvs, store_dir)
        expected = nix_show(work / "root", sorted(parsed), store_dir)
        assert show_json(parsed) == expected


# -- fixed cases: the recorded vectors and the CLI on Nix's own files ------------------------

VECTOR_SPEC = {
    "files": {"a.txt": "hello\n"},
    "drvs": [
        {"name": "fo", "system": "x86_64-linux", "builder": [{"s": "/bin/sh"}], "args": [],
         "attrs": {}, "outputs": None,
         "fixed": {"hash": "f3f3c4763037e059b4d834eaf68595bbc02ba19f6d2a500dce06d124e2cd99bb",
                   "algo": "sha256", "mode": "recursive"}},
        {"name": "fo2", "system": "x86_64-linux", "builder": [{"s": "/bin/sh"}], "args": [],
         "attrs": {}, "outputs": None,
         "fixed": {"hash": "sha1-AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "algo": None, "mode": None}},
        {"name": "twin", "system": "x86_64-linux", "builder": [{"s": "/bin/a"}], "args": [],
         "attrs": {}, "outputs": None,
         "fixed": {"hash": "0" * 64, "algo": "sha256", "mode": None}},
        {"name": "twin", "system": "x86_64-linux", "builder": [{"s": "/bin/b"}], "args": [],
         "attrs": {}, "outputs": None,
         "fixed": {"hash": "0" * 64, "algo": "sha256", "mode": None}},
        {"name": "m", "system": "x86_64-linux", "builder": [{"s": "/bin/sh"}],
         "args": [[{"s": "-c"}], [{"s": 'a"b\\c\nd\te\r'}], [{"s": "ü"}]],
         "attrs": {"src": [{"file": "a.txt"}], "x": [{"drv": 0, "out": "out"}]},
         "outputs": ["out", "dev", "lib"], "fixed": None},
        {"name": "top", "system": "x86_64-linux",
         "builder": [{"drv": 4, "out": "dev"}, {"s": "/bin/sh"}], "args": [],
         "attrs": {"y": [{"drv": 4, "out": "lib"}, {"s": " "}, {"drv": 1, "out": "out"},
                         {"s": " "}, {"drv": 2, "out": "out"}, {"s": " "},
                         {"drv": 3, "out": "out"}]},
         "outputs": None, "fixed": None},
    ],
}  # fmt: skip


def test_recorded_vectors_are_what_nix_writes(tmp_path):
    nix_drvs = instantiate(VECTOR_SPEC, tmp_path, "/nix/store")
    assert sorted(nix_drvs) == sorted(f"/nix/store/{base}" for base, _ in GRAPH_PATHS.values())
    assert_recomputes(nix_drvs, "/nix/store")


def test_cli_show_and_import_on_nix_files(tmp_path, nix_store):
    nix_drvs = instantiate(VECTOR_SPEC, tmp_path, "/nix/store")
    physical = tmp_path / "root" / "nix" / "store"
    files = [str(physical / p.rsplit("/", 1)[1]) for p in sorted(nix_drvs)]
    shown = run_cli("drv", "show", "--store-dir", "/nix/store", *files).stdout
    assert shown == nix_show(tmp_path / "root", sorted(nix_drvs), "/nix/store")

    source = nix_store.add_text("a.txt", b"hello\n")
    assert (physical / source.rsplit("/", 1)[1]).is_file()  # Nix made the same source path
    order = [GRAPH_PATHS[k][0] for k in ("fo", "fo2", "twinA", "twinB", "m", "top")]
    args = ["--store", str(nix_store.root), "--store-dir", "/nix/store"]
    out = run_cli("drv", "import", *args, *(str(physical / base) for base in order))
    lines = out.stdout.decode().splitlines()
    assert [line.split()[0] for line in lines] == [f"/nix/store/{base}" for base in order]
    assert lines[-1].split()[1:] == ["out=/nix/store/" + GRAPH_PATHS["top"][1]["out"]]
    for base in order:
        stored = nix_store.real_path(f"/nix/store/{base}").read_bytes()
        assert stored == nix_drvs[f"/nix/store/{base}"]
