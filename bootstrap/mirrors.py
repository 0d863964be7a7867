"""Mirror lists: where a `mirror://NAME/path` URL may be fetched from.

A mirror list is an ordered tuple of base URLs for one NAME. The first layer that names NAME
wins:

1. the environment variable `BOOTSTRAP_MIRRORS_<NAME>` (upper case, `-` as `_`), base URLs
   separated by spaces;
2. the config file `$BOOTSTRAP_MIRRORS_FILE`, else `$XDG_CONFIG_HOME/bootstrap/mirrors.toml`
   (default `~/.config/bootstrap/mirrors.toml`), a table `[mirrors]` of `NAME = ["url", ...]`;
3. for `debian` only, the host's apt sources: every Debian archive URL in
   `/etc/apt/sources.list`, `sources.list.d/*.list` and `sources.list.d/*.sources`.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bootstrap.errors import BootstrapError

MIRROR_SCHEME = "mirror://"
# one fixed URL per mirror name, for a derivation's `url` (real Nix's builtin:fetchurl knows no
# mirror lists): the archive's own redirector to a nearby mirror
CANONICAL_MIRRORS = {"debian": "https://deb.debian.org/debian"}
DEFAULT_APT_DIR = Path("/etc/apt")
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")


def env_variable(name: str) -> str:
    """The environment variable that overrides mirror list `name`."""
    return "BOOTSTRAP_MIRRORS_" + name.upper().replace("-", "_")


def default_config_file(environ: Mapping[str, str]) -> Path:
    if explicit := environ.get("BOOTSTRAP_MIRRORS_FILE"):
        return Path(explicit)
    config_home = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "bootstrap" / "mirrors.toml"


def load_config_file(path: Path) -> dict[str, tuple[str, ...]]:
    """Read `[mirrors] NAME = ["url", ...]` from a TOML file; a missing file is empty."""
    try:
        with open(path, "rb") as stream:
            document = tomllib.load(stream)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError, RecursionError) as error:
        raise BootstrapError(f"{path}: cannot read mirror config: {error}") from None
    table = document.get("mirrors", {})
    if not isinstance(table, dict):
        raise BootstrapError(f"{path}: 'mirrors' must be a table of NAME = [urls]")
    lists: dict[str, tuple[str, ...]] = {}
    for name, urls in table.items():
        if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
            raise BootstrapError(f"{path}: mirrors.{name} must be a list of URL strings")
        lists[name] = tuple(urls)
    return lists


def is_debian_archive(url: str) -> bool:
    """True for an http(s)/file URL whose path ends in `/debian` (not debian-security etc.)."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https", "file") and parts.path.rstrip("/").endswith("/debian")


def _one_line_urls(text: str) -> Iterable[str]:
    """URLs of `deb`/`deb-src` lines in the one-line sources.list format."""
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] not in ("deb", "deb-src"):
            continue
        rest = words[1:]
        if rest and rest[0].startswith("["):
            while rest and not rest[0].endswith("]"):
                rest = rest[1:]
            rest = rest[1:]
        if rest:
            yield rest[0]


def _deb822_urls(text: str) -> Iterable[str]:
    """URLs in the `URIs:` fields of enabled deb822 stanzas (`*.sources` files)."""
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        current = None
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and current:
                fields[current] += " " + line.strip()
            elif ":" in line:
                current, value = line.split(":", 1)
                current = current.strip().lower()
                fields[current] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        yield from fields.get("uris", "").split()


def apt_debian_mirrors(apt_dir: Path = DEFAULT_APT_DIR) -> tuple[str, ...]:
    """Debian archive base URLs from the host's apt sources, in file order, without repeats."""
    urls: list[str] = []
    main_list = apt_dir / "sources.list"
    parts_dir = apt_dir / "sources.list.d"
    candidates = [
        main_list,
        *sorted(parts_dir.glob("*.list")),
        *sorted(parts_dir.glob("*.sources")),
    ]
    for path in candidates:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        parse = _deb822_urls if path.suffix == ".sources" else _one_line_urls
        urls.extend(parse(text))
    return tuple(dict.fromkeys(url.rstrip("/") for url in urls if is_debian_archive(url)))


@dataclass(frozen=True)
class Mirrors:
    """Where mirror lists come from; the defaults read the real host configuration."""

    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    config_file: Path | None = None
    apt_dir: Path = DEFAULT_APT_DIR

    def urls_for(self, name: str) -> tuple[str, ...]:
        """The base URLs of mirror list `name` (see the module docstring for the order)."""
        if not _NAME_RE.fullmatch(name):
            raise BootstrapError(f"invalid mirror name {name!r}: expected e.g. 'debian'")
        if from_env := self.environ.get(env_variable(name), "").split():
            return tuple(from_env)
        config_file = self.config_file or default_config_file(self.environ)
        if from_config := load_config_file(config_file).get(name):
            return from_config
        if name == "debian" and (from_apt := apt_debian_mirrors(self.apt_dir)):
            return from_apt
        raise BootstrapError(
            f"no mirrors configured for mirror://{name}/: set {env_variable(name)} or add "
            f"'{name} = [...]' under [mirrors] in {config_file}"
        )

    def resolve(self, url: str) -> tuple[str, ...]:
        """One URL per mirror for `mirror://NAME/path`; any other URL maps to itself."""
        if not url.startswith(MIRROR_SCHEME):
            return (url,)
        name, _, path = url[len(MIRROR_SCHEME) :].partition("/")
        if not path:
            raise BootstrapError(f"mirror URL {url!r} has no path: expected mirror://NAME/path")
        return tuple(f"{base.rstrip('/')}/{path}" for base in self.urls_for(name))


def canonical_url(url: str) -> str:
    """`mirror://NAME/path` at NAME's canonical mirror; any other URL as it is."""
    if not url.startswith(MIRROR_SCHEME):
        return url
    name, _, path = url[len(MIRROR_SCHEME) :].partition("/")
    if name not in CANONICAL_MIRRORS:
        raise BootstrapError(
            f"mirror URL {url!r}: no canonical mirror for {name!r}; expected one of "
            f"{', '.join(sorted(CANONICAL_MIRRORS))}"
        )
    return f"{CANONICAL_MIRRORS[name]}/{path}"
