"""Hashes as Nix writes them: algorithms, nix32 ("base32"), hex and SRI forms.

Pure functions only. `Hash` is the one value type: an algorithm and a digest, printable in
every form Nix accepts and parseable from any of them.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from bootstrap.errors import BootstrapError

NIX32_ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz"
_NIX32_INDEX = {c: i for i, c in enumerate(NIX32_ALPHABET)}

DIGEST_SIZES = {"sha1": 20, "sha256": 32, "sha512": 64}
CHUNK = 1 << 20


def nix32_length(size: int) -> int:
    """Length of the nix32 text of a `size`-byte digest."""
    return (size * 8 - 1) // 5 + 1


def nix32_encode(data: bytes) -> str:
    """Encode bytes in Nix's base32: 5-bit groups, least significant first, printed last first."""
    value = int.from_bytes(data, "little")
    length = nix32_length(len(data))
    return "".join(NIX32_ALPHABET[(value >> (5 * n)) & 31] for n in reversed(range(length)))


def nix32_decode(text: str) -> bytes:
    """Decode Nix base32 text; the byte count follows from the text's length."""
    size = len(text) * 5 // 8
    if nix32_length(size) != len(text):
        raise BootstrapError(f"nix32 text {text!r} has an impossible length {len(text)}")
    value = 0
    for char in text:
        digit = _NIX32_INDEX.get(char)
        if digit is None:
            raise BootstrapError(f"nix32 text {text!r} has an invalid character {char!r}")
        value = (value << 5) | digit
    if value >> (size * 8):
        raise BootstrapError(f"nix32 text {text!r} has non-zero padding bits")
    return value.to_bytes(size, "little")


def compress_hash(digest: bytes, size: int = 20) -> bytes:
    """XOR-fold a digest into `size` bytes, as store path hashes are made."""
    out = bytearray(size)
    for i, byte in enumerate(digest):
        out[i % size] ^= byte
    return bytes(out)


def check_algo(algo: str) -> str:
    if algo not in DIGEST_SIZES:
        raise BootstrapError(f"unknown hash algorithm {algo!r}: expected sha1, sha256 or sha512")
    return algo


class Hash:
    """A digest with its algorithm; immutable, compared and hashed by value.

    A plain class rather than a dataclass: `dataclasses` imports `inspect`, a few
    milliseconds of every `bootstrap hash` and `bootstrap nar` run."""

    __slots__ = ("algo", "digest")
    __match_args__ = ("algo", "digest")
    algo: str
    digest: bytes

    def __init__(self, algo: str, digest: bytes) -> None:
        check_algo(algo)
        if len(digest) != DIGEST_SIZES[algo]:
            raise BootstrapError(f"{algo} digest must be {DIGEST_SIZES[algo]} bytes")
        object.__setattr__(self, "algo", algo)
        object.__setattr__(self, "digest", digest)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Hash is immutable: cannot set {name}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Hash is immutable: cannot delete {name}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Hash):
            return NotImplemented
        return (self.algo, self.digest) == (other.algo, other.digest)

    def __hash__(self) -> int:
        return hash((self.algo, self.digest))

    def __repr__(self) -> str:
        return f"Hash(algo={self.algo!r}, digest={self.digest!r})"

    def __reduce__(self) -> tuple:
        return (Hash, (self.algo, self.digest))

    @property
    def hex(self) -> str:
        return self.digest.hex()

    @property
    def nix32(self) -> str:
        return nix32_encode(self.digest)

    @property
    def sri(self) -> str:
        return f"{self.algo}-{base64.b64encode(self.digest).decode()}"

    def __str__(self) -> str:
        return f"{self.algo}:{self.nix32}"

    @classmethod
    def parse(cls, text: str, algo: str | None = None) -> Hash:
        """Parse `algo:digest`, an SRI `algo-base64`, or a bare hex/nix32/base64 digest.

        A bare digest needs `algo`; its form is told by its length, as Nix does.
        """
        text = text.strip()
        if "-" in text and text.split("-", 1)[0] in DIGEST_SIZES:
            prefix, body = text.split("-", 1)
            return cls._from_text(prefix, body, text, base64_only=True)
        if ":" in text:
            prefix, body = text.split(":", 1)
            return cls._from_text(check_algo(prefix), body, text)
        if algo is None:
            raise BootstrapError(f"hash {text!r} names no algorithm: write e.g. sha256:{text}")
        return cls._from_text(check_algo(algo), text, text)

    @classmethod
    def _from_text(cls, algo: str, body: str, original: str, base64_only: bool = False) -> Hash:
        size = DIGEST_SIZES[check_algo(algo)]
        try:
            if not base64_only and len(body) == size * 2:
                return cls(algo, bytes.fromhex(body))
            if not base64_only and len(body) == nix32_length(size):
                return cls(algo, nix32_decode(body))
            if len(body) == 4 * ((size + 2) // 3):
                digest = base64.b64decode(body, validate=True)
                if len(digest) == size:
                    return cls(algo, digest)
        except (ValueError, BootstrapError):
            pass
        raise BootstrapError(
            f"invalid {algo} hash {original!r}: expected {size * 2} hex digits, "
            f"{nix32_length(size)} nix32 characters or SRI base64"
        )


def hash_bytes(algo: str, data: bytes) -> Hash:
    return Hash(algo, hashlib.new(check_algo(algo), data).digest())


def hash_file(algo: str, path: Path) -> Hash:
    """Hash a file's contents (a 'flat' hash), streaming."""
    hasher = hashlib.new(check_algo(algo))
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK):
            hasher.update(chunk)
    return Hash(algo, hasher.digest())
