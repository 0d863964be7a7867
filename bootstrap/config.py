"""User settings: command-line flags, then environment variables, then the config file.

The config file is TOML, `$BOOTSTRAP_CONFIG` or else `$XDG_CONFIG_HOME/bootstrap/config.toml`
(`~/.config/bootstrap/config.toml`). Keys, as Nix names them:

    substituters = ["file:///srv/cache", "https://cache.example.org"]
    trusted-public-keys = ["cache.example.org-1:BASE64..."]
    builders = ["ssh://builder x86_64-linux /root/.ssh/id 4 2", "@/etc/nix/machines"]
    max-jobs = 2

`builders` is Nix's machine syntax (bootstrap.remote.machines): one string, or a list of
machines; `$BOOTSTRAP_BUILDERS` holds the same as one string.

Each setting is taken from the first place that sets it, in this order: the flag, the
environment variable, the file. A value remembers where it came from, so errors and
`config show` can say so.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from bootstrap.errors import BootstrapError

CONFIG_ENV = "BOOTSTRAP_CONFIG"


@dataclass(frozen=True)
class ListSetting:
    """A list of words and where it was set."""

    key: str
    values: tuple[str, ...]
    origin: str


@dataclass(frozen=True)
class ListKey:
    """A list setting: its file key, its environment variable (space-separated), its flag."""

    key: str
    env: str
    flag: str


SUBSTITUTERS = ListKey("substituters", "BOOTSTRAP_SUBSTITUTERS", "--substituters")
TRUSTED_PUBLIC_KEYS = ListKey(
    "trusted-public-keys", "BOOTSTRAP_TRUSTED_PUBLIC_KEYS", "--trusted-public-keys"
)
BUILDERS = ListKey("builders", "BOOTSTRAP_BUILDERS", "--builders")
MAX_JOBS = ListKey("max-jobs", "BOOTSTRAP_MAX_JOBS", "--max-jobs")
KNOWN_KEYS = frozenset({SUBSTITUTERS.key, TRUSTED_PUBLIC_KEYS.key, BUILDERS.key, MAX_JOBS.key})


def config_path() -> Path:
    if env := os.environ.get(CONFIG_ENV):
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "bootstrap" / "config.toml"


def read_config(path: Path | None = None) -> tuple[Path, dict[str, object]]:
    """The config file's settings (empty if there is none), checked against the known keys."""
    path = path or config_path()
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        return path, {}
    except OSError as err:
        raise BootstrapError(f"{path}: cannot read config: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise BootstrapError(f"{path}: not valid TOML: {err}") from None
    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        known = ", ".join(sorted(KNOWN_KEYS))
        raise BootstrapError(f"{path}: unknown setting {unknown[0]!r}; expected one of {known}")
    return path, data


def list_setting(key: ListKey, flag_values: list[str] | None) -> ListSetting:
    """The effective value of a list setting: flag, else environment, else config file."""
    if flag_values is not None:
        return ListSetting(key.key, _words(flag_values), key.flag)
    if key.env in os.environ:
        return ListSetting(key.key, _words([os.environ[key.env]]), f"${key.env}")
    path, data = read_config()
    if key.key not in data:
        return ListSetting(key.key, (), "default")
    value = data[key.key]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BootstrapError(f"{path}: {key.key} must be a list of strings")
    return ListSetting(key.key, _words(value), str(path))


def _words(values: list[str]) -> tuple[str, ...]:
    """Values as Nix takes them: each may hold several, separated by spaces."""
    return tuple(word for value in values for word in value.split())


def text_setting(key: ListKey, flag_value: str | None) -> tuple[str, str]:
    """A setting whose words hold spaces (`builders`): the whole value and where it was set.
    A list in the file is joined by newlines."""
    if flag_value is not None:
        return flag_value, key.flag
    if key.env in os.environ:
        return os.environ[key.env], f"${key.env}"
    path, data = read_config()
    value = data.get(key.key, "")
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        value = "\n".join(value)
    if not isinstance(value, str):
        raise BootstrapError(f"{path}: {key.key} must be a string or a list of strings")
    return value, str(path) if key.key in data else "default"


def count_setting(key: ListKey, flag_value: int | None, default: int) -> int:
    """A whole number of at least 0: flag, else environment, else config file, else default."""
    if flag_value is not None:
        return flag_value
    if key.env in os.environ:
        text, origin = os.environ[key.env], f"${key.env}"
    else:
        path, data = read_config()
        if key.key not in data:
            return default
        text, origin = data[key.key], str(path)
    if isinstance(text, bool) or not str(text).isdigit():
        raise BootstrapError(
            f"{origin}: {key.key} must be a whole number (0 or more); got {text!r}"
        )
    return int(text)
