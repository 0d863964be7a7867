"""Sending store paths to a machine running Nix, over its serve protocol, as
`nix copy --to ssh://` does: ask which paths of the closure the remote lacks, then send each
as a NAR (AddToStoreNar), references first, with its NAR hash, size, references, content
address and signatures. Nix adds each path atomically, so a dropped connection leaves the
remote with only whole paths."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bootstrap.remote.machines import Machine
from bootstrap.remote.serve import ServeConnection
from bootstrap.remote.ssh import serve_session
from bootstrap.store import Store
from bootstrap.store.copy import references_first


@dataclass(frozen=True)
class Sent:
    """What a copy did: the paths sent (references first), how many the remote already had,
    and the NAR bytes sent."""

    paths: tuple[str, ...]
    present: int
    nar_bytes: int


def send_missing(store: Store, connection: ServeConnection, closure: Iterable[str]) -> Sent:
    """Send every path of `closure` (a closed set) the remote lacks, each after its
    references."""
    closure = sorted(closure)
    present = connection.query_valid_paths(closure)
    missing = references_first(store, [path for path in closure if path not in present])
    sent_bytes = 0
    for path in missing:
        info = store.query_info(path)
        connection.add_to_store_nar(
            path,
            "",  # our deriver means nothing there
            info.nar_hash,
            info.references,
            info.nar_size,
            info.ca or "",
            store.real_path(path),
            info.signatures,
        )
        sent_bytes += info.nar_size
    return Sent(tuple(missing), len(present), sent_bytes)


def copy_to_machine(store: Store, paths: Iterable[str], machine: Machine, log_file: Path) -> Sent:
    """Make `paths` and their closure valid on `machine`; ssh's messages go to `log_file`."""
    closure = store.closure(paths)
    with serve_session(machine, log_file) as connection:
        return send_missing(store, connection, closure)
