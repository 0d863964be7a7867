"""Fixed-output downloads: fetch a file by its hash into a shared, content-addressed cache.

A source is a list of URLs and the hash of the bytes they serve; the hash is the identity, the
URLs only say where to look. Each file lands in the download cache as `<sha256 hex>` (other
algorithms: `<algo>-<hex>`) only after its hash was verified; while downloading it is
`<key>.part`, so an interrupted download resumes with an HTTP Range request. A `<key>.lock`
file serialises processes fetching the same hash, so machines and test runs share one cache.
A cached file is hashed again whenever it is used: one that no longer matches is moved aside
to `<key>.corrupt`, with a warning, and fetched again.

No URL may send more than the source's pinned size, or `BOOTSTRAP_MAX_DOWNLOAD` bytes (2 GiB)
when the size is not pinned (`bootstrap.limits`).

URL schemes: http, https, file and `mirror://NAME/path` (see `bootstrap.mirrors`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from bootstrap.errors import BootstrapError
from bootstrap.hashing import Hash, hash_file
from bootstrap.limits import MAX_DOWNLOAD, format_size
from bootstrap.mirrors import Mirrors
from bootstrap.storepath import validate_name

if TYPE_CHECKING:  # requests, urllib3 and tqdm load only when something is downloaded
    import requests

log = logging.getLogger(__name__)

CHUNK = 1 << 16
NETWORK_SCHEMES = ("http", "https")
# HTTP statuses that will not change on retry: go to the next URL at once.
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 405, 410, 451})


def default_cache_dir() -> Path:
    """`$BOOTSTRAP_CACHE_DIR`, else `$XDG_CACHE_HOME/bootstrap/downloads` (~/.cache by default)."""
    if explicit := os.environ.get("BOOTSTRAP_CACHE_DIR"):
        return Path(explicit)
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "bootstrap" / "downloads"


def url_basename(url: str) -> str:
    return unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])


@dataclass(frozen=True)
class Source:
    """A fixed-output source: the bytes with hash `hash`, found at any of `urls`; `size`, if
    pinned, is their length, and no URL may send more."""

    name: str
    urls: tuple[str, ...]
    hash: Hash
    size: int | None = None

    def __post_init__(self) -> None:
        if not self.urls:
            raise BootstrapError(f"source {self.name!r} has no URLs")
        validate_name(self.name)

    @classmethod
    def of(
        cls,
        urls: str | Iterable[str],
        hash_: Hash | str,
        name: str | None = None,
        size: int | None = None,
    ) -> Source:
        """Build a source; `hash_` may be text (`sha256:...`, SRI, or bare sha256 hex/nix32)
        and `name` defaults to the first URL's file name."""
        url_tuple = (urls,) if isinstance(urls, str) else tuple(urls)
        if not url_tuple:
            raise BootstrapError(f"source {name or '?'} has no URLs")
        parsed = hash_ if isinstance(hash_, Hash) else Hash.parse(hash_, "sha256")
        return cls(name or url_basename(url_tuple[0]), url_tuple, parsed, size)


class _UrlFailed(Exception):
    """One URL could not deliver the file; the message says why. Internal: try the next URL."""


@dataclass(frozen=True)
class _Wanted:
    """What one download must deliver: the bytes with `hash`, at most `limit` of them."""

    name: str
    hash: Hash
    limit: int
    pinned: bool  # `limit` is the file's pinned size, not the general maximum

    def check_size(self, url: str, size: int) -> None:
        """Refuse a body longer than `limit`."""
        if size > self.limit:
            what = "its pinned size" if self.pinned else "BOOTSTRAP_MAX_DOWNLOAD"
            raise _TooBig(f"{url}: sends more than {format_size(self.limit)} ({what})")


class _TooBig(_UrlFailed):
    """A URL sent more bytes than allowed: what arrived is deleted, never resumed."""


def progress_wanted(progress: bool | None) -> bool:
    """An explicit choice wins; else `$BOOTSTRAP_PROGRESS` (0/1); else only on a terminal."""
    if progress is not None:
        return progress
    if (setting := os.environ.get("BOOTSTRAP_PROGRESS")) is not None:
        return setting not in ("", "0", "no", "false")
    return sys.stderr.isatty()


@dataclass(frozen=True)
class Fetcher:
    """Downloads into the cache. Defaults read the real host (env, mirrors config, apt)."""

    cache_dir: Path = field(default_factory=default_cache_dir)
    mirrors: Mirrors = field(default_factory=Mirrors)
    offline: bool = False
    progress: bool | None = None
    attempts: int = 4
    backoff: float = 1.0
    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    max_download: int = field(default_factory=MAX_DOWNLOAD.get)  # when no size is pinned

    def cache_path(self, expected: Hash) -> Path:
        key = expected.hex if expected.algo == "sha256" else f"{expected.algo}-{expected.hex}"
        return self.cache_dir / key

    def fetch(self, source: Source) -> Path:
        return self.download(source.urls, source.hash, name=source.name, size=source.size)

    def download(
        self, urls: str | Iterable[str], expected: Hash, name: str = "", size: int | None = None
    ) -> Path:
        """Return the cache file holding the bytes with hash `expected`, fetching if needed.

        `size` is the pinned length of the file, if known: no URL may send more.
        """
        url_tuple = (urls,) if isinstance(urls, str) else tuple(urls)
        name = name or (url_basename(url_tuple[0]) if url_tuple else "?")
        final = self.cache_path(expected)
        if self.cached(expected, name) is not None:
            return final
        limit = self.max_download if size is None else size
        wanted = _Wanted(name, expected, limit, pinned=size is not None)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with _locked(_lock_path(final)):
            if final.is_file():  # another process fetched (and verified) it meanwhile
                return final
            failures = self._download_locked(url_tuple, wanted, final)
        if final.is_file():
            return final
        raise BootstrapError(self._failure_message(name, expected, final, failures))

    def cached(self, expected: Hash, name: str = "") -> Path | None:
        """The cache file for `expected` if it is there and still has that hash. A file that
        no longer does is moved aside to `<key>.corrupt`, with a warning, and None returned."""
        final = self.cache_path(expected)
        if not final.is_file():
            return None
        if hash_file(expected.algo, final) == expected:
            return final
        with _locked(_lock_path(final)):  # another process may be replacing it: look again
            if not final.is_file():
                return None
            actual = hash_file(expected.algo, final)
            if actual == expected:
                return final
            aside = final.with_name(final.name + ".corrupt")
            os.replace(final, aside)
        log.warning(
            "%s: the cached file no longer matches %s:%s (it hashes to %s): moved to %s, "
            "fetching it again",
            name or final.name,
            expected.algo,
            expected.hex,
            actual.hex,
            aside,
        )
        return None

    def _failure_message(self, name: str, expected: Hash, final: Path, failures: list) -> str:
        what = f"{name} ({expected.algo}:{expected.hex})"
        if not failures and self.offline:
            return f"offline: {what} is not in the download cache {final.parent}"
        return f"cannot fetch {what}: " + "; ".join(failures or ["no URLs"])

    def _download_locked(self, urls: tuple[str, ...], wanted: _Wanted, final: Path) -> list[str]:
        """Try every candidate URL until one delivers verified bytes; return the failures."""
        part = final.with_name(final.name + ".part")
        failures: list[str] = []
        for url in urls:
            for candidate in self._candidates(url, failures):
                try:
                    self._fetch_verified(candidate, wanted, part)
                except _UrlFailed as failure:
                    if isinstance(failure, _TooBig):
                        part.unlink(missing_ok=True)
                    log.warning("%s", failure)
                    failures.append(str(failure))
                    continue
                os.replace(part, final)
                return failures
        return failures

    def _candidates(self, url: str, failures: list[str]) -> tuple[str, ...]:
        """The URLs to try for `url`: one per mirror, network ones skipped when offline.
        A mirror list that cannot be resolved is recorded in `failures`."""
        try:
            resolved = self.mirrors.resolve(url)
        except BootstrapError as error:
            failures.append(str(error))
            return ()
        for candidate in resolved:
            if urlsplit(candidate).scheme not in (*NETWORK_SCHEMES, "file"):
                raise BootstrapError(
                    f"unsupported URL scheme in {candidate!r}: expected http, https, file or mirror"
                )
        if self.offline:
            return tuple(c for c in resolved if urlsplit(c).scheme not in NETWORK_SCHEMES)
        return resolved

    def _fetch_verified(self, url: str, wanted: _Wanted, part: Path) -> None:
        """Fetch `url` into `part` and verify it; a resumed file that fails is fetched afresh."""
        resumed = _size(part) > 0
        self._fetch_one(url, wanted, part)
        expected = wanted.hash
        actual = hash_file(expected.algo, part)
        if actual == expected:
            return
        part.unlink()
        if resumed:
            self._fetch_one(url, wanted, part)
            actual = hash_file(expected.algo, part)
            if actual == expected:
                return
            part.unlink()
        raise _UrlFailed(
            f"hash mismatch for {url}: expected {expected.algo}:{expected.hex}, "
            f"got {actual.algo}:{actual.hex}"
        )

    def _fetch_one(self, url: str, wanted: _Wanted, part: Path) -> None:
        if urlsplit(url).scheme == "file":
            _copy_local(url, wanted, part)
        else:
            self._fetch_http(url, wanted, part)

    def _fetch_http(self, url: str, wanted: _Wanted, part: Path) -> None:
        """Download `url` into `part`, resuming what is there. Retry with exponential back-off;
        only attempts that added no bytes count against `attempts`."""
        import requests
        import urllib3

        last_error, failed = "", 0
        with requests.Session() as session:
            while failed < self.attempts:
                before = _size(part)
                try:
                    self._http_attempt(session, url, wanted, part)
                    return
                except (requests.RequestException, urllib3.exceptions.HTTPError, _Incomplete) as e:
                    last_error = _one_line(e)
                if _size(part) <= before:
                    failed += 1
                    if failed < self.attempts:
                        time.sleep(self.backoff * 2 ** (failed - 1))
        raise _UrlFailed(f"{url}: {last_error} (after {self.attempts} attempts)")

    def _http_attempt(
        self, session: requests.Session, url: str, wanted: _Wanted, part: Path
    ) -> None:
        offset = _size(part)
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        timeout = (self.connect_timeout, self.read_timeout)
        with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
            if offset and response.status_code == 416:
                return  # nothing left to send: the partial file is whole (or wrong; hashing tells)
            if response.status_code in PERMANENT_STATUSES:
                raise _UrlFailed(f"{url}: HTTP {response.status_code} {response.reason}")
            response.raise_for_status()
            offset = _resume_offset(response, offset, part)
            length = response.headers.get("Content-Length", "")
            total = offset + int(length) if length.isdigit() else None
            wanted.check_size(url, total or 0)
            with open(part, "r+b" if offset else "wb") as out:
                out.seek(offset)
                out.truncate()
                received = self._copy_body(response, out, url, wanted, offset, total)
        if total is not None and received < total:
            raise _Incomplete(f"connection closed after {received} of {total} bytes")

    def _copy_body(
        self,
        response: requests.Response,
        out: IO[bytes],
        url: str,
        wanted: _Wanted,
        offset: int,
        total: int | None,
    ) -> int:
        received = offset
        from tqdm import tqdm

        bar = tqdm(
            total=total,
            initial=offset,
            desc=wanted.name,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            leave=False,
            disable=not progress_wanted(self.progress),
        )
        with bar:
            for chunk in response.raw.stream(CHUNK, decode_content=False):
                received += len(chunk)
                wanted.check_size(url, received)
                out.write(chunk)
                bar.update(len(chunk))
        return received

    def fetch_many(self, sources: Iterable[Source], jobs: int = 4) -> dict[Source, Path]:
        """Fetch many sources with `jobs` parallel workers; raise one error naming all failures."""
        unique = list(dict.fromkeys(sources))
        results: dict[Source, Path] = {}
        failures: list[str] = []
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {source: pool.submit(self.fetch, source) for source in unique}
            for source, future in futures.items():
                try:
                    results[source] = future.result()
                except BootstrapError as error:
                    failures.append(str(error))
        if failures:
            raise BootstrapError(
                f"{len(failures)} of {len(unique)} sources failed: " + "; ".join(failures)
            )
        return results


class _Incomplete(Exception):
    """The server closed the connection before the whole body arrived: retry and resume."""


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _resume_offset(response: requests.Response, offset: int, part: Path) -> int:
    """Where the body starts: `offset` for a matching 206 answer, else 0 (a whole file)."""
    if response.status_code != 206:
        return 0
    content_range = response.headers.get("Content-Range", "")
    if not content_range.startswith(f"bytes {offset}-"):
        part.unlink(missing_ok=True)
        raise _Incomplete(f"asked for bytes {offset}- but got range {content_range!r}")
    return offset


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _copy_local(url: str, wanted: _Wanted, part: Path) -> None:
    path = Path(
        unquote(unquote(urlsplit(url).path))
    )  # as url2pathname on POSIX, without urllib.request
    try:
        with open(path, "rb") as source, open(part, "wb") as out:
            copied = 0
            while chunk := source.read(CHUNK):
                copied += len(chunk)
                wanted.check_size(url, copied)
                out.write(chunk)
    except OSError as error:
        part.unlink(missing_ok=True)
        raise _UrlFailed(f"{url}: {error.strerror or error}") from None


def _lock_path(final: Path) -> Path:
    return final.with_name(final.name + ".lock")


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `lock_path` (shared across processes and threads)."""
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def download(
    urls: str | Iterable[str],
    expected: Hash,
    *,
    offline: bool = False,
    progress: bool | None = None,
    name: str = "",
) -> Path:
    """Return the verified cache file for `expected`, fetching it from `urls` if needed.

    Uses the default cache and the host's mirror configuration; build a `Fetcher` for more.
    """
    return Fetcher(offline=offline, progress=progress).download(urls, expected, name=name)


def fetch_many(
    sources: Iterable[Source], *, jobs: int = 4, offline: bool = False, progress: bool | None = None
) -> dict[Source, Path]:
    """Fetch many sources in parallel with the default cache and mirrors."""
    return Fetcher(offline=offline, progress=progress).fetch_many(sources, jobs)
