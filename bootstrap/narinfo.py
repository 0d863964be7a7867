"""The `.narinfo` files of a Nix binary cache, read strictly.

A narinfo tells a substituter what a store path is (NarHash, NarSize, References, Deriver, CA),
where its compressed NAR lies (URL, Compression, FileHash, FileSize) and who vouches for it
(`Sig:` lines). Every field is checked here, so code downstream can trust the types: the URL
stays inside the cache, references are store paths of the same store dir, sizes are numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from bootstrap.errors import BootstrapError
from bootstrap.hashing import Hash
from bootstrap.signing import fingerprint
from bootstrap.storepath import split_store_path

COMPRESSIONS = ("xz", "zstd", "bzip2", "none")
MAX_NARINFO_BYTES = 1 << 20
_REQUIRED = ("StorePath", "URL", "NarHash", "NarSize")
_SINGLE = frozenset(
    {"StorePath", "URL", "Compression", "FileHash", "FileSize", "NarHash", "NarSize"}
    | {"References", "Deriver", "CA", "System"}
)


@dataclass(frozen=True)
class NarInfo:
    store_path: str
    url: str
    compression: str
    nar_hash: Hash
    nar_size: int
    references: tuple[str, ...] = ()
    file_hash: Hash | None = None
    file_size: int | None = None
    deriver: str | None = None
    ca: str | None = None
    signatures: tuple[str, ...] = ()

    def fingerprint(self) -> bytes:
        return fingerprint(self.store_path, self.nar_hash, self.nar_size, self.references)


def parse_narinfo(text: str, store_dir: str, origin: str) -> NarInfo:
    """Parse and check a narinfo; `origin` (its URL) names it in errors."""
    fields, signatures = _fields(text, origin)
    for name in _REQUIRED:
        if name not in fields:
            raise BootstrapError(f"{origin}: field {name} is missing")

    def store_path(value: str, field: str) -> str:
        try:
            split_store_path(value, store_dir)
        except BootstrapError:
            raise BootstrapError(
                f"{origin}: {field} {value!r} is not a store path in {store_dir}"
            ) from None
        return value

    def basename_path(name: str, field: str) -> str:
        if "/" in name:
            raise BootstrapError(f"{origin}: {field} {name!r} must be a bare store path name")
        return store_path(f"{store_dir}/{name}", field)

    deriver = fields.get("Deriver")
    return NarInfo(
        store_path=store_path(fields["StorePath"], "StorePath"),
        url=_relative_url(fields["URL"], origin),
        compression=_compression(fields.get("Compression", "bzip2"), origin),
        nar_hash=_hash(fields["NarHash"], "NarHash", origin),
        nar_size=_size(fields["NarSize"], "NarSize", origin),
        references=tuple(
            sorted(basename_path(r, "reference") for r in fields.get("References", "").split())
        ),
        file_hash=_hash(fields["FileHash"], "FileHash", origin) if "FileHash" in fields else None,
        file_size=_size(fields["FileSize"], "FileSize", origin) if "FileSize" in fields else None,
        deriver=basename_path(deriver, "Deriver")
        if deriver and deriver != "unknown-deriver"
        else None,
        ca=fields.get("CA") or None,
        signatures=tuple(signatures),
    )


def _fields(text: str, origin: str) -> tuple[dict[str, str], list[str]]:
    if len(text) > MAX_NARINFO_BYTES:
        raise BootstrapError(f"{origin}: {len(text)} bytes; a narinfo is at most 1 MiB")
    fields: dict[str, str] = {}
    signatures: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        key, colon, value = line.partition(": ")
        if not colon:
            raise BootstrapError(f"{origin}: line {number} is not 'Key: value'")
        if key == "Sig":
            signatures.append(value)
        elif key in fields and key in _SINGLE:
            raise BootstrapError(f"{origin}: field {key} appears twice")
        else:
            fields[key] = value
    return fields, signatures


def _relative_url(url: str, origin: str) -> str:
    """The NAR's URL must be a plain relative path inside the cache."""
    pure = PurePosixPath(url)
    if not url or "://" in url or pure.is_absolute() or ".." in pure.parts or "\\" in url:
        raise BootstrapError(
            f"{origin}: URL {url!r} leaves the cache; expected a relative path such as nar/X.nar.xz"
        )
    return url


def _compression(value: str, origin: str) -> str:
    if value not in COMPRESSIONS:
        raise BootstrapError(
            f"{origin}: Compression {value!r} is not supported; expected one of "
            + ", ".join(COMPRESSIONS)
        )
    return value


def _hash(value: str, field: str, origin: str) -> Hash:
    try:
        parsed = Hash.parse(value)
    except BootstrapError:
        raise BootstrapError(f"{origin}: {field} {value!r} is not a hash") from None
    if parsed.algo != "sha256":
        raise BootstrapError(f"{origin}: {field} is {parsed.algo}; expected sha256")
    return parsed


def _size(value: str, field: str, origin: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise BootstrapError(f"{origin}: {field} {value!r} is not a size in bytes")
    return int(value)
