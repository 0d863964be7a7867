import io
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from bootstrap.errors import BootstrapError
from bootstrap.hashing import Hash
from bootstrap.nar import BUFFER, dump, nar_hash, restore

from .conftest import requires_nix
from .trees import materialise, trees

# `nix-hash --type sha256 --base32` of a file holding "hello\n" (Nix 2.8).
HELLO_NAR_SHA256 = "04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw"


def nar_bytes(path) -> bytes:
    out = io.BytesIO()
    dump(path, out)
    return out.getvalue()


def test_regular_file_layout(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"hello\n")
    data = nar_bytes(f)
    assert data.startswith(b"\x0d" + b"\0" * 7 + b"nix-archive-1\0\0\0")
    assert b"hello\n\0\0" in data and b"executable" not in data
    assert nar_hash(f)[0].nix32 == HELLO_NAR_SHA256
    assert nar_hash(f)[1] == len(data) == 120


def test_executable_bit_is_recorded(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"#!x")
    plain = nar_bytes(f)
    f.chmod(0o755)
    assert b"executable" in nar_bytes(f) and nar_bytes(f) != plain


def test_entries_sorted_by_bytes(tmp_path):
    for name in ("b", "B", "a", "é"):
        (tmp_path / "d").mkdir(exist_ok=True)
        (tmp_path / "d" / name).write_text(name)
    data = nar_bytes(tmp_path / "d")
    positions = [data.index(b"\0" + n.encode() + b"\0") for n in ("B", "a", "b", "é")]
    assert positions == sorted(positions)


@pytest.mark.parametrize("kind", ["fifo", "socket"])
def test_special_files_are_refused(tmp_path, kind):
    target = tmp_path / "special"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(os.fspath(target))
    with pytest.raises(BootstrapError, match=f"a {kind} cannot be archived"):
        nar_hash(tmp_path)


def test_restore_refuses_truncated_and_garbage(tmp_path):
    (tmp_path / "src").write_text("data")
    data = nar_bytes(tmp_path / "src")
    with pytest.raises(BootstrapError, match="ends early"):
        restore(io.BytesIO(data[:-9]), tmp_path / "out1")
    with pytest.raises(BootstrapError, match="expected 'nix-archive-1'"):
        restore(io.BytesIO(b"\x05" + b"\0" * 7 + b"hello\0\0\0"), tmp_path / "out2")
    with pytest.raises(BootstrapError, match="trailing data"):
        restore(io.BytesIO(data + b"\0" * 8), tmp_path / "out3")


def test_restore_refuses_path_traversal(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "xx").write_text("evil")
    data = nar_bytes(tmp_path / "d").replace(
        b"\x02" + b"\0" * 7 + b"xx", b"\x02" + b"\0" * 7 + b".."
    )
    with pytest.raises(BootstrapError, match="invalid entry name"):
        restore(io.BytesIO(data), tmp_path / "out")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_dump_restore_round_trip(tree):
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        materialise(tree, src)
        data = nar_bytes(src)
        restore(io.BytesIO(data), Path(tmp) / "copy")
        assert nar_bytes(Path(tmp) / "copy") == data


@requires_nix
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_random_trees_match_nix(tree):
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        materialise(tree, src)
        expected = subprocess.run(["nix-store", "--dump", src], capture_output=True, check=True)
        assert nar_bytes(src) == expected.stdout
        nix_hash = subprocess.run(
            ["nix-hash", "--type", "sha256", "--base32", src],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert nar_hash(src)[0].nix32 == nix_hash


@requires_nix
def test_real_tree_matches_nix(tmp_path):
    src = Path(shutil.which("nix-store")).resolve().parent.parent / "share" / "doc" / "nix-bin"
    src = src if src.exists() else Path("/usr/lib/python3/dist-packages/debian")
    expected = subprocess.run(["nix-store", "--dump", src], capture_output=True, check=True).stdout
    assert nar_bytes(src) == expected


@requires_nix
def test_files_around_the_buffer_size_match_nix(tmp_path):
    """Contents at, just past and well past the reused buffer: hashed through it, dumped to a
    file descriptor by sendfile, restored partly from the reader's buffer and partly not."""
    src = tmp_path / "src"
    src.mkdir()
    for size in (0, 7, BUFFER - 1, BUFFER, BUFFER + 1, 3 * BUFFER + 5):
        (src / f"f{size}").write_bytes(os.urandom(size))
    (src / "x").write_bytes(os.urandom(BUFFER + 9))
    (src / "x").chmod(0o755)
    expected = subprocess.run(["nix-store", "--dump", src], capture_output=True, check=True).stdout
    with open(tmp_path / "ours.nar", "wb") as out:
        dump(src, out)
    assert (tmp_path / "ours.nar").read_bytes() == expected
    assert nar_bytes(src) == expected
    nix_hash = subprocess.run(
        ["nix-hash", "--type", "sha256", "--base32", src], capture_output=True, text=True
    ).stdout.strip()
    assert nar_hash(src) == (Hash.parse(nix_hash, "sha256"), len(expected))
    with open(tmp_path / "ours.nar", "rb") as stream:
        restore(stream, tmp_path / "copy")
    assert nar_bytes(tmp_path / "copy") == expected
    assert os.stat(tmp_path / "copy" / "x").st_mode & 0o777 == 0o755
    assert os.stat(tmp_path / "copy" / "f7").st_mode & 0o777 == 0o644
