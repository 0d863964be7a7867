"""Keys and path signatures: Nix's formats, checked against real Nix where installed."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys

import pytest

from bootstrap.errors import BootstrapError
from bootstrap.hashing import Hash
from bootstrap.nar import nar_hash
from bootstrap.signing import (
    PublicKey,
    SecretKey,
    any_signature_valid,
    fingerprint,
    read_public_key,
    read_secret_key,
    signature_valid,
    trusted_keys,
    write_key_file,
)

NIX = ["nix", "--extra-experimental-features", "nix-command"]
NO_NET = ["--option", "substituters", "", "--option", "build-users-group", ""]
needs_nix = pytest.mark.skipif(shutil.which("nix") is None, reason="Debian's nix-bin not installed")

# A fixed key and path, signed by `nix store sign` (nix 2.8.0) on 2026-12-05.
NIX_SECRET = (
    "test-1:zIfPMFtvH48zrvBnj8rRhQh1xdDR0gR828/kvVQgfCw"
    "HYubqALcI0+eGS9CH28pcU+BeQlgZAhHiY4zWCG7OzQ=="
)
NIX_PUBLIC = "test-1:B2Lm6gC3CNPnhkvQh9vKXFPgXkJYGQIR4mOM1ghuzs0="
HELLO_PATH = "/nix/store/xp0dpr9yz5h0fk5c5lpj7zzqjbdh3w8c-f"  # `nix-store --add` of "hello\n"
HELLO_NAR = Hash.parse("sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=")
HELLO_SIG = (
    "test-1:l/iJn7Mq8V8Pg1GFoRMI4e3tyZ+blqC6XQ2s5zhqY"
    "fBpq5/naquRLlFTJ83g+ZLikaDWqALKVB/JZPdZfz+OBg=="
)


def test_signature_matches_the_one_nix_wrote():
    secret = SecretKey.parse(NIX_SECRET)
    assert str(secret.public_key()) == NIX_PUBLIC
    message = fingerprint(HELLO_PATH, HELLO_NAR, 120, [])
    assert message == (
        b"1;/nix/store/xp0dpr9yz5h0fk5c5lpj7zzqjbdh3w8c-f;"
        b"sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw;120;"
    )
    assert secret.sign(message) == HELLO_SIG
    trusted = trusted_keys([NIX_PUBLIC])
    assert signature_valid(HELLO_SIG, message, trusted)


def test_wrong_message_key_or_bytes_do_not_verify():
    message = fingerprint(HELLO_PATH, HELLO_NAR, 120, [])
    trusted = trusted_keys([NIX_PUBLIC])
    assert not signature_valid(HELLO_SIG, fingerprint(HELLO_PATH, HELLO_NAR, 121, []), trusted)
    other = SecretKey.generate("test-1")  # same name, other key
    assert not signature_valid(other.sign(message), message, trusted)
    assert not signature_valid(HELLO_SIG, message, trusted_keys([str(other.public_key())]))
    assert not signature_valid("test-1:not base64!", message, trusted)
    assert not signature_valid("test-1:" + HELLO_SIG[-8:], message, trusted)
    assert not signature_valid("nocolon", message, trusted)
    assert any_signature_valid(["x:AAAA", HELLO_SIG], message, trusted)


def test_references_are_sorted_full_paths():
    refs = ["/nix/store/zzzz" + "z" * 28 + "-b", "/nix/store/aaaa" + "a" * 28 + "-a"]
    message = fingerprint(HELLO_PATH, HELLO_NAR, 1, refs)
    assert message.endswith(f";{refs[1]},{refs[0]}".encode())


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("nocolon", "found no ':'"),
        (":AAAA", "not a key name"),
        ("a b:AAAA", "not a key name"),
        ("k:!!!", "not base64"),
        ("k:AAAA", "holds 3 bytes; expected 64"),
        # a secret whose second half is not the public key of its first half
        ("k:" + "A" * 86 + "==", "not the public key"),
    ],
)
def test_bad_secret_keys_are_one_line_errors(text, complaint):
    with pytest.raises(BootstrapError, match=complaint):
        SecretKey.parse(text)


def test_key_files_round_trip_and_secret_is_private(tmp_path):
    secret = SecretKey.generate("cache-1")
    write_key_file(tmp_path / "sk", secret, secret=True)
    write_key_file(tmp_path / "pk", secret.public_key(), secret=False)
    assert (tmp_path / "sk").stat().st_mode & 0o777 == 0o600
    assert read_secret_key(tmp_path / "sk") == secret
    assert read_public_key(tmp_path / "pk") == secret.public_key()
    with pytest.raises(BootstrapError, match="refusing to overwrite"):
        write_key_file(tmp_path / "sk", secret, secret=True)
    with pytest.raises(BootstrapError, match=r"pk: key 'cache-1' holds 32 bytes; expected 64"):
        read_secret_key(tmp_path / "pk")


def test_cli_key_generate(tmp_path):
    argv = [sys.executable, "-m", "bootstrap", "key", "generate", "--name", "mine-1"]
    argv += ["--secret", str(tmp_path / "sk"), "--public", str(tmp_path / "pk")]
    subprocess.run(argv, check=True)
    secret = read_secret_key(tmp_path / "sk")
    assert secret.public_key() == read_public_key(tmp_path / "pk")
    again = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert again.returncode == 1
    assert (
        again.stderr.strip() == f"bootstrap: error: {tmp_path / 'sk'}: already exists; "
        "refusing to overwrite a key"
    )


@needs_nix
def test_our_generated_key_signs_as_nix_does(tmp_path):
    """A key from `bootstrap key generate` used by `nix store sign`: same signature bytes."""
    secret = SecretKey.generate("ours-1")
    write_key_file(tmp_path / "sk", secret, secret=True)
    (tmp_path / "f").write_bytes(os.urandom(1000))
    store = ["--store", str(tmp_path / "nix")]
    path = subprocess.run(
        ["nix-store", *store, *NO_NET, "--add", str(tmp_path / "f")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run(
        [*NIX, "store", "sign", *store, *NO_NET, "--key-file", str(tmp_path / "sk"), path],
        capture_output=True,
        check=True,
    )
    info = json.loads(
        subprocess.run(
            [*NIX, "path-info", "--json", *store, *NO_NET, path],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )[0]
    digest, size = nar_hash(tmp_path / "f")
    assert Hash.parse(info["narHash"]) == digest
    message = fingerprint(path, digest, size, info["references"])
    assert info["signatures"] == [secret.sign(message)]
    raw = base64.b64decode(info["signatures"][0].split(":", 1)[1])
    assert PublicKey.parse(str(secret.public_key())).verify(raw, message)


@needs_nix
def test_nix_reads_our_key_files(tmp_path):
    secret = SecretKey.generate("ours-2")
    write_key_file(tmp_path / "sk", secret, secret=True)
    public = subprocess.run(
        [*NIX, "key", "convert-secret-to-public"],
        input=(tmp_path / "sk").read_text(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert public == str(secret.public_key())
