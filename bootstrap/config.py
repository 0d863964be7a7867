"""User settings: command-line flags, then environment variables, then the config file.

The config file is TOML, `$BOOTSTRAP_CONFIG` or else `$XDG_CONFIG_HOME/bootstrap/config.toml`
(`~/.config/bootstrap/config.toml`). Keys, as Nix names them:

    substituters = ["file:///srv/cache", "https://cache.example.org"]
    trusted-public-keys = ["cache.example.org-1:BASE64..."]
    builders = ["ssh://builder x86_64-linux /root/.ssh/id 4 2", "@/etc/nix/machines"]
    max-jobs = 2
    cores = 4
    store = "/srv/bootstrap"          # the physical store root (--store)
    store-dir = "/nix/store"          # the logical store directory (--store-dir)

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
CORES = ListKey("cores", "BOOTSTRAP_CORES", "--cores")
STORE = ListKey("store", "BOOTSTRAP_STORE", "--store")
STORE_DIR = ListKey("store-dir", "BOOTSTRAP_STORE_DIR", "--store-dir")
SETTINGS = (STORE, STORE_DIR, MAX_JOBS, CORES, SUBSTITUTERS, TRUSTED_PUBLIC_KEYS, BUILDERS)
KNOWN_KEYS = frozenset(key.key for key in SETTINGS)


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


def count_setting(key: ListKey, flag_value: int | None, default: int, least: int = 0) -> int:
    """A whole number of at least `least`: flag, else environment, else config file, else
    default."""
    return count_setting_from(key, flag_value, default, least)[0]


def count_setting_from(
    key: ListKey, flag_value: int | None, default: int, least: int = 0
) -> tuple[int, str]:
    """`count_setting`, and where the value came from."""
    if flag_value is not None:
        return flag_value, key.flag
    if key.env in os.environ:
        text, origin = os.environ[key.env], f"${key.env}"
    else:
        path, data = read_config()
        if key.key not in data:
            return default, "default"
        text, origin = data[key.key], str(path)
    if isinstance(text, bool) or not str(text).isdigit() or int(text) < least:
        raise BootstrapError(
            f"{origin}: {key.key} must be a whole number ({least} or more); got {text!r}"
        )
    return int(text), origin


def path_setting(key: ListKey, flag_value: str | os.PathLike | None) -> tuple[str | None, str]:
    """A single string setting (`store`, `store-dir`): flag, else environment, else config
    file (where a relative `store` is taken from the file's directory); None (and "default")
    when none sets it."""
    if flag_value is not None:
        return os.fspath(flag_value), key.flag
    if os.environ.get(key.env):
        return os.environ[key.env], f"${key.env}"
    path, data = read_config()
    if key.key not in data:
        return None, "default"
    value = data[key.key]
    if not isinstance(value, str) or not value:
        raise BootstrapError(f"{path}: {key.key} must be a non-empty string")
    value = os.path.expanduser(value)
    if key is STORE:  # a relative store root is the config file's neighbour, not cwd's
        value = os.path.join(Path(path).parent, value)
    return value, str(path)


@dataclass(frozen=True)
class Effective:
    """A setting's effective value and where it came from: its flag, `$VARIABLE`, the config
    file's path, or "default"."""

    key: str
    value: object
    origin: str


def effective_settings(flags: dict[str, object] | None = None) -> list[Effective]:
    """Every setting as a command would take it, given the flags in `flags` (by key)."""
    from bootstrap.store.store import default_root
    from bootstrap.storepath import DEFAULT_STORE_DIR

    flags = flags or {}
    store, store_origin = path_setting(STORE, flags.get(STORE.key))
    store_dir, dir_origin = path_setting(STORE_DIR, flags.get(STORE_DIR.key))
    builders, builders_origin = text_setting(BUILDERS, flags.get(BUILDERS.key))
    lists = [list_setting(k, flags.get(k.key)) for k in (SUBSTITUTERS, TRUSTED_PUBLIC_KEYS)]
    return [
        Effective(STORE.key, os.path.abspath(store or default_root()), store_origin),
        Effective(STORE_DIR.key, store_dir or DEFAULT_STORE_DIR, dir_origin),
        Effective(MAX_JOBS.key, *count_setting_from(MAX_JOBS, flags.get(MAX_JOBS.key), 1)),
        Effective(
            CORES.key, *count_setting_from(CORES, flags.get(CORES.key), os.cpu_count() or 1, 1)
        ),
        *(Effective(s.key, list(s.values), s.origin) for s in lists),
        Effective(BUILDERS.key, builders, builders_origin),
    ]
