"""Substitution: take valid paths from Nix binary caches instead of building them.

A substituter is a binary cache (`file://DIR` or `http(s)://HOST/...`, the layout `export`
writes and `nix copy --to` writes). For a wanted path the caches are asked in order: the cache's
`nix-cache-info` must name our store dir, then `<hashpart>.narinfo` describes the path. It is
taken only if a trusted key signed it (unless signatures are not checked), after its references
(substituted first). Its NAR is streamed: downloaded (resumed where a connection drops),
decompressed, hashed and counted on the way against FileHash/FileSize and NarHash/NarSize
(reading stops at the first byte past a declared size), restored into a scratch directory, and
only then registered with its signatures. Whatever goes wrong, nothing is registered, one
warning names the cache and the reason, and the next cache (or in the end a local build) is
tried.
"""

from __future__ import annotations

import bz2
import io
import lzma
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from bootstrap.errors import BootstrapError
from bootstrap.fstree import remove_tree
from bootstrap.nar import restore
from bootstrap.narinfo import NarInfo, parse_narinfo
from bootstrap.signing import PublicKey, any_signature_valid
from bootstrap.store import PathInfo, Store
from bootstrap.storepath import split_store_path
from bootstrap.streams import CountingReader

CONNECT_SECONDS = 10
STALL_SECONDS = 30  # no byte for this long: the download is given up
RESUME_ATTEMPTS = 3
_CHUNK = 1 << 17

Warn = Callable[[str], None]


class SubstituteError(BootstrapError):
    """One substituter could not deliver one path; the message says which and why."""


@dataclass(frozen=True)
class SubstituteOptions:
    """Where to look and whom to trust."""

    urls: tuple[str, ...] = ()
    trusted_keys: Mapping[str, PublicKey] = field(default_factory=dict)
    check_signatures: bool = True
    stall_seconds: float = STALL_SECONDS
    jobs: int = 4  # NARs fetched at once


class BinaryCache:
    """One substituter: reads `nix-cache-info`, narinfos and NARs from a URL."""

    def __init__(self, url: str, store_dir: str, stall_seconds: float = STALL_SECONDS) -> None:
        self.url = url.rstrip("/")
        self.store_dir = store_dir
        self.stall_seconds = stall_seconds
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.scheme not in ("file", "http", "https"):
            raise BootstrapError(
                f"substituter {url!r}: scheme {parsed.scheme or '(none)'!r} is not supported; "
                "expected file://, http:// or https://"
            )
        self._local = Path(urllib.parse.unquote(parsed.path)) if parsed.scheme == "file" else None
        self._session = None
        self._checked: bool | None = None

    def __str__(self) -> str:
        return self.url

    # -- transport -----------------------------------------------------------------------
    def _http(self):
        if self._session is None:
            import requests

            self._session = requests.Session()
        return self._session

    def get_text(self, relative: str, limit: int) -> str | None:
        """A small file of the cache, or None if the cache does not have it."""
        chunks, total = [], 0
        try:
            for chunk in self.stream(relative):
                total += len(chunk)
                if total > limit:
                    raise SubstituteError(f"{self.url}/{relative}: larger than {limit} bytes")
                chunks.append(chunk)
        except FileNotFoundError:
            return None
        try:
            return b"".join(chunks).decode("utf-8")
        except UnicodeDecodeError:
            raise SubstituteError(f"{self.url}/{relative}: not UTF-8 text") from None

    def stream(self, relative: str, offset: int = 0) -> Iterator[bytes]:
        """The bytes of one file from `offset`; FileNotFoundError if the cache lacks it."""
        if self._local is not None:
            return _file_chunks(self._local / relative, offset)
        return self._http_chunks(f"{self.url}/{relative}", offset)

    def _http_chunks(self, url: str, offset: int) -> Iterator[bytes]:
        import requests

        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            response = self._http().get(
                url, stream=True, headers=headers, timeout=(CONNECT_SECONDS, self.stall_seconds)
            )
        except requests.RequestException as err:
            raise SubstituteError(f"{url}: {_reason(err)}") from None
        if response.status_code == 404:
            response.close()
            raise FileNotFoundError(url)
        if response.status_code not in (200, 206):
            response.close()
            raise SubstituteError(f"{url}: HTTP {response.status_code} {response.reason}")
        skip = offset if offset and response.status_code == 200 else 0
        return _skipping(_http_body(response, url, self.stall_seconds), skip)

    # -- cache queries -------------------------------------------------------------------
    def check_store_dir(self) -> None:
        """The cache must hold paths of our store dir (checked once per cache)."""
        if self._checked:
            return
        text = self.get_text("nix-cache-info", 65536)
        if text is None:
            raise SubstituteError(f"{self.url}: no nix-cache-info; not a binary cache")
        fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
        if fields.get("StoreDir") != self.store_dir:
            raise SubstituteError(
                f"{self.url}: its StoreDir is {fields.get('StoreDir')!r}, "
                f"expected {self.store_dir!r}"
            )
        self._checked = True

    def narinfo(self, store_path: str) -> NarInfo | None:
        self.check_store_dir()
        hash_part = split_store_path(store_path, self.store_dir)[0]
        name = f"{hash_part}.narinfo"
        text = self.get_text(name, 1 << 20)
        if text is None:
            return None
        info = parse_narinfo(text, self.store_dir, f"{self.url}/{name}")
        if info.store_path != store_path:
            raise SubstituteError(f"{self.url}/{name}: describes {info.store_path}")
        return info

    def nar_chunks(self, info: NarInfo) -> Iterator[bytes]:
        """The compressed NAR, resumed from where a dropped connection stopped."""
        received = 0
        for attempt in range(RESUME_ATTEMPTS + 1):
            try:
                for chunk in self.stream(info.url, received):
                    received += len(chunk)
                    yield chunk
                return
            except FileNotFoundError:
                raise SubstituteError(f"{self.url}/{info.url}: not found") from None
            except _Dropped as dropped:
                if attempt == RESUME_ATTEMPTS:
                    raise SubstituteError(f"{self.url}/{info.url}: {dropped}") from None


class _Dropped(Exception):
    """The connection broke mid-body; the download can resume."""


def _reason(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text[:200]


def _file_chunks(path: Path, offset: int) -> Iterator[bytes]:
    with open(path, "rb") as file:  # FileNotFoundError before the first chunk
        file.seek(offset)
        while chunk := file.read(_CHUNK):
            yield chunk


def _http_body(response, url: str, stall_seconds: float) -> Iterator[bytes]:
    import requests

    with response:
        try:
            yield from response.iter_content(_CHUNK)
        except requests.exceptions.ConnectionError as err:
            if "timed out" in str(err).lower():
                raise SubstituteError(f"{url}: stalled for {stall_seconds:g} s") from None
            raise _Dropped(_reason(err)) from None
        except requests.RequestException as err:
            raise _Dropped(_reason(err)) from None


def _skipping(chunks: Iterator[bytes], skip: int) -> Iterator[bytes]:
    for chunk in chunks:
        if skip >= len(chunk):
            skip -= len(chunk)
            continue
        yield chunk[skip:]
        skip = 0


# -- the checked stream ---------------------------------------------------------------------


def _decompressed(raw: io.RawIOBase, compression: str) -> io.BufferedIOBase | io.RawIOBase:
    buffered = io.BufferedReader(raw, _CHUNK)
    if compression == "xz":
        return lzma.LZMAFile(buffered)
    if compression == "bzip2":
        return bz2.BZ2File(buffered)
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
    return buffered


def _chunks_of(stream) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK):
        yield chunk


def restore_nar(cache: BinaryCache, info: NarInfo, dest: Path) -> None:
    """Stream, decompress and restore one NAR, checking every declared hash and size."""
    where = f"{cache.url}/{info.url}"
    compressed = CountingReader(cache.nar_chunks(info), info.file_size, where)
    try:
        decompressed = _decompressed(compressed, info.compression)
        nar = CountingReader(_chunks_of(decompressed), info.nar_size, f"{where} (NAR)")
        restore(io.BufferedReader(nar, _CHUNK), dest)
        if nar.read(1):
            raise SubstituteError(f"{where}: bytes after the end of the NAR")
        compressed.drain(_CHUNK)  # the rest of the file, so FileHash covers all of it
    except (lzma.LZMAError, OSError, EOFError) as err:
        raise SubstituteError(f"{where}: cannot decompress ({info.compression}): {err}") from None
    _check(where, "NarSize", nar.size, info.nar_size)
    _check(where, "NarHash", nar.digest(), info.nar_hash)
    if info.file_size is not None:
        _check(where, "FileSize", compressed.size, info.file_size)
    if info.file_hash is not None:
        _check(where, "FileHash", compressed.digest(), info.file_hash)


def _check(where: str, field_name: str, actual: object, expected: object) -> None:
    if actual != expected:
        raise SubstituteError(f"{where}: {field_name} is {actual}, the narinfo says {expected}")


# -- substituting ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Planned:
    """A path a cache has, that a trusted key signed, whose references are obtainable."""

    info: NarInfo
    cache: BinaryCache


@dataclass
class Substituter:
    """Substitutes paths into `store` from the caches of `options`.

    Three phases: resolve (narinfos, trust and references, one cache after another, cheap),
    fetch (every NAR of the closure at once, `jobs` at a time, each into its own scratch
    directory; a failed fetch tries the other caches), register (references first).
    """

    store: Store
    options: SubstituteOptions
    warn: Warn = lambda message: None
    origins: dict[str, str] = field(default_factory=dict)  # path -> the cache it came from

    def __post_init__(self) -> None:
        self.caches = [
            BinaryCache(url, self.store.store_dir, self.options.stall_seconds)
            for url in self.options.urls
        ]
        self._unavailable: set[str] = set()

    def substitute(self, paths: Sequence[str]) -> bool:
        """Make every path in `paths` valid from the caches; False if one cannot be."""
        plan: dict[str, _Planned] = {}
        wanted = [p for p in paths if self._resolve(p, (), plan)]
        with self.store.gc_guard(), ExitStack() as scratch:
            trees = {path: scratch.enter_context(self.store.temp_dir("subst")) for path in plan}
            fetched = self._fetch_all(plan, trees)
            for path in plan:  # insertion order is references first
                self._register(path, fetched, trees)
        return len(wanted) == len(paths) and all(self.store.is_valid(p) for p in paths)

    # -- resolve -------------------------------------------------------------------------
    def _resolve(self, path: str, chain: tuple[str, ...], plan: dict[str, _Planned]) -> bool:
        if self.store.is_valid(path) or path in plan:
            return True
        if path in self._unavailable or path in chain:
            return False
        for cache in self.caches:
            if self._resolve_in(cache, path, chain, plan):
                return True
        self._unavailable.add(path)
        return False

    def _resolve_in(self, cache, path, chain, plan) -> bool:
        try:
            info = self._trusted_narinfo(cache, path)
            if info is None:
                return False
            for reference in info.references:
                if reference != path and not self._resolve(reference, (*chain, path), plan):
                    raise SubstituteError(f"{cache}: its reference {reference} is unavailable")
        except BootstrapError as err:
            self._warn(cache, path, err)
            return False
        plan[path] = _Planned(info, cache)
        return True

    def _trusted_narinfo(self, cache: BinaryCache, path: str) -> NarInfo | None:
        info = cache.narinfo(path)
        if info is not None:
            self._check_trust(info)
        return info

    def _check_trust(self, info: NarInfo) -> None:
        if not self.options.check_signatures:
            return
        if not info.signatures:
            raise SubstituteError("the narinfo is not signed")
        if not any_signature_valid(info.signatures, info.fingerprint(), self.options.trusted_keys):
            names = ", ".join(sig.partition(":")[0] for sig in info.signatures)
            raise SubstituteError(f"no valid signature by a trusted key (signed by: {names})")

    def _warn(self, cache: BinaryCache, path: str, err: BaseException) -> None:
        self.warn(f"warning: substituter {cache}: {path}: {err}; trying elsewhere")

    # -- fetch ---------------------------------------------------------------------------
    def _fetch_all(self, plan: dict[str, _Planned], trees: dict[str, Path]) -> dict[str, _Planned]:
        """Restore every planned NAR into its tree, in parallel; what arrived, from where."""
        if not plan:
            return {}
        jobs = max(1, min(self.options.jobs, len(plan)))
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = pool.map(lambda p: (p, self._fetch(plan[p], trees[p])), list(plan))
            return {path: got for path, got in results if got is not None}

    def _fetch(self, planned: _Planned, tree: Path) -> _Planned | None:
        """The planned cache first, then any other with the same references."""
        others = [c for c in self.caches if c is not planned.cache]
        for cache in [planned.cache, *others]:
            try:
                got = planned if cache is planned.cache else self._alternative(cache, planned.info)
                if got is None:
                    continue
                remove_tree(tree)
                restore_nar(got.cache, got.info, tree)
                return got
            except BootstrapError as err:
                self._warn(cache, planned.info.store_path, err)
        return None

    def _alternative(self, cache: BinaryCache, planned: NarInfo) -> _Planned | None:
        info = self._trusted_narinfo(cache, planned.store_path)
        if info is None or info.references != planned.references:
            return None
        return _Planned(info, cache)

    # -- register ------------------------------------------------------------------------
    def _register(self, path: str, fetched: dict[str, _Planned], trees: dict[str, Path]) -> None:
        got = fetched.get(path)
        if got is None:
            return
        missing = [r for r in got.info.references if r != path and not self.store.is_valid(r)]
        if missing:
            self._warn(
                got.cache, path, SubstituteError(f"its reference {missing[0]} did not arrive")
            )
            return
        with self.store.lock(path):
            if self.store.is_valid(path):
                return
            info = got.info
            self.store.register_verified(
                trees[path],
                PathInfo(
                    path,
                    info.nar_hash,
                    info.nar_size,
                    info.references,
                    info.deriver,
                    info.ca,
                    signatures=info.signatures,
                ),
            )
            self.store.db.set_substituted(path, got.cache.url)
        self.origins[path] = got.cache.url
