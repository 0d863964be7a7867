"""`#!` lines of scripts: which interpreter a script names, and under which program name."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

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


def open_no_follow(path: Path) -> BinaryIO:
    """`path` opened for reading, refusing (ELOOP) if it is a symlink: a build output's files
    are read as themselves, never as whatever a builder's link points at."""
    return open(path, "rb", opener=lambda name, flags: os.open(name, flags | os.O_NOFOLLOW))


def read_shebang(path: Path) -> Shebang | None:
    """The `#!` line of `path`, or None if the file does not start with one."""
    with open_no_follow(path) as stream:
        head = stream.read(_READ_LIMIT)
    if not head.startswith(SHEBANG):
        return None
    line = head[2:].split(b"\n", 1)[0].decode("utf-8", "surrogateescape").strip()
    words = line.split(maxsplit=1)
    return Shebang(words[0], words[1] if len(words) > 1 else "") if words else None


def starts_with_shebang(path: Path) -> bool:
    with open_no_follow(path) as stream:
        return stream.read(2) == SHEBANG
