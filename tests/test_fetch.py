"""Fixed-output downloads against a real HTTP server on 127.0.0.1 and, marked `network`, the
Debian mirror from the host's apt sources."""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bootstrap.errors import BootstrapError
from bootstrap.fetch import (
    Fetcher,
    Source,
    default_cache_dir,
    download,
)
from bootstrap.hashing import Hash
from bootstrap.mirrors import Mirrors

NINJA = Source.of(
    "mirror://debian/pool/main/n/ninja-build/ninja-build_1.11.1.orig.tar.gz",
    "31747ae633213f1eda3842686f83c2aa1412e0f5691d1c14dbbcc67fe7400cea",
)
NINJA_SIZE = 229479


def sha256(data: bytes) -> Hash:
    return Hash("sha256", hashlib.sha256(data).digest())


@dataclass
class Route:
    """What the test server does for one path. The `*_first` counts apply to the first N hits."""

    body: bytes
    fail_first: int = 0
    drop_first: int = 0
    stall_first: int = 0
    ranges: bool = True
    wrong_range: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0
    range_headers: list[str | None] = field(default_factory=list)


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes: dict[str, Route] = {}
        self.stop = threading.Event()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def add(self, path: str, body: bytes, **behaviour) -> str:
        self.routes[path] = Route(body, **behaviour)
        return self.url(path)


class Handler(BaseHTTPRequestHandler):
    server: LocalServer

    def log_message(self, format, *args) -> None:
        pass

    def do_GET(self) -> None:
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        hit = route.hits
        route.hits += 1
        range_header = self.headers.get("Range")
        route.range_headers.append(range_header)
        if hit < route.fail_first:
            self.send_error(503, "try again")
            return
        start = int(range_header[6:-1]) if route.ranges and range_header else 0
        if start >= len(route.body) > 0:
            self.send_error(416)
            return
        self.send_response(206 if start else 200)
        if start:
            shown = 0 if route.wrong_range else start
            self.send_header("Content-Range", f"bytes {shown}-{len(route.body) - 1}/*")
        for header, value in route.headers.items():
            self.send_header(header, value)
        self.send_header("Content-Length", str(len(route.body) - start))
        self.end_headers()
        body = route.body[start:]
        if hit < route.stall_first:
            self.server.stop.wait(10)
        elif hit < route.drop_first:
            self.wfile.write(body[: len(body) // 2])
        else:
            self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    httpd = LocalServer()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield httpd
    httpd.stop.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def fetcher(tmp_path: Path) -> Fetcher:
    """A fetcher with its own cache and no host mirror configuration; fast retries."""
    mirrors = Mirrors(environ={}, config_file=tmp_path / "none.toml", apt_dir=tmp_path / "apt")
    return Fetcher(
        cache_dir=tmp_path / "cache",
        mirrors=mirrors,
        progress=False,
        backoff=0.01,
        connect_timeout=2,
        read_timeout=0.5,
        attempts=3,
    )


def cache_listing(fetcher: Fetcher) -> list[str]:
    return sorted(p.name for p in fetcher.cache_dir.iterdir() if not p.name.endswith(".lock"))


def test_download_verifies_and_caches(server: LocalServer, fetcher: Fetcher) -> None:
    body = os.urandom(300_000)
    url = server.add("/a.tar", body)
    path = fetcher.download(url, sha256(body))
    assert path == fetcher.cache_dir / sha256(body).hex
    assert path.read_bytes() == body
    again = fetcher.download(url, sha256(body))
    assert again == path
    assert server.routes["/a.tar"].hits == 1
    assert cache_listing(fetcher) == [sha256(body).hex]


def test_retries_after_server_errors(server: LocalServer, fetcher: Fetcher) -> None:
    body = b"retry me" * 1000
    url = server.add("/flaky", body, fail_first=2)
    assert fetcher.download(url, sha256(body)).read_bytes() == body
    assert server.routes["/flaky"].hits == 3


def test_gives_up_after_attempts_and_names_the_url(server: LocalServer, fetcher: Fetcher) -> None:
    body = b"never"
    url = server.add("/down", body, fail_first=100)
    with pytest.raises(BootstrapError) as error:
        fetcher.download(url, sha256(body))
    message = str(error.value)
    assert "\n" not in message
    assert url in message and "503" in message and "after 3 attempts" in message
    assert server.routes["/down"].hits == 3
    assert cache_listing(fetcher) == []


def test_resumes_after_connection_dropped_mid_body(server: LocalServer, fetcher: Fetcher) -> None:
    body = os.urandom(200_000)
    url = server.add("/drop", body, drop_first=1)
    assert fetcher.download(url, sha256(body)).read_bytes() == body
    route = server.routes["/drop"]
    assert route.hits == 2
    first, resumed = route.range_headers
    assert first is None and resumed is not None
    resumed_at = int(resumed.removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_at <= len(body) // 2


def test_attempts_that_make_progress_do_not_count(server: LocalServer, fetcher: Fetcher) -> None:
    body = os.urandom(1_000_000)
    url = server.add("/drops", body, drop_first=5)
    assert fetcher.attempts < 6
    assert fetcher.download(url, sha256(body)).read_bytes() == body
    assert server.routes["/drops"].hits == 6


def test_resumes_a_partial_file_from_an_earlier_run(server: LocalServer, fetcher: Fetcher) -> None:
    body = os.urandom(100_000)
    url = server.add("/partial", body)
    part = fetcher.cache_dir / f"{sha256(body).hex}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(body[:40_000])
    assert fetcher.download(url, sha256(body)).read_bytes() == body
    assert server.routes["/partial"].range_headers == ["bytes=40000-"]
    assert not part.exists()


def test_wrong_partial_file_is_fetched_afresh(server: LocalServer, fetcher: Fetcher) -> None:
    body = os.urandom(50_000)
    url = server.add("/stale", body)
    part = fetcher.cache_dir / f"{sha256(body).hex}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 10_000)
    assert fetcher.download(url, sha256(body)).read_bytes() == body
    assert server.routes["/stale"].range_headers == ["bytes=10000-", None]


def test_server_without_range_support_restarts(server: LocalServer, fetcher: Fetcher) -> None:
    body = os.urandom(50_000)
    url = server.add("/norange", body, ranges=False)
    part = fetcher.cache_dir / f"{sha256(body).hex}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(body[:20_000])
    assert fetcher.download(url, sha256(body)).read_bytes() == body
    assert server.routes["/norange"].hits == 1


def test_wrong_range_answer_restarts(server: LocalServer, fetcher: Fetcher) -> None:
    body = os.urandom(50_000)
    url = server.add("/badrange", body, wrong_range=True)
    part = fetcher.cache_dir / f"{sha256(body).hex}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(body[:20_000])
    assert fetcher.download(url, sha256(body)).read_bytes() == body
    assert server.routes["/badrange"].range_headers == ["bytes=20000-", None]


def test_content_encoding_is_not_decoded(server: LocalServer, fetcher: Fetcher) -> None:
    """A server labelling a .tar.gz as gzip-encoded must not make us store it decompressed."""
    body = gzip.compress(b"tar bytes" * 1000, mtime=0)
    url = server.add("/x.tar.gz", body, headers={"Content-Encoding": "gzip"})
    assert fetcher.download(url, sha256(body)).read_bytes() == body


def test_read_timeout_is_retried(server: LocalServer, fetcher: Fetcher) -> None:
    body = b"slow" * 100
    url = server.add("/stall", body, stall_first=1)
    assert fetcher.download(url, sha256(body)).read_bytes() == body
    assert server.routes["/stall"].hits == 2


def test_hash_mismatch_keeps_nothing_and_reports(
    server: LocalServer, fetcher: Fetcher, caplog: pytest.LogCaptureFixture
) -> None:
    wanted, served = b"the real thing", b"an impostor"
    url = server.add("/wrong", served)
    with caplog.at_level(logging.WARNING), pytest.raises(BootstrapError) as error:
        fetcher.download(url, sha256(wanted))
    message = str(error.value)
    for text in (url, sha256(wanted).hex, sha256(served).hex, "hash mismatch"):
        assert text in message
        assert text in caplog.text
    assert cache_listing(fetcher) == []


def test_next_url_after_mismatch_missing_and_refused(server: LocalServer, fetcher: Fetcher) -> None:
    body = b"good bytes"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    urls = [
        f"http://127.0.0.1:{closed_port}/refused",
        server.url("/missing"),
        server.add("/bad", b"bad bytes"),
        server.add("/good", body),
    ]
    assert fetcher.download(urls, sha256(body)).read_bytes() == body
    assert server.routes["/bad"].hits == 1
    assert server.routes["/good"].hits == 1


def test_mirror_urls_try_each_mirror(server: LocalServer, tmp_path: Path) -> None:
    body = b"from the second mirror"
    server.add("/m2/pool/x.tar", body)
    bases = f"{server.url('/m1')} {server.url('/m2/')}"
    mirrors = Mirrors(environ={"BOOTSTRAP_MIRRORS_TEST": bases}, config_file=tmp_path / "no")
    fetcher = Fetcher(cache_dir=tmp_path / "cache", mirrors=mirrors, progress=False)
    path = fetcher.download(["mirror://unset/x.tar", "mirror://test/pool/x.tar"], sha256(body))
    assert path.read_bytes() == body


def test_file_urls_and_offline(server: LocalServer, fetcher: Fetcher, tmp_path: Path) -> None:
    body = b"local file"
    local = tmp_path / "local name.txt"
    local.write_bytes(body)
    offline = Fetcher(cache_dir=fetcher.cache_dir, mirrors=fetcher.mirrors, offline=True)
    with pytest.raises(BootstrapError, match=r"^offline: .* is not in the download cache"):
        offline.download(server.add("/net", body), sha256(body))
    assert server.routes["/net"].hits == 0
    path = offline.download(local.as_uri(), sha256(body))
    assert path.read_bytes() == body
    assert offline.download(server.url("/net"), sha256(body)) == path
    with pytest.raises(BootstrapError, match="No such file"):
        fetcher.download((tmp_path / "absent").as_uri(), sha256(b"other"))


def test_unsupported_scheme_and_unset_mirror(fetcher: Fetcher) -> None:
    with pytest.raises(BootstrapError, match="unsupported URL scheme in 'ftp://"):
        fetcher.download("ftp://example.org/x", sha256(b""))
    with pytest.raises(BootstrapError, match="no mirrors configured for mirror://unset/"):
        fetcher.download("mirror://unset/x", sha256(b""))


def test_fetch_many_in_parallel(server: LocalServer, fetcher: Fetcher) -> None:
    bodies = [os.urandom(10_000 + n) for n in range(6)]
    sources = [
        Source.of(server.add(f"/f{n}.tar.gz", body, fail_first=n % 2), sha256(body).sri)
        for n, body in enumerate(bodies)
    ]
    paths = fetcher.fetch_many(sources, jobs=3)
    assert [paths[s].read_bytes() for s in sources] == bodies
    assert sources[0].name == "f0.tar.gz"


def test_fetch_many_names_every_failure(server: LocalServer, fetcher: Fetcher) -> None:
    good = Source.of(server.add("/ok.tar", b"ok"), sha256(b"ok").hex)
    bad = Source.of(server.add("/bad.tar", b"bad"), sha256(b"not bad").hex)
    with pytest.raises(BootstrapError, match=r"^1 of 2 sources failed: cannot fetch bad\.tar"):
        fetcher.fetch_many([good, bad], jobs=2)
    assert (fetcher.cache_dir / sha256(b"ok").hex).read_bytes() == b"ok"


def test_concurrent_fetches_of_one_hash_download_once(
    server: LocalServer, fetcher: Fetcher
) -> None:
    body = os.urandom(500_000)
    url = server.add("/shared", body)
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(fetcher.download(url, sha256(body))))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len(set(results)) == 1
    assert server.routes["/shared"].hits == 1


def test_progress_bar_on_stderr(
    server: LocalServer, fetcher: Fetcher, capsys: pytest.CaptureFixture
) -> None:
    body = os.urandom(100_000)
    url = server.add("/bar.tar", body)
    loud = Fetcher(cache_dir=fetcher.cache_dir, mirrors=fetcher.mirrors, progress=True)
    assert loud.download(url, sha256(body)).read_bytes() == body
    assert "bar.tar" in capsys.readouterr().err


def test_source_forms() -> None:
    hex_form = NINJA.hash.hex
    for text in (hex_form, NINJA.hash.nix32, NINJA.hash.sri, f"sha256:{hex_form}"):
        assert Source.of(NINJA.urls, text).hash == NINJA.hash
    assert NINJA.name == "ninja-build_1.11.1.orig.tar.gz"
    assert Source.of(("http://h/a%2Bb.tgz",), hex_form).name == "a+b.tgz"
    with pytest.raises(BootstrapError, match="invalid characters"):
        Source.of("http://h/a b.tgz", hex_form)
    with pytest.raises(BootstrapError, match="no URLs"):
        Source.of((), hex_form, name="x")
    with pytest.raises(BootstrapError, match="invalid sha256 hash"):
        Source.of("http://h/x", "abc")


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BOOTSTRAP_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("BOOTSTRAP_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "bootstrap" / "downloads"


@pytest.mark.network
def test_real_pin_through_debian_mirror_from_apt_sources() -> None:
    """Downloads (once per machine, into the shared cache) a small orig tarball."""
    path = download(NINJA.urls, NINJA.hash, progress=False)
    assert path.stat().st_size == NINJA_SIZE
    assert path.name == NINJA.hash.hex
