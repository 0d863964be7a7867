"""Derivations: ATerm round trips, output and drv paths against vectors Nix 2.8 produced, CLI."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bootstrap.derivation import (
    Derivation,
    DerivationHasher,
    Output,
    add_to_store,
    check_store_paths,
    drv_path,
    name_from_drv_file,
    parse_aterm,
    to_aterm,
    to_json,
)
from bootstrap.errors import BootstrapError
from bootstrap.hashing import Hash
from bootstrap.storepath import text_path

from .conftest import run_cli

NIX = "/nix/store"
SYSTEM = "x86_64-linux"


def nix_like(
    name: str,
    builder: str,
    *,
    system: str = SYSTEM,
    args: Iterable[str] = (),
    attrs: dict[str, str] | None = None,
    outputs: list[str] | None = None,
    fixed: tuple[Hash, bool] | None = None,
    input_drvs: dict[str, Iterable[str]] | None = None,
    input_srcs: Iterable[str] = (),
) -> Derivation:
    """A derivation with blank output paths, laid out as Nix's `derivation` builtin does.

    The env holds every attribute but `args`: name, system, builder, the `outputs` list joined
    by spaces when given, and the caller's attributes (including any outputHash* ones).
    """
    env = {"name": name, "system": system, "builder": builder, **(attrs or {})}
    if outputs is not None:
        env["outputs"] = " ".join(outputs)
    if fixed:
        hash_, recursive = fixed
        out = {"out": Output("", ("r:" if recursive else "") + hash_.algo, hash_.hex)}
    else:
        out = {output: Output() for output in outputs or ["out"]}
    return Derivation(
        name, out, dict(input_drvs or {}), tuple(input_srcs), system, builder, tuple(args), env
    )


def resolver_of(drvs: Iterable[Derivation], store_dir: str = NIX) -> Callable[[str], Derivation]:
    by_path = {drv_path(drv, store_dir): drv for drv in drvs}
    return by_path.__getitem__


def no_inputs(path: str) -> Derivation:
    raise AssertionError(f"unexpected input {path}")


# -- worked examples (Nix Pills) and vectors recorded from nix-instantiate 2.8 --------------


def test_pills_derivation_with_source_builder():
    myfile = "/nix/store/xv2iccirbrvklck36f1g7vldn5v58vck-myfile"
    drv = DerivationHasher(no_inputs, NIX).fill_outputs(
        nix_like("foo", myfile, input_srcs=[myfile])
    )
    assert drv.outputs["out"].path == "/nix/store/hs0yi5n5nw6micqhy8l1igkbhqdkzqa1-foo"
    assert drv.env["out"] == drv.outputs["out"].path
    assert drv_path(drv, NIX) == "/nix/store/y4h73bmrc9ii5bxg6i7ck6hsf5gqv8ck-foo.drv"


def test_pills_trivial_derivation_exact_bytes():
    drv = DerivationHasher(no_inputs, NIX).fill_outputs(nix_like("foo", "/bin/sh"))
    assert drv_path(drv, NIX) == "/nix/store/9d794zbx10n43fa6zaqf33pfymdrm4r2-foo.drv"
    assert to_aterm(drv) == (
        b'Derive([("out","/nix/store/xpcvxsx5sw4rbq666blz6sxqlmsqphmr-foo","","")],[],[],'
        b'"x86_64-linux","/bin/sh",[],[("builder","/bin/sh"),("name","foo"),'
        b'("out","/nix/store/xpcvxsx5sw4rbq666blz6sxqlmsqphmr-foo"),("system","x86_64-linux")])'
    )


def test_other_store_dir_vector():
    # NIX_STORE_DIR=/bootstrap/store nix-instantiate of the trivial derivation.
    drv = DerivationHasher(no_inputs, "/bootstrap/store").fill_outputs(nix_like("foo", "/bin/sh"))
    assert drv.outputs["out"].path == "/bootstrap/store/p2h1m4ffrpw24sjsrn5i4zcrnqi6dsdk-foo"
    assert drv_path(drv, "/bootstrap/store") == (
        "/bootstrap/store/4jlr5v6jksysgw308hsr2b6qmvmbarcx-foo.drv"
    )


FO_HEX = "f3f3c4763037e059b4d834eaf68595bbc02ba19f6d2a500dce06d124e2cd99bb"
ZERO256 = Hash("sha256", bytes(32))


def graph_vectors() -> dict[str, Derivation]:
    """A graph with every kind of edge; Nix 2.8 wrote the paths asserted below."""
    fo_attrs = {"outputHashMode": "recursive", "outputHashAlgo": "sha256", "outputHash": FO_HEX}
    fo = nix_like("fo", "/bin/sh", attrs=fo_attrs, fixed=(Hash.parse(FO_HEX, "sha256"), True))
    fo2 = nix_like(
        "fo2",
        "/bin/sh",
        attrs={"outputHash": "sha1-AAAAAAAAAAAAAAAAAAAAAAAAAAA="},
        fixed=(Hash("sha1", bytes(20)), False),
    )
    twin_attrs = {"outputHashAlgo": "sha256", "outputHash": "0" * 64}
    twin_a = nix_like("twin", "/bin/a", attrs=twin_attrs, fixed=(ZERO256, False))
    twin_b = nix_like("twin", "/bin/b", attrs=twin_attrs, fixed=(ZERO256, False))
    made = {
        key: DerivationHasher(no_inputs, NIX).fill_outputs(d)
        for key, d in {"fo": fo, "fo2": fo2, "twinA": twin_a, "twinB": twin_b}.items()
    }
    resolve = resolver_of(made.values())
    src = text_path(b"hello\n", "a.txt", NIX)
    m = nix_like(
        "m",
        "/bin/sh",
        args=["-c", 'a"b\\c\nd\te\r', "ü"],
        attrs={"src": src, "x": made["fo"].outputs["out"].path},
        outputs=["out", "dev", "lib"],
        input_drvs={drv_path(made["fo"], NIX): ["out"]},
        input_srcs=[src],
    )
    made["m"] = m = DerivationHasher(resolve, NIX).fill_outputs(m)
    lib, fo2_out = m.outputs["lib"].path, made["fo2"].outputs["out"].path
    twin_out = made["twinA"].outputs["out"].path
    top = nix_like(
        "top",
        m.outputs["dev"].path + "/bin/sh",
        attrs={"y": f"{lib} {fo2_out} {twin_out} {twin_out}"},
        input_drvs={
            drv_path(m, NIX): ["dev", "lib"],
            drv_path(made["fo2"], NIX): ["out"],
            drv_path(made["twinA"], NIX): ["out"],
            drv_path(made["twinB"], NIX): ["out"],
        },
    )
    made["top"] = DerivationHasher(resolver_of(made.values()), NIX).fill_outputs(top)
    return made


GRAPH_PATHS = {
    "fo": ("62rgdgwyzh6xpvngjicqan2n7kb50mxf-fo.drv",
           {"out": "3n1zjfm88j3jplm62lhabvzs8yr3jcx1-fo"}),
    "fo2": ("x3bazimbdb0l0r2b23mn1ksyd1kfs03s-fo2.drv",
            {"out": "qi8aj34kvbz2z65ahn06k7wyc1am2kjc-fo2"}),
    "twinA": ("49idwvmz0f0fwfnvn6b4y00xxi6803ny-twin.drv",
              {"out": "6qza1i7gchwq6k6c8mjg12p9kbdwr291-twin"}),
    "twinB": ("ngnz9zlnfvk4lli1gbzvk2fawz1hjhbq-twin.drv",
              {"out": "6qza1i7gchwq6k6c8mjg12p9kbdwr291-twin"}),
    "m": ("g35v7fq995xf51lkg8lsll9dqh3mgi9s-m.drv",
          {"dev": "36w8511fanj3cw6dxb8y6lg8r4x8dyjz-m-dev",
           "lib": "6npw5bfx59yxa4faz6pxhpk7vsgl0g3p-m-lib",
           "out": "iz60vqph2mhjqxy7hgkgh9qma05s1j8l-m"}),
    "top": ("jmdpal47j5znvjnbsffh31j8172vdxsv-top.drv",
            {"out": "8cn9nd6d1p2i2jfxxka9h3dgj3w4ir5g-top"}),
}  # fmt: skip


def test_graph_vectors_match_nix():
    made = graph_vectors()
    for key, (drv_base, outputs) in GRAPH_PATHS.items():
        drv = made[key]
        assert drv_path(drv, NIX) == f"{NIX}/{drv_base}", key
        assert {name: out.path for name, out in drv.outputs.items()} == {
            name: f"{NIX}/{base}" for name, base in outputs.items()
        }, key


def test_graph_vector_exact_bytes_with_escapes_and_merged_twins():
    made = graph_vectors()
    assert (
        to_aterm(made["m"])
        == (
            'Derive([("dev","/nix/store/36w8511fanj3cw6dxb8y6lg8r4x8dyjz-m-dev","",""),'
            '("lib","/nix/store/6npw5bfx59yxa4faz6pxhpk7vsgl0g3p-m-lib","",""),'
            '("out","/nix/store/iz60vqph2mhjqxy7hgkgh9qma05s1j8l-m","","")],'
            '[("/nix/store/62rgdgwyzh6xpvngjicqan2n7kb50mxf-fo.drv",["out"])],'
            '["/nix/store/8hb1zapwkfr1j7zmxj7s7wj2pgci7zjm-a.txt"],"x86_64-linux","/bin/sh",'
            '["-c","a\\"b\\\\c\\nd\\te\\r","ü"],[("builder","/bin/sh"),'
            '("dev","/nix/store/36w8511fanj3cw6dxb8y6lg8r4x8dyjz-m-dev"),'
            '("lib","/nix/store/6npw5bfx59yxa4faz6pxhpk7vsgl0g3p-m-lib"),("name","m"),'
            '("out","/nix/store/iz60vqph2mhjqxy7hgkgh9qma05s1j8l-m"),("outputs","out dev lib"),'
            '("src","/nix/store/8hb1zapwkfr1j7zmxj7s7wj2pgci7zjm-a.txt"),("system","x86_64-linux"),'
            '("x","/nix/store/3n1zjfm88j3jplm62lhabvzs8yr3jcx1-fo")])'
        ).encode()
    )
    # The two twins have one modulo hash; `top` hashes them as a single merged input.
    hasher = DerivationHasher(resolver_of(made.values()), NIX)
    twins = {hasher.input_modulo(drv_path(made[k], NIX)) for k in ("twinA", "twinB")}
    assert len(twins) == 1


def test_modulo_hashes_are_memoised_per_drv_path():
    base = DerivationHasher(no_inputs, NIX).fill_outputs(nix_like("base", "/bin/sh"))
    base_path = drv_path(base, NIX)
    mids = [
        DerivationHasher(resolver_of([base]), NIX).fill_outputs(
            nix_like(f"mid{i}", "/bin/sh", input_drvs={base_path: ["out"]})
        )
        for i in range(3)
    ]
    table = {drv_path(d, NIX): d for d in [base, *mids]}
    calls: list[str] = []

    def counting(path: str) -> Derivation:
        calls.append(path)
        return table[path]

    top = nix_like("top", "/bin/sh", input_drvs={drv_path(d, NIX): ["out"] for d in mids})
    DerivationHasher(counting, NIX).fill_outputs(top)
    assert sorted(calls) == sorted(table)


# -- ATerm round trips -----------------------------------------------------------------------

raw_bytes = st.binary(max_size=12).map(lambda b: b.decode("utf-8", "surrogateescape"))
texts = st.one_of(
    st.text(alphabet=st.sampled_from('"\\\n\r\t(),[]ab'), max_size=10),
    st.text(max_size=12),
    raw_bytes,
)
store_paths = st.builds(lambda h, n: f"{NIX}/{h}-{n}", st.sampled_from(["a" * 32, "b" * 32]), texts)
outputs = st.builds(Output, texts, texts, texts)
derivations = st.builds(
    Derivation,
    st.just("x"),
    st.dictionaries(texts, outputs, max_size=4),
    st.dictionaries(store_paths, st.lists(texts, max_size=3), max_size=3),
    st.lists(store_paths, max_size=3).map(tuple),
    texts,
    texts,
    st.lists(texts, max_size=4).map(tuple),
    st.dictionaries(texts, texts, max_size=6),
)


@settings(max_examples=300)
@given(derivations)
def test_parse_print_round_trip(drv):
    data = to_aterm(drv)
    assert parse_aterm(data, "x") == drv
    assert to_aterm(parse_aterm(data, "x")) == data


def test_empty_lists_round_trip():
    data = b'Derive([],[],[],"","",[],[])'
    assert to_aterm(parse_aterm(data, "x")) == data


@pytest.mark.parametrize(
    ("data", "offset", "expected"),
    [
        (b'derive([],[],[],"","",[],[])', 0, "expected 'Derive('"),
        (b'Derive([],[],[],"","",[],[])\n', 28, "expected end of input"),
        (b'Derive([],[],[],"","",[],[("b","1"),("a","2")])', 25, "sorted by byte order"),
        (b'Derive([],[],[],"","",[],[("a","1"),("a","2")])', 25, "without duplicates"),
        (b'Derive([],[],[],"\\x","",[],[])', 18, "an escape"),
        (b'Derive([],[],[],"a\nb","",[],[])', 18, "instead of a raw control character"),
        (b'Derive([],[],[],"","",[],[]', 27, "expected ')'"),
        (b'Derive([("out","p","")],[],[],"","",[],[])', 21, "expected ','"),
        (b'Derive([],[],["a";"b"],"","",[],[])', 17, "expected ','"),
        (b'Derive([],[],[],"abc', 20, "closing '\"'"),
    ],
)
def test_parse_errors_name_offset_and_expectation(data, offset, expected):
    with pytest.raises(BootstrapError) as info:
        parse_aterm(data, "x", "bad.drv")
    message = str(info.value)
    assert message.startswith(f"bad.drv: offset {offset}: ")
    assert expected in message
    assert "\n" not in message


# -- paths, JSON and errors --------------------------------------------------------------------


def test_json_shape_matches_show_derivation():
    made = graph_vectors()
    fo = to_json(made["fo"])
    assert list(fo) == ["outputs", "inputSrcs", "inputDrvs", "system", "builder", "args", "env"]
    assert fo["outputs"] == {
        "out": {
            "path": "/nix/store/3n1zjfm88j3jplm62lhabvzs8yr3jcx1-fo",
            "hashAlgo": "r:sha256",
            "hash": FO_HEX,
        }
    }
    top = to_json(made["top"])
    assert top["outputs"] == {"out": {"path": "/nix/store/8cn9nd6d1p2i2jfxxka9h3dgj3w4ir5g-top"}}
    assert top["inputDrvs"]["/nix/store/g35v7fq995xf51lkg8lsll9dqh3mgi9s-m.drv"] == ["dev", "lib"]


def test_name_from_drv_file():
    assert name_from_drv_file("/nix/store/9d794zbx10n43fa6zaqf33pfymdrm4r2-foo.drv") == "foo"
    assert name_from_drv_file("/tmp/hello-2.12.drv") == "hello-2.12"
    with pytest.raises(BootstrapError, match=r"expected a file named <name>\.drv"):
        name_from_drv_file("/tmp/foo.nix")


def bare(outputs: dict[str, Output], builder: str = "/bin/sh") -> Derivation:
    return Derivation("f", outputs, system=SYSTEM, builder=builder)


@pytest.mark.parametrize(
    ("drv", "message"),
    [
        (nix_like("f", "/bin/sh", outputs=["out", "drv"]), "may not be called 'drv'"),
        (nix_like("f", "/bin/sh", system='x"y'), "may not contain"),
        (nix_like("f", "/bin/sh", outputs=["a/b"]), "invalid characters"),
        (bare({}), "at least one output"),
        (bare({"out": Output("", "sha256", "0" * 64), "dev": Output()}), "exactly one output"),
        (bare({"out": Output("", "md5", "0" * 32)}), "hashAlgo sha1/sha256/sha512"),
        (bare({"out": Output("", "sha256", "")}), "has hashAlgo but no hash"),
        (bare({"out": Output()}, builder=""), "builder and system must not be empty"),
    ],
)
def test_fill_outputs_refuses_bad_derivations(drv, message):
    with pytest.raises(BootstrapError, match=message):
        DerivationHasher(no_inputs, NIX).fill_outputs(drv)


def test_store_dir_mismatch_is_reported_with_hint():
    drv = graph_vectors()["m"]
    with pytest.raises(BootstrapError, match=r"not in the store /bootstrap/store.*--store-dir"):
        check_store_paths(drv, "/bootstrap/store", "m.drv")


# -- CLI and the store -----------------------------------------------------------------------


def write_drv(directory, drv: Derivation, store_dir: str = NIX):
    file = directory / drv_path(drv, store_dir).rsplit("/", 1)[1]
    file.write_bytes(to_aterm(drv))
    return file


def test_cli_show_prints_nix_shaped_json(tmp_path):
    made = graph_vectors()
    files = [write_drv(tmp_path, made[k]) for k in ("top", "fo")]
    out = run_cli("drv", "show", "--store-dir", NIX, *map(str, files)).stdout
    shown = json.loads(out)
    assert list(shown) == sorted(drv_path(made[k], NIX) for k in ("top", "fo"))
    assert shown[drv_path(made["fo"], NIX)] == to_json(made["fo"])


def test_cli_show_rejects_wrong_store_dir_in_one_line(tmp_path):
    file = write_drv(tmp_path, graph_vectors()["top"])
    result = run_cli("drv", "show", str(file), check=False)
    assert result.returncode == 1
    assert result.stderr.decode().count("\n") == 1
    assert "pass --store-dir" in result.stderr.decode()


def chain(store_dir: str) -> list[Derivation]:
    base = DerivationHasher(no_inputs, store_dir).fill_outputs(
        nix_like("base", "/bin/sh", outputs=["out", "dev"])
    )
    use = nix_like(
        "use",
        base.outputs["dev"].path + "/bin/sh",
        input_drvs={drv_path(base, store_dir): ["dev"]},
    )
    return [base, DerivationHasher(resolver_of([base], store_dir), store_dir).fill_outputs(use)]


def test_cli_import_chain_into_store(tmp_path, store):
    drvs = chain(store.store_dir)
    files = [write_drv(tmp_path, d, store.store_dir) for d in drvs]
    where = ["--store", str(store.root), "--store-dir", store.store_dir]
    out = run_cli("drv", "import", *where, *map(str, files))
    lines = out.stdout.decode().splitlines()
    base, use = drvs
    assert lines[0] == (
        f"{drv_path(base, store.store_dir)} dev={base.outputs['dev'].path} "
        f"out={base.outputs['out'].path}"
    )
    assert lines[1] == f"{drv_path(use, store.store_dir)} out={use.outputs['out'].path}"
    stored = store.real_path(drv_path(use, store.store_dir)).read_bytes()
    assert stored == to_aterm(use)
    assert store.references(drv_path(use, store.store_dir)) == [drv_path(base, store.store_dir)]
    again = run_cli("drv", "import", *where, str(files[1]))
    assert again.stdout == out.stdout.splitlines(keepends=True)[1]
    shown = run_cli("drv", "show", *where, drv_path(use, store.store_dir)).stdout
    assert json.loads(shown) == {drv_path(use, store.store_dir): to_json(use)}


def test_cli_import_refuses_tampered_output_and_adds_nothing(tmp_path, store):
    base, use = chain(store.store_dir)
    forged = "/bootstrap/store/" + "0" * 32 + "-use"
    bad = Derivation(
        "use",
        {"out": Output(forged)},
        use.input_drvs,
        use.input_srcs,
        use.system,
        use.builder,
        use.args,
        {**use.env, "out": forged},
    )
    files = [write_drv(tmp_path, base, store.store_dir), tmp_path / "use.drv"]
    files[1].write_bytes(to_aterm(bad))
    result = run_cli("drv", "import", "--store", str(store.root), *map(str, files), check=False)
    err = result.stderr.decode()
    assert result.returncode == 1
    assert f"output 'out' is recorded as {forged} but computes to {use.outputs['out'].path}" in err
    assert store.all_paths() == []


def test_cli_import_needs_inputs_first(tmp_path, store):
    _, use = chain(store.store_dir)
    file = write_drv(tmp_path, use, store.store_dir)
    result = run_cli("drv", "import", "--store", str(store.root), str(file), check=False)
    assert result.returncode == 1
    assert "is not in the store at" in result.stderr.decode()


def test_add_to_store_checks_sources_then_writes_text_path(store):
    src = store.add_text("script.sh", b"echo hi\n")
    drv = nix_like("s", "/bin/sh", args=[src], input_srcs=[src])
    drv = DerivationHasher(no_inputs, store.store_dir).fill_outputs(drv)
    path = add_to_store(store, drv)
    assert path == drv_path(drv, store.store_dir)
    assert store.references(path) == [src]
    missing = DerivationHasher(no_inputs, store.store_dir).fill_outputs(
        nix_like("t", "/bin/sh", input_srcs=[text_path(b"x", "x", store.store_dir)])
    )
    with pytest.raises(BootstrapError, match="is not in the store"):
        add_to_store(store, missing)
