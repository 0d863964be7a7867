"""Remote builders in Nix's machine syntax (nix.conf `builders`, `/etc/nix/machines`).

One machine per line (or separated by `;`):

    URI [system[,system...] [ssh-key [max-jobs [speed-factor [supported-features
        [mandatory-features [base64-host-key]]]]]]]

`-` (or a missing field) is the default: the local system, no key (ssh's own), 1 job, speed 1,
no features, no host key (ssh's known hosts). Features are comma-separated. `#` starts a
comment. An entry `@FILE` reads machines from FILE. `URI` is `ssh://[user@]host[:port]`, with
the query parameters Nix accepts: `remote-program` (default `nix-store`, run with
`--serve --write`) and `remote-store` (passed as `--store`).

Every error is one line naming the origin, the machine and the field.
"""

from __future__ import annotations

import base64
import binascii
import math
import platform
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bootstrap.errors import BootstrapError

FIELDS = (
    "URI",
    "system",
    "ssh-key",
    "max-jobs",
    "speed-factor",
    "supported-features",
    "mandatory-features",
    "host key",
)
_QUERY_KEYS = frozenset({"remote-program", "remote-store"})
# a store URI (`copy --to`) also names the key and the host key, as Nix's ssh store takes them
_STORE_URI_KEYS = _QUERY_KEYS | {"ssh-key", "base64-ssh-public-host-key"}
_HOST = re.compile(r"[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]")
_USER = re.compile(r"[A-Za-z0-9._-]+")


def local_system() -> str:
    """Nix's name for this machine's system, e.g. `x86_64-linux`."""
    return f"{platform.machine()}-{platform.system().lower()}"


@dataclass(frozen=True)
class Machine:
    """One remote builder."""

    uri: str
    user: str | None
    host: str
    port: int | None
    remote_program: str = "nix-store"
    remote_store: str | None = None
    systems: tuple[str, ...] = ()
    ssh_key: str | None = None
    max_jobs: int = 1
    speed_factor: float = 1.0
    supported_features: frozenset[str] = frozenset()
    mandatory_features: frozenset[str] = frozenset()
    host_key: str | None = None  # a known_hosts key, e.g. `ssh-ed25519 AAAA...`

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def fits(self, system: str, features: Iterable[str]) -> bool:
        """Whether a derivation for `system` requiring `features` may build here (as Nix
        decides: the system is one of ours, every required feature is supported or
        mandatory, and every mandatory feature is required)."""
        features = frozenset(features)
        return (
            system in self.systems
            and features <= self.supported_features | self.mandatory_features
            and self.mandatory_features <= features
        )


def parse_machines(spec: str, origin: str = "builders") -> list[Machine]:
    """Every machine of a `builders` value; `@FILE` entries are read from FILE."""
    machines: list[Machine] = []
    for entry in _entries(spec):
        if entry.startswith("@"):
            machines.extend(_read_file(Path(entry[1:]), origin))
        else:
            machines.append(parse_machine(entry, f"{origin}: machine {len(machines) + 1}"))
    return machines


def _entries(spec: str) -> list[str]:
    lines = [line.split("#", 1)[0] for line in spec.splitlines()]
    return [e.strip() for line in lines for e in line.split(";") if e.strip()]


def _read_file(path: Path, origin: str) -> list[Machine]:
    try:
        text = path.read_text()
    except OSError as err:
        raise BootstrapError(f"{origin}: cannot read {path}: {err.strerror}") from None
    machines = []
    for entry in _entries(text):
        if entry.startswith("@"):
            raise BootstrapError(f"{path}: {entry}: a machines file cannot include another")
        machines.append(parse_machine(entry, f"{path}: machine {len(machines) + 1}"))
    return machines


def parse_machine(entry: str, where: str) -> Machine:
    """One machine line; `where` names it in errors."""
    words = entry.split()
    if len(words) > len(FIELDS):
        raise BootstrapError(
            f"{where}: {len(words)} fields; expected at most {len(FIELDS)} ({' '.join(FIELDS)})"
        )
    fields = dict(zip(FIELDS, words + ["-"] * (len(FIELDS) - len(words)), strict=True))
    where = f"{where} ({words[0]})"
    user, host, port, query = _parse_uri(fields["URI"], where, _QUERY_KEYS)
    value = {k: (None if v == "-" else v) for k, v in fields.items()}
    return Machine(
        uri=fields["URI"],
        user=user,
        host=host,
        port=port,
        remote_program=query.get("remote-program", "nix-store"),
        remote_store=query.get("remote-store"),
        systems=tuple((value["system"] or local_system()).split(",")),
        ssh_key=value["ssh-key"],
        max_jobs=_number(value["max-jobs"], 1, int, "max-jobs", where),
        speed_factor=_number(value["speed-factor"], 1.0, float, "speed-factor", where),
        supported_features=_features(value["supported-features"]),
        mandatory_features=_features(value["mandatory-features"]),
        host_key=_host_key(value["host key"], where),
    )


def parse_store_uri(uri: str, where: str) -> Machine:
    """A machine named by a store URI, as `nix copy --to` takes it:
    `ssh://[user@]host[:port]` with `remote-program`, `remote-store`, `ssh-key` and
    `base64-ssh-public-host-key` as query parameters."""
    user, host, port, query = _parse_uri(uri, where, _STORE_URI_KEYS)
    return Machine(
        uri=uri,
        user=user,
        host=host,
        port=port,
        remote_program=query.get("remote-program", "nix-store"),
        remote_store=query.get("remote-store"),
        systems=(local_system(),),
        ssh_key=query.get("ssh-key"),
        host_key=_host_key(query.get("base64-ssh-public-host-key"), where),
    )


def _parse_uri(
    uri: str, where: str, known_keys: frozenset[str]
) -> tuple[str | None, str, int | None, dict[str, str]]:
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme != "ssh" or not parsed.netloc:
        raise BootstrapError(
            f"{where}: URI must be ssh://[user@]host[:port] (the serve protocol); got {uri!r}"
        )
    if parsed.path not in ("", "/") or parsed.fragment:
        raise BootstrapError(f"{where}: URI must have no path or fragment; got {uri!r}")
    user, _, hostport = parsed.netloc.rpartition("@")
    host, port = _split_port(hostport, where)
    if (user and not _USER.fullmatch(user)) or not _HOST.fullmatch(host):
        raise BootstrapError(f"{where}: URI has an invalid user or host; got {parsed.netloc!r}")
    query = {}
    for key, value in urllib.parse.parse_qsl(parsed.query, keep_blank_values=True):
        if key not in known_keys:
            raise BootstrapError(
                f"{where}: URI parameter {key!r} is not supported; expected "
                + " or ".join(sorted(known_keys))
            )
        if not value:
            raise BootstrapError(f"{where}: URI parameter {key!r} is empty")
        query[key] = value
    return user or None, host, port, query


def _split_port(hostport: str, where: str) -> tuple[str, int | None]:
    host, colon, port = hostport.rpartition(":")
    if not colon or hostport.endswith("]"):
        return hostport, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise BootstrapError(f"{where}: URI port must be 1-65535; got {port!r}")
    return host, int(port)


def _number(text: str | None, default, kind, field_name: str, where: str):
    if text is None:
        return default
    try:
        number = kind(text)
    except ValueError:
        number = None
    if number is None or not math.isfinite(number) or number <= 0:
        what = "a positive whole number" if kind is int else "a positive number"
        raise BootstrapError(f"{where}: field {field_name} must be {what}; got {text!r}")
    return number


def _features(text: str | None) -> frozenset[str]:
    return frozenset(f for f in (text or "").split(",") if f)


def _host_key(text: str | None, where: str) -> str | None:
    """The base64 field decodes to a known_hosts key (`TYPE BASE64`), as Nix writes it."""
    if text is None:
        return None
    try:
        key = base64.b64decode(text, validate=True).decode("ascii").strip()
    except (binascii.Error, UnicodeDecodeError):
        key = ""
    parts = key.split()
    if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
        raise BootstrapError(
            f"{where}: field host key must be base64 of an ssh public key line "
            "(`base64 -w0 /etc/ssh/ssh_host_ed25519_key.pub`)"
        )
    return " ".join(parts[:2])
