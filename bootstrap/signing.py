"""Ed25519 signing keys and path signatures in Nix's formats.

A key is written `NAME:BASE64`: a secret key holds 64 bytes (the 32-byte Ed25519 seed, then the
32-byte public key), a public key 32 bytes. A signature is `NAME:BASE64` of the 64-byte Ed25519
signature over a path's fingerprint:

    1;<store path>;<narHash as sha256:nix32>;<narSize>;<references, full paths, sorted, ','>

so a signature made here verifies in Nix and the other way round. The arithmetic is done by the
`cryptography` package, imported only when a key is used.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bootstrap.errors import BootstrapError
from bootstrap.hashing import Hash

SEED_BYTES = 32
PUBLIC_BYTES = 32
SECRET_BYTES = SEED_BYTES + PUBLIC_BYTES
SIGNATURE_BYTES = 64


@dataclass(frozen=True)
class PublicKey:
    name: str
    key: bytes

    def __str__(self) -> str:
        return f"{self.name}:{base64.b64encode(self.key).decode()}"

    @classmethod
    def parse(cls, text: str, origin: str = "public key") -> PublicKey:
        name, key = _split_named(text, origin, PUBLIC_BYTES)
        return cls(name, key)

    def verify(self, signature: bytes, message: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(self.key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SecretKey:
    name: str
    key: bytes  # seed then public key, as Nix stores it

    def __str__(self) -> str:
        return f"{self.name}:{base64.b64encode(self.key).decode()}"

    @classmethod
    def parse(cls, text: str, origin: str = "secret key") -> SecretKey:
        name, key = _split_named(text, origin, SECRET_BYTES)
        secret = cls(name, key)
        if secret.public_key().key != key[SEED_BYTES:]:
            raise BootstrapError(
                f"{origin}: the last 32 bytes are not the public key of the first 32; "
                "expected a key written by `bootstrap key generate` or `nix key generate-secret`"
            )
        return secret

    @classmethod
    def generate(cls, name: str) -> SecretKey:
        _check_name(name, "key name")
        seed = os.urandom(SEED_BYTES)
        return cls(name, seed + _public_from_seed(seed))

    def public_key(self) -> PublicKey:
        return PublicKey(self.name, _public_from_seed(self.key[:SEED_BYTES]))

    def sign(self, message: bytes) -> str:
        """The `NAME:BASE64` signature of `message`."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        signature = Ed25519PrivateKey.from_private_bytes(self.key[:SEED_BYTES]).sign(message)
        return f"{self.name}:{base64.b64encode(signature).decode()}"


def _public_from_seed(seed: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    private = Ed25519PrivateKey.from_private_bytes(seed)
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _check_name(name: str, origin: str) -> None:
    if not name or ":" in name or any(c.isspace() for c in name):
        raise BootstrapError(
            f"{origin}: {name!r} is not a key name; expected a non-empty name without ':' or "
            "spaces, e.g. cache.example.org-1"
        )


def _split_named(text: str, origin: str, size: int) -> tuple[str, bytes]:
    """`NAME:BASE64` -> (NAME, bytes), checking the decoded length."""
    name, colon, body = text.strip().partition(":")
    if not colon:
        raise BootstrapError(f"{origin}: expected NAME:BASE64, found no ':'")
    _check_name(name, origin)
    try:
        raw = base64.b64decode(body, validate=True)
    except ValueError:
        raise BootstrapError(f"{origin}: the part after '{name}:' is not base64") from None
    if len(raw) != size:
        raise BootstrapError(f"{origin}: key '{name}' holds {len(raw)} bytes; expected {size}")
    return name, raw


def read_secret_key(file: Path) -> SecretKey:
    return SecretKey.parse(_read_key_file(file), origin=os.fspath(file))


def read_public_key(file: Path) -> PublicKey:
    return PublicKey.parse(_read_key_file(file), origin=os.fspath(file))


def _read_key_file(file: Path) -> str:
    try:
        return Path(file).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or "not ASCII text"
        raise BootstrapError(f"{file}: cannot read key: {reason}") from None


def write_key_file(file: Path, key: SecretKey | PublicKey, secret: bool) -> None:
    """Write `key` as one line; a secret key file is created 0600 and never replaced."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        fd = os.open(file, flags, 0o600 if secret else 0o644)
    except FileExistsError:
        raise BootstrapError(f"{file}: already exists; refusing to overwrite a key") from None
    except OSError as err:
        raise BootstrapError(f"{file}: cannot create key file: {err.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(f"{key}\n")


def fingerprint(path: str, nar_hash: Hash, nar_size: int, references: Iterable[str]) -> bytes:
    """What a path's signature covers, exactly as Nix builds it."""
    if nar_hash.algo != "sha256":
        raise BootstrapError(f"{path}: cannot sign a {nar_hash.algo} NAR hash; expected sha256")
    refs = ",".join(sorted(references))
    return f"1;{path};sha256:{nar_hash.nix32};{nar_size};{refs}".encode()


def trusted_keys(keys: Iterable[str], origin: str = "trusted public key") -> dict[str, PublicKey]:
    """Public keys in `NAME:BASE64` text form, by name."""
    parsed = [PublicKey.parse(text, origin) for text in keys]
    return {key.name: key for key in parsed}


def signature_valid(signature: str, message: bytes, trusted: Mapping[str, PublicKey]) -> bool:
    """Whether `signature` (`NAME:BASE64`) is a good signature of `message` by a trusted key."""
    name, colon, body = signature.partition(":")
    key = trusted.get(name)
    if not colon or key is None:
        return False
    try:
        raw = base64.b64decode(body, validate=True)
    except ValueError:
        return False
    return len(raw) == SIGNATURE_BYTES and key.verify(raw, message)


def any_signature_valid(
    signatures: Iterable[str], message: bytes, trusted: Mapping[str, PublicKey]
) -> bool:
    return any(signature_valid(sig, message, trusted) for sig in signatures)
