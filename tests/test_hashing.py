import hashlib
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bootstrap.errors import BootstrapError
from bootstrap.hashing import Hash, compress_hash, hash_bytes, nix32_decode, nix32_encode

from .conftest import requires_nix

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_empty_sha256_in_every_form():
    h = hash_bytes("sha256", b"")
    assert h.hex == EMPTY_SHA256
    # `nix-hash --type sha256 --to-base32 <hex>` prints this.
    assert h.nix32 == "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
    assert h.sri == "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


@pytest.mark.parametrize("algo", ["sha1", "sha256", "sha512"])
def test_parse_accepts_every_form(algo):
    h = hash_bytes(algo, b"abc")
    for text in (h.sri, f"{algo}:{h.hex}", f"{algo}:{h.nix32}", f"{algo}:{h.sri.split('-', 1)[1]}"):
        assert Hash.parse(text) == h
    assert Hash.parse(h.hex, algo) == h
    assert Hash.parse(h.nix32, algo) == h


@pytest.mark.parametrize(
    "text",
    ["sha256:abc", "md5:" + "0" * 32, "sha256-notbase64!!", "sha256:" + "e" * 52, EMPTY_SHA256],
)
def test_parse_rejects_bad_hashes_with_one_line(text):
    with pytest.raises(BootstrapError) as err:
        Hash.parse(text)
    assert "\n" not in str(err.value)


@given(st.binary(min_size=1, max_size=80))
def test_nix32_round_trip(data):
    assert nix32_decode(nix32_encode(data)) == data


def test_nix32_rejects_invalid_characters():
    with pytest.raises(BootstrapError, match="invalid character"):
        nix32_decode("e" * 32)


def test_compress_hash_folds_by_xor():
    digest = bytes(range(32))
    folded = compress_hash(digest)
    assert folded[0] == 0 ^ 20 and folded[11] == 11 ^ 31 and folded[12] == 12


@requires_nix
@given(st.binary(min_size=0, max_size=200))
def test_nix32_matches_nix_hash_to_base32(data):
    hex_digest = hashlib.sha256(data).hexdigest()
    out = subprocess.run(
        ["nix-hash", "--type", "sha256", "--to-base32", hex_digest],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert nix32_encode(bytes.fromhex(hex_digest)) == out
