"""Mirror lists from the environment, the config file and apt sources (in a test apt dir)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bootstrap.errors import BootstrapError
from bootstrap.mirrors import (
    DEFAULT_APT_DIR,
    Mirrors,
    apt_debian_mirrors,
    canonical_url,
    default_config_file,
    env_variable,
    is_debian_archive,
)

DEB822 = """\
Types: deb deb-src
# a comment inside the stanza
URIs: http://one.example/debian
 https://two.example/debian/
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://one.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://disabled.example/debian
Suites: sid
Components: main
Enabled: no

Types: deb
URIs: https://vendor.example/node_20.x
Suites: nodistro
Components: main
"""

ONE_LINE = """\
# deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://three.example/debian bookworm main
deb-src http://one.example/debian bookworm main
deb https://packages.vendor.example/apt cloud-sdk main
deb http://security.example/debian-security bookworm-security main
"""


@pytest.fixture
def apt_dir(tmp_path: Path) -> Path:
    parts = tmp_path / "apt" / "sources.list.d"
    parts.mkdir(parents=True)
    (tmp_path / "apt" / "sources.list").write_text(ONE_LINE)
    (parts / "debian.sources").write_text(DEB822)
    (parts / "extra.list").write_text("deb file:///srv/local/debian stable main\n")
    (parts / "old.list.disabled").write_text("deb http://ignored.example/debian sid main\n")
    return tmp_path / "apt"


def test_apt_sources_both_formats_only_debian_archives(apt_dir: Path) -> None:
    assert apt_debian_mirrors(apt_dir) == (
        "http://three.example/debian",
        "http://one.example/debian",
        "file:///srv/local/debian",
        "https://two.example/debian",
    )


def test_missing_apt_dir_gives_nothing(tmp_path: Path) -> None:
    assert apt_debian_mirrors(tmp_path / "nothing") == ()


def test_debian_archive_test() -> None:
    assert is_debian_archive("http://a.example/debian/")
    assert is_debian_archive("https://a.example/mirror/debian")
    assert not is_debian_archive("http://a.example/debian-security")
    assert not is_debian_archive("http://a.example/ubuntu")
    assert not is_debian_archive("cdrom:[Debian]/debian")


def test_layers_env_then_config_then_apt(tmp_path: Path, apt_dir: Path) -> None:
    config = tmp_path / "mirrors.toml"
    config.write_text('[mirrors]\ndebian = ["http://config.example/debian"]\n')
    env = {"BOOTSTRAP_MIRRORS_DEBIAN": " http://env.example/debian  http://env2.example/debian "}
    assert Mirrors(env, config, apt_dir).urls_for("debian") == (
        "http://env.example/debian",
        "http://env2.example/debian",
    )
    assert Mirrors({}, config, apt_dir).urls_for("debian") == ("http://config.example/debian",)
    assert Mirrors({}, tmp_path / "absent.toml", apt_dir).urls_for("debian")[0] == (
        "http://three.example/debian"
    )


def test_resolve_joins_paths(tmp_path: Path) -> None:
    mirrors = Mirrors({env_variable("gnu-alt"): "http://a.example/gnu/ http://b.example"})
    assert env_variable("gnu-alt") == "BOOTSTRAP_MIRRORS_GNU_ALT"
    assert mirrors.resolve("mirror://gnu-alt/make/make-4.3.tar.gz") == (
        "http://a.example/gnu/make/make-4.3.tar.gz",
        "http://b.example/make/make-4.3.tar.gz",
    )
    assert mirrors.resolve("https://upstream.example/x.tar") == ("https://upstream.example/x.tar",)


def test_config_file_location(tmp_path: Path) -> None:
    assert default_config_file({"BOOTSTRAP_MIRRORS_FILE": "/x/m.toml"}) == Path("/x/m.toml")
    assert default_config_file({"XDG_CONFIG_HOME": str(tmp_path)}) == (
        tmp_path / "bootstrap" / "mirrors.toml"
    )
    config = tmp_path / "bootstrap" / "mirrors.toml"
    config.parent.mkdir()
    config.write_text('[mirrors]\nkernel = ["https://k.example/pub"]\n')
    mirrors = Mirrors({"XDG_CONFIG_HOME": str(tmp_path)})
    assert mirrors.resolve("mirror://kernel/v6.x/l.tar") == ("https://k.example/pub/v6.x/l.tar",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[mirrors\n", "cannot read mirror config"),
        ("mirrors = 3\n", "'mirrors' must be a table"),
        ('[mirrors]\ndebian = "http://x"\n', "mirrors.debian must be a list of URL strings"),
    ],
)
def test_bad_config_is_one_line_error(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "mirrors.toml"
    config.write_text(text)
    with pytest.raises(BootstrapError, match=message) as error:
        Mirrors({}, config, tmp_path).urls_for("debian")
    assert str(error.value).startswith(str(config)) and "\n" not in str(error.value)


def test_unknown_or_bad_names(tmp_path: Path) -> None:
    mirrors = Mirrors({}, tmp_path / "absent.toml", tmp_path)
    with pytest.raises(BootstrapError, match="no mirrors configured for mirror://gnu/: set BOOT"):
        mirrors.resolve("mirror://gnu/make.tar")
    with pytest.raises(BootstrapError, match="no mirrors configured for mirror://debian/"):
        mirrors.resolve("mirror://debian/pool/x")
    with pytest.raises(BootstrapError, match="invalid mirror name"):
        mirrors.resolve("mirror://Bad Name/x")
    with pytest.raises(BootstrapError, match="has no path"):
        mirrors.resolve("mirror://debian")


def test_host_apt_sources_give_debian_archives(tmp_path: Path) -> None:
    """The real host's apt sources: what they list must be Debian archives, used in order."""
    found = apt_debian_mirrors(DEFAULT_APT_DIR)
    if not found:
        pytest.skip("the host's apt sources list no Debian archive")
    assert all(is_debian_archive(url) and not url.endswith("/") for url in found)
    mirrors = Mirrors(environ={}, config_file=tmp_path / "absent.toml")
    resolved = mirrors.resolve("mirror://debian/pool/main/n/x.tar")
    assert resolved == tuple(f"{url}/pool/main/n/x.tar" for url in found)


def test_canonical_url_is_one_fixed_url_for_a_derivation():
    url = "mirror://debian/pool/main/m/m4/m4_1.4.19.orig.tar.xz"
    assert (
        canonical_url(url) == "https://deb.debian.org/debian/pool/main/m/m4/m4_1.4.19.orig.tar.xz"
    )
    assert canonical_url("https://example.org/a.tar.gz") == "https://example.org/a.tar.gz"
    with pytest.raises(BootstrapError, match=r"^mirror URL 'mirror://gnu/x': no canonical mirror"):
        canonical_url("mirror://gnu/x")
