"""Limits on what untrusted input may cost: every one has a documented default, and an
environment variable changes it.

| variable | default | bounds |
|---|---|---|
| `BOOTSTRAP_MAX_DOWNLOAD` | 2G | a download of unpinned size (a pinned one stops at its size) |
| `BOOTSTRAP_MAX_UNPACKED` | 8G | the bytes one archive unpacks to (file contents, tar headers) |
| `BOOTSTRAP_MAX_UNPACK_RATIO` | 100 | unpacked bytes per archive byte, once past 64 MiB |
| `BOOTSTRAP_MAX_DRV_SIZE` | 16M | a `.drv` file read from anywhere |

Sizes are bytes, or a number with a binary suffix: `512K`, `64M`, `2G`, `1T`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from bootstrap.errors import BootstrapError

_UNITS = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}
_SIZE = re.compile(r"(\d+)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)


@dataclass(frozen=True)
class Limit:
    """A limit read from `variable` when set (a size, or a plain count), else `default`."""

    variable: str
    default: int

    def get(self, environ: Mapping[str, str] | None = None) -> int:
        text = (os.environ if environ is None else environ).get(self.variable, "").strip()
        return parse_size(text, self.variable) if text else self.default


MAX_DOWNLOAD = Limit("BOOTSTRAP_MAX_DOWNLOAD", 2 << 30)
MAX_UNPACKED = Limit("BOOTSTRAP_MAX_UNPACKED", 8 << 30)
MAX_UNPACK_RATIO = Limit("BOOTSTRAP_MAX_UNPACK_RATIO", 100)
MAX_DRV_SIZE = Limit("BOOTSTRAP_MAX_DRV_SIZE", 16 << 20)
UNPACK_RATIO_FLOOR = 64 << 20
"""An archive may always unpack to this much, whatever its own size."""


def parse_size(text: str, where: str) -> int:
    """`123`, `64K`, `2G`, `1TiB` (binary multiples) as a number of bytes; at least 1."""
    match = _SIZE.fullmatch(text.strip())
    if match is None or int(match[1]) == 0:
        raise BootstrapError(
            f"{where}: expected a positive size such as 64M or 2G (K, M, G, T are powers of "
            f"1024), found {text!r}"
        )
    return int(match[1]) << _UNITS[match[2].upper()]


def format_size(size: int) -> str:
    """`size` bytes for people: exact in the largest binary unit that divides it."""
    for suffix in ("T", "G", "M", "K"):
        shift = _UNITS[suffix]
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {suffix}iB"
    return f"{size} bytes"
