"""Nix's machine syntax for `--builders`: fields, defaults, files, and one-line errors."""

from __future__ import annotations

import base64

import pytest

from bootstrap.errors import BootstrapError
from bootstrap.remote.machines import local_system, parse_machines
from bootstrap.remote.ssh import remote_command

HOST_KEY = base64.b64encode(b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB").decode()


def test_every_field_and_the_defaults():
    full, short = parse_machines(
        f"ssh://me@build.example:2222?remote-store=local%3Froot%3D%2Fx x86_64-linux,i686-linux "
        f"/k 4 2.5 kvm,big big {HOST_KEY}; ssh://other"
    )
    assert (full.user, full.host, full.port, full.destination) == (
        "me",
        "build.example",
        2222,
        "me@build.example",
    )
    assert full.systems == ("x86_64-linux", "i686-linux")
    assert (full.ssh_key, full.max_jobs, full.speed_factor) == ("/k", 4, 2.5)
    assert full.supported_features == {"kvm", "big"} and full.mandatory_features == {"big"}
    assert full.host_key == "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB"
    assert remote_command(full) == "nix-store --serve --write --store 'local?root=/x'"
    assert (short.systems, short.max_jobs, short.speed_factor) == ((local_system(),), 1, 1.0)
    assert short.port is None and short.user is None


def test_fits_as_nix_decides():
    (machine,) = parse_machines("ssh://b x86_64-linux - 1 1 kvm big")
    assert machine.fits("x86_64-linux", {"big"})
    assert machine.fits("x86_64-linux", {"kvm", "big"})
    assert not machine.fits("x86_64-linux", set())  # big is mandatory
    assert not machine.fits("aarch64-linux", {"big"})
    assert not machine.fits("x86_64-linux", {"big", "cuda"})


def test_newlines_comments_and_files(tmp_path):
    listed = tmp_path / "machines"
    listed.write_text("# builders\nssh://a - - 2\n\nssh://b # the slow one\n")
    machines = parse_machines(f"@{listed}\nssh://c")
    assert [m.host for m in machines] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("http://a", "URI must be ssh://"),
        ("ssh-ng://a", "URI must be ssh://"),
        ("ssh://a:99999", "port must be 1-65535"),
        ("ssh://a?compress=true", "parameter 'compress' is not supported"),
        ("ssh://a - - two", "field max-jobs must be a positive whole number; got 'two'"),
        ("ssh://a - - 0", "field max-jobs must be a positive whole number"),
        ("ssh://a - - 1 fast", "field speed-factor must be a positive number; got 'fast'"),
        ("ssh://a - - 1 1 - - notbase64!", "field host key must be base64"),
        ("ssh://a 1 2 3 4 5 6 7 8", "9 fields; expected at most 8"),
        ("@/nonexistent/machines", "cannot read /nonexistent/machines"),
    ],
)
def test_errors_are_one_line_naming_the_field(spec, message):
    with pytest.raises(BootstrapError) as error:
        parse_machines(spec, "--builders")
    assert message in str(error.value)
    assert "\n" not in str(error.value)
    assert str(error.value).startswith(("--builders", "/nonexistent"))
