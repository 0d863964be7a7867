"""What a derivation asks of the builder beyond running its command, in one typed place.

A derivation carries these requests as environment variables (as Nix's derivation options
do), so they are part of its hash. `DrvOptions.to_env` writes them (the recipe evaluator) and
`DrvOptions.from_env` reads them back (the builder); no other module knows the keys.

- `fixupInterpreter`: the loader the fix-up gives dynamic outputs; its directory is where
  their libraries are looked for. `$out` (or another output's name) stands for that output's
  path, which a derivation cannot name itself.
- `fixupShebangs`: `program=path ...`, the store programs that `#!` lines naming a host
  program get instead (`$out` as above).
- `exportReferencesGraph`: `FILE PATH ...` pairs, as Nix's: the builder finds FILE in its
  build directory, a JSON list of PATH's closure (path, narHash, narSize, references).
- `resumable`: `1` if the builder can continue a build that was cut short; the build
  directory of an interrupted build is then kept, and the next build starts in it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from bootstrap.errors import BootstrapError

FIXUP_INTERPRETER = "fixupInterpreter"
FIXUP_SHEBANGS = "fixupShebangs"
EXPORT_REFERENCES_GRAPH = "exportReferencesGraph"
RESUMABLE = "resumable"
DEFAULT_SOURCE_DATE_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest date zip can store


def reproducible_env(source_date_epoch: int = DEFAULT_SOURCE_DATE_EPOCH) -> dict[str, str]:
    """The settings our builds carry in their own env for reproducible output (the sandbox,
    like Nix's, sets none of them): a fixed build date, the C locale, UTC."""
    return {"SOURCE_DATE_EPOCH": str(source_date_epoch), "LC_ALL": "C", "TZ": "UTC"}


@dataclass(frozen=True)
class DrvOptions:
    """`interpreter` and `shebangs` may name outputs as `$out`; `expand` replaces them."""

    interpreter: str = ""
    shebangs: tuple[tuple[str, str], ...] = ()  # (program, path)
    closure_files: tuple[tuple[str, str], ...] = ()  # (file name in /build, store path)
    resumable: bool = False

    def to_env(self) -> dict[str, str]:
        """The environment entries that ask for these options (none for the defaults)."""
        env = {}
        if self.resumable:
            env[RESUMABLE] = "1"
        if self.interpreter:
            env[FIXUP_INTERPRETER] = self.interpreter
        if self.shebangs:
            env[FIXUP_SHEBANGS] = " ".join(f"{prog}={path}" for prog, path in self.shebangs)
        if self.closure_files:
            env[EXPORT_REFERENCES_GRAPH] = " ".join(f"{f} {p}" for f, p in self.closure_files)
        return env

    @classmethod
    def from_env(cls, env: Mapping[str, str], where: str) -> DrvOptions:
        """The options a derivation's `env` asks for; `where` names it in errors."""
        shebangs = []
        for item in env.get(FIXUP_SHEBANGS, "").split():
            program, equals, path = item.partition("=")
            if not equals or not program or not path:
                raise BootstrapError(f"{where}: {FIXUP_SHEBANGS}: {item!r} is not PROGRAM=PATH")
            shebangs.append((program, path))
        words = env.get(EXPORT_REFERENCES_GRAPH, "").split()
        if len(words) % 2:
            raise BootstrapError(f"{where}: {EXPORT_REFERENCES_GRAPH} must hold FILE PATH pairs")
        files = list(zip(words[::2], words[1::2], strict=True))
        for file, _ in files:
            if "/" in file or file.startswith("."):
                raise BootstrapError(
                    f"{where}: {EXPORT_REFERENCES_GRAPH}: {file!r} is not a file name"
                )
        return cls(
            interpreter=env.get(FIXUP_INTERPRETER, ""),
            shebangs=tuple(shebangs),
            closure_files=tuple(files),
            resumable=cls.resumable_in(env),
        )

    @staticmethod
    def resumable_in(env: Mapping[str, str]) -> bool:
        """Whether `env` asks for a resumable build (read alone: it cannot be malformed)."""
        return env.get(RESUMABLE) == "1"

    def expand(self, outputs: Mapping[str, str]) -> DrvOptions:
        """`$out` (or `$dev`, ...) in the fix-up options replaced by that output's path
        (`outputs`: output name -> path); other `$words` stay."""

        def expanded(value: str) -> str:
            return re.sub(r"\$(\w+)", lambda m: outputs.get(m[1], m[0]), value)

        return replace(
            self,
            interpreter=expanded(self.interpreter),
            shebangs=tuple((prog, expanded(path)) for prog, path in self.shebangs),
        )
