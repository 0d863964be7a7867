"""Hostile or clumsy input (#17): deep NARs and derivation graphs, oversized downloads, archive
bombs, huge .drv files, corrupt cache entries, escaping symlinks and mistyped arguments. Each
test reproduces the fault with real files, processes and a real HTTP server on 127.0.0.1, and
checks what the user sees: `bootstrap: error: ...` on one line and exit 1, or argparse's usage
and exit 2 for argument errors."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import struct
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bootstrap.cli import build_parser
from bootstrap.derivation import (
    Derivation,
    DerivationHasher,
    Output,
    drv_path,
    to_aterm,
)
from bootstrap.errors import BootstrapError
from bootstrap.fetch import Fetcher, Source
from bootstrap.fstree import remove_tree
from bootstrap.hashing import Hash
from bootstrap.mirrors import Mirrors, load_config_file
from bootstrap.unpack import unpack
from tests.conftest import requires_nix

BOOTSTRAP = Path(sys.executable).with_name("bootstrap")
STORE_DIR = "/bootstrap/store"
MIB = 1 << 20


def cli(*args: object, stdin: bytes | None = None, env: dict | None = None):
    """`.venv/bin/bootstrap ARGS` as a user runs it."""
    return subprocess.run(
        [str(BOOTSTRAP), *map(str, args)],
        input=stdin,
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single `bootstrap: error: ...` line, last on stderr (after any warnings), of a
    command that failed with exit 1."""
    lines = result.stderr.decode(errors="replace").splitlines()
    assert result.returncode == 1, lines[-20:]
    assert lines and lines[-1].startswith("bootstrap: error: "), lines[-20:]
    assert not any(line.startswith(("bootstrap: error", "Traceback")) for line in lines[:-1])
    return lines[-1]


def sha256(data: bytes) -> Hash:
    return Hash("sha256", hashlib.sha256(data).digest())


# -- NAR -----------------------------------------------------------------------------------


def _nar_string(word: bytes) -> bytes:
    return struct.pack("<Q", len(word)) + word + b"\0" * (-len(word) % 8)


def deep_nar(depth: int) -> bytes:
    """A NAR of `depth` nested directories named `d`, with one small file at the bottom."""
    s = _nar_string
    opening = b"".join(map(s, (b"(", b"type", b"directory", b"entry", b"(", b"name", b"d")))
    leaf = b"".join(map(s, (b"(", b"type", b"regular", b"contents", b"bottom\n", b")")))
    closing = s(b")") + s(b")")
    return s(b"nix-archive-1") + (opening + s(b"node")) * depth + leaf + closing * depth


def test_nar_of_3000_nested_directories_restores_and_dumps(tmp_path: Path) -> None:
    data = deep_nar(3000)
    dest = tmp_path / "deep"
    try:
        restored = cli("nar", "restore", dest, stdin=data)
        assert restored.returncode == 0, restored.stderr.decode()[-2000:]
        assert cli("nar", "dump", dest).stdout == data
        hashed = cli("hash", "path", "--base16", dest).stdout.decode().strip()
        assert hashed == hashlib.sha256(data).hexdigest()
    finally:
        remove_tree(dest)  # pytest's own clean-up recurses


@requires_nix
def test_deep_nar_restores_as_nix_restores_it(tmp_path: Path) -> None:
    """Nix 2.8 names files by whole paths, so 1,500 levels (a 3,000-byte path) is as deep as
    it goes; both restorations dump back to the same bytes with either tool."""
    data = deep_nar(1500)
    ours, theirs = tmp_path / "ours", tmp_path / "nix"
    try:
        assert cli("nar", "restore", ours, stdin=data).returncode == 0
        subprocess.run(["nix-store", "--restore", theirs], input=data, check=True)
        dumped_by_nix = subprocess.run(["nix-store", "--dump", ours], capture_output=True)
        assert dumped_by_nix.stdout == data
        assert cli("nar", "dump", theirs).stdout == data
    finally:
        remove_tree(ours)
        remove_tree(theirs)


def test_broken_deep_nar_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "deep"
    truncated = cli("nar", "restore", dest, stdin=deep_nar(3000)[:-64])
    assert "NAR ends early at byte" in one_line_error(truncated)
    assert list(tmp_path.iterdir()) == []
    missing_parent = cli("nar", "restore", tmp_path / "no" / "dir", stdin=deep_nar(2))
    assert f"{tmp_path / 'no'}: no such directory" in one_line_error(missing_parent)


# -- arguments -----------------------------------------------------------------------------


def test_argument_errors_print_usage_exit_2_and_suggest_the_nearest(tmp_path: Path) -> None:
    cases = [
        (("run", "--untill", "3"), "usage: bootstrap run", "(did you mean '--until'?)"),
        (("shwo",), "usage: bootstrap ", "(did you mean 'show'?)"),
        (("nar", "restroe", tmp_path), "usage: bootstrap nar ", "(did you mean 'restore'?)"),
        (("export", "--format", "tarr"), "usage: bootstrap export", "(did you mean 'tar'?)"),
        (("nar", "restore"), "usage: bootstrap nar restore", "required: DIR"),
    ]
    for args, usage, hint in cases:
        result = cli(*args)
        stderr = result.stderr.decode()
        assert result.returncode == 2, (args, stderr)
        assert stderr.startswith(usage) and hint in stderr, (args, stderr)


def test_long_options_are_never_abbreviated(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_bytes(b"x")
    abbreviated = cli("hash", "path", "--bas", file)
    assert abbreviated.returncode == 2
    assert b"unrecognized arguments: --bas (did you mean '--base16'?)" in abbreviated.stderr
    assert cli("hash", "path", "--base16", file).returncode == 0
    parsers = [build_parser()]
    while parsers:
        parser = parsers.pop()
        assert parser.allow_abbrev is False, parser.prog
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers += action.choices.values()


def test_export_to_a_regular_file_is_one_line(tmp_path: Path) -> None:
    root = tmp_path / "root"
    payload = tmp_path / "payload"
    payload.write_text("payload\n")
    path = cli("store", "add", payload, "--store", root).stdout.decode().strip()
    target = tmp_path / "target"
    target.write_text("a file, not a directory\n")
    for form in ("binary-cache", "tar"):
        result = cli("export", path, "--to", target, "--format", form, "--store", root)
        assert f"{target}: not a directory" in one_line_error(result)
    assert target.read_text() == "a file, not a directory\n"


# -- downloads -----------------------------------------------------------------------------


@dataclass
class Body:
    size: int
    content_length: bool
    sent: int = 0


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Streamer)
        self.bodies: dict[str, Body] = {}

    def add(self, path: str, size: int, content_length: bool = True) -> str:
        self.bodies[path] = Body(size, content_length)
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class Streamer(BaseHTTPRequestHandler):
    """Streams `size` zero bytes, with or without a Content-Length, counting what it sent."""

    server: Server

    def log_message(self, format, *args) -> None:
        pass

    def do_GET(self) -> None:
        body = self.server.bodies[self.path]
        self.send_response(200)
        if body.content_length:
            self.send_header("Content-Length", str(body.size))
        self.end_headers()
        chunk = bytes(1 << 16)
        body.sent = 0
        try:
            while body.sent < body.size:
                self.wfile.write(chunk[: body.size - body.sent])
                body.sent += min(len(chunk), body.size - body.sent)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = Server()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _fetcher(tmp_path: Path, **settings) -> Fetcher:
    mirrors = Mirrors(environ={}, config_file=tmp_path / "none.toml", apt_dir=tmp_path / "apt")
    return Fetcher(cache_dir=tmp_path / "cache", mirrors=mirrors, progress=False, **settings)


def _cache_files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "cache").iterdir() if p.suffix != ".lock")


@pytest.mark.parametrize("content_length", [True, False])
def test_a_pinned_download_stops_at_its_size(
    server: Server, tmp_path: Path, content_length: bool
) -> None:
    url = server.add("/pinned.tar", 100 * MIB, content_length)
    source = Source.of(url, sha256(bytes(5000)), size=5000)
    with pytest.raises(BootstrapError, match=r"sends more than 5000 bytes \(its pinned size\)"):
        _fetcher(tmp_path, attempts=1).fetch(source)
    assert server.bodies["/pinned.tar"].sent < 20 * MIB
    assert _cache_files(tmp_path) == []


def test_seed_import_from_a_url_stops_at_the_pinned_size(server: Server, tmp_path: Path) -> None:
    url = server.add("/seed.tar.gz", 100 * MIB, content_length=False)
    result = cli("seed", "import", url, env={"BOOTSTRAP_CACHE_DIR": str(tmp_path / "cache")})
    assert "(its pinned size)" in one_line_error(result)
    assert server.bodies["/seed.tar.gz"].sent < 20 * MIB
    assert _cache_files(tmp_path) == []


def test_an_unpinned_download_stops_at_the_configured_maximum(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.add("/unpinned", 100 * MIB, content_length=False)
    monkeypatch.setenv("BOOTSTRAP_MAX_DOWNLOAD", "1M")
    fetcher = _fetcher(tmp_path, attempts=1)
    assert fetcher.max_download == MIB
    with pytest.raises(BootstrapError, match=r"sends more than 1 MiB \(BOOTSTRAP_MAX_DOWNLOAD\)"):
        fetcher.download(url, sha256(b"small"))
    assert server.bodies["/unpinned"].sent < 20 * MIB
    local = tmp_path / "local.bin"
    local.write_bytes(bytes(3 * MIB))
    with pytest.raises(BootstrapError, match="BOOTSTRAP_MAX_DOWNLOAD"):
        fetcher.download(local.as_uri(), sha256(bytes(3 * MIB)))
    assert _cache_files(tmp_path) == []
    monkeypatch.setenv("BOOTSTRAP_MAX_DOWNLOAD", "lots")
    with pytest.raises(BootstrapError, match="BOOTSTRAP_MAX_DOWNLOAD: expected a positive size"):
        _fetcher(tmp_path)


def test_a_corrupt_cache_entry_is_moved_aside_and_fetched_again(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.add("/zeros", 300_000)
    expected = sha256(bytes(300_000))
    fetcher = _fetcher(tmp_path)
    cached = fetcher.download(url, expected)
    cached.write_bytes(b"rotten" + bytes(300_000 - 6))
    with caplog.at_level(logging.WARNING, logger="bootstrap.fetch"):
        again = fetcher.download(url, expected)
    assert again == cached and cached.read_bytes() == bytes(300_000)
    aside = cached.with_name(cached.name + ".corrupt")
    assert aside.read_bytes().startswith(b"rotten")
    assert "no longer matches" in caplog.text and f"moved to {aside}" in caplog.text
    assert fetcher.cached(expected) == cached


# -- archives ------------------------------------------------------------------------------


class _Zeros(io.RawIOBase):
    """`size` zero bytes, read without holding them."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def _tar_gz_of_zeros(path: Path, size: int) -> Path:
    with tarfile.open(path, "w:gz", compresslevel=9) as tar:
        member = tarfile.TarInfo("bomb/zeros")
        member.size = size
        tar.addfile(member, _Zeros(size))
    return path


def test_a_gzip_bomb_stops_early(tmp_path: Path) -> None:
    bomb = _tar_gz_of_zeros(tmp_path / "bomb.tar.gz", 300 * MIB)
    assert bomb.stat().st_size < MIB
    with pytest.raises(BootstrapError) as error:
        unpack(bomb, tmp_path / "out")
    message = str(error.value)
    assert message.startswith(f"{bomb}: unpacks to more than 64 MiB, the most an archive of")
    assert "BOOTSTRAP_MAX_UNPACK_RATIO" in message and "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.tar.gz"]


def test_a_zip_bomb_stops_early(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with (
        zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("zeros", "w", force_zip64=True) as member,
    ):
        for _ in range(200):
            member.write(bytes(MIB))
    with pytest.raises(BootstrapError, match="unpacks to more than 64 MiB"):
        unpack(bomb, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.zip"]


def test_the_unpacked_size_limit_is_configurable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "random.tar"
    with tarfile.open(archive, "w") as tar:
        member = tarfile.TarInfo("random")
        data = os.urandom(3 * MIB)
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    assert (unpack(archive, tmp_path / "fine") / "random").read_bytes() == data
    with pytest.raises(BootstrapError, match=r"more than 1 MiB \(BOOTSTRAP_MAX_UNPACKED\)"):
        unpack(archive, tmp_path / "small", max_size=MIB)
    monkeypatch.setenv("BOOTSTRAP_MAX_UNPACKED", "2M")
    with pytest.raises(BootstrapError, match=r"more than 2 MiB \(BOOTSTRAP_MAX_UNPACKED\)"):
        unpack(archive, tmp_path / "env")
    assert not (tmp_path / "small").exists() and not (tmp_path / "env").exists()


# -- derivations ---------------------------------------------------------------------------


def _write_drv(directory: Path, drv: Derivation) -> Path:
    filled = DerivationHasher(lambda path: pytest.fail(path), STORE_DIR).fill_outputs(drv)
    file = directory / f"{drv.name}.drv"
    file.write_bytes(to_aterm(filled))
    return file


def test_an_oversized_drv_is_refused_unread(tmp_path: Path) -> None:
    env = {"x": "x" * 20 * MIB}
    big = Derivation("big", {"out": Output()}, system="x86_64-linux", builder="/bin/sh", env=env)
    file = _write_drv(tmp_path, big)
    root = tmp_path / "root"
    for command in ("import", "show"):
        result = cli("drv", command, file, "--store", root)
        assert f"{file}: derivation is larger than 16 MiB" in one_line_error(result)
    allowed = cli("drv", "import", file, "--store", root, env={"BOOTSTRAP_MAX_DRV_SIZE": "32M"})
    assert allowed.returncode == 0, allowed.stderr.decode()


def test_a_chain_of_3000_derivations_hashes_without_recursion() -> None:
    known: dict[str, Derivation] = {}
    building = DerivationHasher(known.__getitem__, STORE_DIR)
    previous: list[str] = []
    for index in range(3000):
        drv = Derivation(
            f"link-{index}",
            {"out": Output()},
            {path: ("out",) for path in previous},
            system="x86_64-linux",
            builder="/bin/sh",
        )
        drv = building.fill_outputs(drv)
        previous = [drv_path(drv, STORE_DIR)]
        known[previous[0]] = drv
    top = previous[0]
    assert DerivationHasher(known.__getitem__, STORE_DIR).input_modulo(top) == (
        building.input_modulo(top)
    )


def test_a_derivation_cycle_is_one_line() -> None:
    path = f"{STORE_DIR}/{'a' * 32}-loop.drv"
    loop = Derivation("loop", {"out": Output(path)}, {path: ("out",)}, system="s", builder="b")
    with pytest.raises(BootstrapError, match="depends on itself"):
        DerivationHasher({path: loop}.__getitem__, STORE_DIR).input_modulo(path)


# -- nested documents ----------------------------------------------------------------------


def test_deeply_nested_json_and_toml_are_one_line(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    diff = cli("audit", "diff", deep, deep)
    assert f"{deep}: cannot read manifest: maximum recursion depth" in one_line_error(diff)
    seed = cli("seed", "import", "--manifest", deep, tmp_path / "x")
    assert f"{deep}: cannot read seed manifest" in one_line_error(seed)
    toml = tmp_path / "mirrors.toml"
    toml.write_text("[mirrors]\ndebian = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(BootstrapError, match=f"{toml}: cannot read mirror config"):
        load_config_file(toml)


# -- audit hermetic: symlinks --------------------------------------------------------------

OUT = f"{STORE_DIR}/{'b' * 32}-out"
OTHER = f"{STORE_DIR}/{'c' * 32}-other"
UNLISTED = f"{STORE_DIR}/{'d' * 32}-unlisted"


def test_audit_hermetic_follows_symlinks(tmp_path: Path) -> None:
    store = tmp_path / "store"
    out, other = (store / Path(path).name for path in (OUT, OTHER))
    (out / "lib" / "a").mkdir(parents=True)
    (other / "lib").mkdir(parents=True)
    (out / "lib" / "x").write_text("x\n")
    (other / "lib" / "y").write_text("y\n")
    links = {
        "shadow": "/etc/shadow",
        "climb": "../../../../etc/shadow",
        "sibling": f"../{Path(OTHER).name}/lib/y",
        "unlisted": f"{UNLISTED}/lib/z",
        "lib/a/up": "..",  # fine alone ...
        "through": "lib/a/up/../..",  # ... but this passes through it and climbs out
        "inside": "lib/x",
        "dangling": "lib/missing",
        "other": f"{OTHER}/lib/y",
    }
    for name, target in links.items():
        (out / name).symlink_to(target)
    root = tmp_path / "root"
    mapping = ("--store-dir", STORE_DIR, "--map", f"{STORE_DIR}={store}", "--store", root)
    result = cli("audit", "hermetic", "--json", *mapping, out, other)
    assert result.returncode == 1, result.stderr.decode()
    records = json.loads(result.stdout)
    found = {(r["kind"], r["file"].rsplit("/", 1)[1], r["detail"]) for r in records}
    assert found == {
        ("symlink-outside-store", "shadow", "/etc/shadow"),
        ("symlink-outside-store", "climb", "/etc/shadow"),
        ("symlink-leaves-store-path", "sibling", f"{OTHER}/lib/y"),
        ("symlink-outside-closure", "unlisted", f"{UNLISTED}/lib/z"),
        ("symlink-outside-store", "through", STORE_DIR),  # lexically, it stays in lib
    }
    allowed = ("/etc/shadow", "../../../../etc/shadow", links["sibling"], links["unlisted"])
    allowing = [f"--allow={target}" for target in (*allowed, links["through"])]
    clean = cli("audit", "hermetic", *mapping, *allowing, out, other)
    assert (clean.returncode, clean.stdout) == (0, b"no violations\n")
