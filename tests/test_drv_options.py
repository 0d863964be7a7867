"""What a derivation asks of the builder (`DrvOptions`) and the store's batched lookups."""

import pytest

from bootstrap.drv_options import DrvOptions
from bootstrap.errors import BootstrapError


def test_options_round_trip_through_the_environment():
    options = DrvOptions(
        interpreter="$out/lib/ld.so",
        shebangs=(("sh", "/s/abc-busybox/bin/sh"), ("perl", "$out/bin/perl")),
        closure_files=(("closure.json", "/s/def-musl"),),
        resumable=True,
    )
    env = options.to_env()
    assert env == {
        "fixupInterpreter": "$out/lib/ld.so",
        "fixupShebangs": "sh=/s/abc-busybox/bin/sh perl=$out/bin/perl",
        "exportReferencesGraph": "closure.json /s/def-musl",
        "resumable": "1",
    }
    assert DrvOptions.from_env({**env, "other": "x"}, "d") == options
    assert DrvOptions().to_env() == {}
    assert DrvOptions.from_env({}, "d") == DrvOptions()


def test_outputs_are_expanded_in_fixup_options_only():
    options = DrvOptions("$out/lib/ld.so", (("perl", "$dev/bin/perl $HOME"),), (("f", "$out"),))
    expanded = options.expand({"out": "/s/o", "dev": "/s/d"})
    assert expanded.interpreter == "/s/o/lib/ld.so"
    assert expanded.shebangs == (("perl", "/s/d/bin/perl $HOME"),)
    assert expanded.closure_files == (("f", "$out"),)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"exportReferencesGraph": "a /s/x b"}, "d: exportReferencesGraph must hold FILE PATH"),
        ({"exportReferencesGraph": "../a /s/x"}, "d: exportReferencesGraph: '../a' is not a file"),
        ({"exportReferencesGraph": ".a /s/x"}, "is not a file name"),
        ({"fixupShebangs": "perl"}, "d: fixupShebangs: 'perl' is not PROGRAM=PATH"),
        ({"fixupShebangs": "=x"}, "is not PROGRAM=PATH"),
    ],
)
def test_malformed_options_are_one_line_errors(env, message):
    with pytest.raises(BootstrapError, match=message.replace(".", r"\.")):
        DrvOptions.from_env(env, "d")


def test_batched_lookups_answer_as_the_single_ones(store, tmp_path):
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    a = store.add_path(tmp_path / "a")
    b = store.add_path(tmp_path / "b", references=[a])
    store.db.add_signatures(b, ["k:sig2", "k:sig1"])
    missing = f"{store.store_dir}/{'0' * 32}-gone"
    assert store.db.valid_among([a, b, missing, a]) == {a, b}
    assert store.db.infos([a, b, missing]) == {a: store.query_info(a), b: store.query_info(b)}
    assert store.db.build_times([a, missing]) == {}
    store.db.set_drv_outputs([("/s/x.drv", "out", a), ("/s/x.drv", "dev", b)])
    store.db.set_drv_outputs([("/s/x.drv", "out", a)])
    assert store.db.drv_outputs("/s/x.drv") == {"out": a, "dev": b}
