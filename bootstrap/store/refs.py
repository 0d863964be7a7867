"""Finding runtime references: which candidate store paths a tree mentions.

A reference is any occurrence of a candidate's 32-character hash part in the bytes of the
tree's NAR (file contents, symlink targets and names alike), as Nix scans for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bootstrap.storepath import HASH_PART_LENGTH

_RUN = re.compile(rb"[0123456789abcdfghijklmnpqrsvwxyz]{%d,}" % HASH_PART_LENGTH)


class ReferenceScanner:
    """Fed a byte stream in chunks, collects the hash parts of candidates that occur in it."""

    def __init__(self, hash_parts: Iterable[str]) -> None:
        self.wanted = {part.encode() for part in hash_parts}
        self.found: set[str] = set()
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        if not self.wanted:
            return
        data = self._tail + chunk
        for match in _RUN.finditer(data):
            self._check_run(match.group())
        self._tail = data[-(HASH_PART_LENGTH - 1) :]

    def _check_run(self, run: bytes) -> None:
        for start in range(len(run) - HASH_PART_LENGTH + 1):
            window = run[start : start + HASH_PART_LENGTH]
            if window in self.wanted:
                self.found.add(window.decode())
