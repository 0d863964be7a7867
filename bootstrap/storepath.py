"""Store paths: names, hash parts and how Nix computes them from a fingerprint.

A store path is `<store_dir>/<nix32 of the 20-byte folded sha256 of a fingerprint>-<name>`.
The store directory is a parameter everywhere, so paths computed for `/nix/store` equal Nix's.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from bootstrap.errors import BootstrapError
from bootstrap.hashing import Hash, compress_hash, hash_bytes, nix32_encode

DEFAULT_STORE_DIR = "/bootstrap/store"
HASH_PART_LENGTH = 32
MAX_NAME_LENGTH = 211
_NAME_RE = re.compile(r"[A-Za-z0-9+\-._?=]+")
_HASH_PART_RE = re.compile(r"[0123456789abcdfghijklmnpqrsvwxyz]{32}")


def validate_name(name: str) -> str:
    """Check a store path name as Nix does; return it unchanged."""
    if not name:
        raise BootstrapError("store path name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise BootstrapError(f"store path name {name[:40]!r}... is longer than {MAX_NAME_LENGTH}")
    if name.startswith("."):
        raise BootstrapError(f"store path name {name!r} must not start with '.'")
    if not _NAME_RE.fullmatch(name):
        raise BootstrapError(
            f"store path name {name!r} has invalid characters: allowed are A-Z a-z 0-9 +-._?="
        )
    return name


def validate_store_dir(store_dir: str) -> str:
    if not store_dir.startswith("/") or store_dir.endswith("/") or "//" in store_dir:
        raise BootstrapError(f"store directory {store_dir!r} must be absolute with no trailing /")
    return store_dir


def make_store_path(kind: str, inner: Hash, name: str, store_dir: str) -> str:
    """The store path for fingerprint `<kind>:sha256:<inner hex>:<store_dir>:<name>`."""
    fingerprint = f"{kind}:sha256:{inner.hex}:{validate_store_dir(store_dir)}:{validate_name(name)}"
    digest = compress_hash(hashlib.sha256(fingerprint.encode()).digest())
    return f"{store_dir}/{nix32_encode(digest)}-{name}"


def _with_references(kind: str, references: Iterable[str], self_reference: bool = False) -> str:
    parts = [kind, *sorted(references)]
    if self_reference:
        parts.append("self")
    return ":".join(parts)


def source_path(
    nar_hash: Hash,
    name: str,
    store_dir: str,
    references: Iterable[str] = (),
    self_reference: bool = False,
) -> str:
    """Path of content added from the file system (`nix-store --add`): recursive sha256."""
    kind = _with_references("source", references, self_reference)
    return make_store_path(kind, nar_hash, name, store_dir)


def text_path(content: bytes, name: str, store_dir: str, references: Iterable[str] = ()) -> str:
    """Path of a text file such as a .drv (`builtins.toFile`)."""
    inner = hash_bytes("sha256", content)
    return make_store_path(_with_references("text", references), inner, name, store_dir)


def fixed_output_path(hash_: Hash, name: str, store_dir: str, recursive: bool = False) -> str:
    """Path of a fixed output (a download or a fixed-output derivation's `out`)."""
    if recursive and hash_.algo == "sha256":
        return make_store_path("source", hash_, name, store_dir)
    method = "r:" if recursive else ""
    inner = hashlib.sha256(f"fixed:out:{method}{hash_.algo}:{hash_.hex}:".encode()).digest()
    return make_store_path("output:out", Hash("sha256", inner), name, store_dir)


def output_path(drv_hash_modulo: Hash, output: str, name: str, store_dir: str) -> str:
    """Path of an input-addressed derivation output (`name` gets `-<output>` unless `out`)."""
    full_name = name if output == "out" else f"{name}-{output}"
    return make_store_path(f"output:{output}", drv_hash_modulo, full_name, store_dir)


def split_store_path(path: str, store_dir: str) -> tuple[str, str]:
    """Split `<store_dir>/<hash>-<name>[/sub]` into (hash part, name); reject anything else."""
    prefix = validate_store_dir(store_dir) + "/"
    if not path.startswith(prefix):
        raise BootstrapError(f"{path!r} is not in the store {store_dir}")
    base = path[len(prefix) :].split("/", 1)[0]
    hash_part, sep, name = base.partition("-")
    if not sep or not _HASH_PART_RE.fullmatch(hash_part):
        raise BootstrapError(f"{path!r} is not a store path: expected <32-char hash>-<name>")
    validate_name(name)
    return hash_part, name


def to_store_path(path: str, store_dir: str) -> str:
    """The top-level store path containing `path` (which may point inside it)."""
    hash_part, name = split_store_path(path, store_dir)
    return f"{store_dir}/{hash_part}-{name}"
