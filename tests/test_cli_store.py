"""The store commands run as a user runs them: `python -m bootstrap ...` in a subprocess."""

import json
import subprocess

from .conftest import requires_nix, run_cli


def test_hash_path_forms(tmp_path):
    f = tmp_path / "hello"
    f.write_text("hello\n")
    assert run_cli("hash", "path", f).stdout.decode().strip() == (
        "04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw"
    )
    hex_out = run_cli("hash", "path", "--base16", f).stdout.decode().strip()
    assert len(hex_out) == 64
    assert run_cli("hash", "path", "--sri", f).stdout.decode().startswith("sha256-")
    assert run_cli("hash", "file", "--base16", f).stdout.decode().strip() == (
        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    )


@requires_nix
def test_hash_path_equals_nix_hash(tmp_path):
    tree = tmp_path / "t"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "x").write_text("x")
    (tree / "l").symlink_to("d/x")
    ours = run_cli("hash", "path", tree).stdout.decode().strip()
    nix = subprocess.run(
        ["nix-hash", "--type", "sha256", "--base32", tree],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert ours == nix


def test_nar_dump_restore_through_pipes(tmp_path):
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "x").write_text("x")
    nar = run_cli("nar", "dump", tree).stdout
    run_cli("nar", "restore", tmp_path / "back", stdin=nar)
    assert (tmp_path / "back" / "x").read_text() == "x"
    again = run_cli("nar", "restore", tmp_path / "back", stdin=nar, check=False)
    assert again.returncode == 1 and b"already exists" in again.stderr
    bad = run_cli("nar", "restore", tmp_path / "bad", stdin=nar[:50], check=False)
    assert bad.returncode == 1 and bad.stderr.count(b"\n") == 1
    assert not (tmp_path / "bad").exists()


def test_store_add_info_verify_gc(tmp_path):
    root = tmp_path / "root"
    src = tmp_path / "src"
    src.write_text("content")
    dry = run_cli("store", "add", src, "--dry-run").stdout.decode().strip()
    path = run_cli("store", "add", src, "--store", root).stdout.decode().strip()
    assert dry == path and path.startswith("/bootstrap/store/")
    info = json.loads(run_cli("store", "path-info", "-r", "--json", path, "--store", root).stdout)
    assert info[0]["path"] == path and info[0]["narSize"] == 120
    assert b"0 corrupt" in run_cli("store", "verify", "--store", root).stdout
    assert path.encode() in run_cli("store", "gc", "--dry-run", "--store", root).stdout
    run_cli("store", "add-root", path, "--store", root)
    assert b"deleted 0 paths" in run_cli("store", "gc", "--store", root).stdout


def test_store_add_nix_store_dir(tmp_path):
    (tmp_path / "myfile").write_text("mycontent\n")
    out = run_cli("store", "add", tmp_path / "myfile", "--store-dir", "/nix/store", "--dry-run")
    assert out.stdout.decode().strip() == "/nix/store/xv2iccirbrvklck36f1g7vldn5v58vck-myfile"


def test_user_errors_are_one_line(tmp_path):
    for args in (
        ("store", "path-info", "/bootstrap/store/nope", "--store", tmp_path / "r"),
        ("store", "add", tmp_path / "missing", "--store", tmp_path / "r"),
        ("hash", "file", tmp_path),
        ("store", "add", tmp_path, "--name", "bad name", "--dry-run"),
    ):
        result = run_cli(*args, check=False)
        assert result.returncode == 1, args
        assert result.stderr.startswith(b"bootstrap: error: ") and result.stderr.count(b"\n") == 1
