"""`#!` lines of scripts: which interpreter a script names, and under which program name."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

SHEBANG = b"#!"
MAX_SHEBANG_LENGTH = 255
"""Longest `#!` line Linux reads (BINPRM_BUF_SIZE minus the newline)."""

_READ_LIMIT = 4096


@dataclass(frozen=True)
class Shebang:
    """A parsed `#!` line: `#!/usr/bin/env python3 -u` has interpreter `/usr/bin/env` and
    arguments `python3 -u`."""

    interpreter: str
    arguments: str

    @property
    def line(self) -> str:
        return f"#!{self.interpreter} {self.arguments}".rstrip()

    @property
    def program(self) -> str:
        """The program the script wants: the interpreter's name, or what `env` is asked to run."""
        name = posixpath.basename(self.interpreter)
        words = self.arguments.split()
        if name == "env" and words and not words[0].startswith("-"):
            return words[0]
        return name

    def rerooted(self, program_path: str) -> Shebang:
        """This line pointing straight at `program_path` (dropping `env PROGRAM` indirection)."""
        words = self.arguments.split()
        if posixpath.basename(self.interpreter) == "env" and self.program != "env":
            words = words[1:]
        return Shebang(program_path, " ".join(words))


def read_shebang(path: Path) -> Shebang | None:
    """The `#!` line of `path`, or None if the file does not start with one."""
    with open(path, "rb") as stream:
        head = stream.read(_READ_LIMIT)
    if not head.startswith(SHEBANG):
        return None
    line = head[2:].split(b"\n", 1)[0].decode("utf-8", "surrogateescape").strip()
    words = line.split(maxsplit=1)
    return Shebang(words[0], words[1] if len(words) > 1 else "") if words else None


def starts_with_shebang(path: Path) -> bool:
    with open(path, "rb") as stream:
        return stream.read(2) == SHEBANG
