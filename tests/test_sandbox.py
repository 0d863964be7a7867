"""The build sandbox, tested with real bubblewrap, real namespaces and a static busybox builder.

The builder's "store" holds one input: a store path (a plain directory) with Debian's static busybox
(`apt-get install busybox-static`) and its applet symlinks.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from bootstrap.errors import BootstrapError
from bootstrap.sandbox import (
    Bind,
    SandboxResult,
    SandboxSpec,
    TimeoutKind,
    check_sandbox_available,
    run_in_sandbox,
    sandbox_environment,
)

REPO = Path(__file__).resolve().parents[1]
STORE = "/bootstrap/store"
BUSYBOX_NAME = "0" * 31 + "1-busybox"
BUSYBOX_LOGICAL = f"{STORE}/{BUSYBOX_NAME}"
BUSYBOX_BIN = f"{BUSYBOX_LOGICAL}/bin"
OUT_LOGICAL = f"{STORE}/{'2' * 32}-out"
APPLETS = ["sh", "env", "id", "hostname", "cat", "ls", "touch", "mkdir", "echo", "sleep", "nc"]
APPLETS += ["printf", "test", "grep", "true", "pwd", "chmod"]
NOBODY = 65534


def _static_busybox() -> Path:
    busybox = Path("/bin/busybox")
    if not busybox.is_file():
        pytest.skip("needs a static busybox: apt-get install busybox-static")
    with busybox.open("rb") as stream:
        if any(seg["p_type"] == "PT_INTERP" for seg in ELFFile(stream).iter_segments()):
            pytest.skip("/bin/busybox is dynamic: apt-get install busybox-static")
    return busybox


def make_busybox_store_path(directory: Path) -> Path:
    """A directory shaped like a store path: bin/busybox plus one symlink per applet."""
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True)
    shutil.copy2(_static_busybox(), bin_dir / "busybox")
    for applet in APPLETS:
        (bin_dir / applet).symlink_to("busybox")
    return directory


@pytest.fixture(scope="module")
def busybox(tmp_path_factory) -> Bind:
    try:
        check_sandbox_available()
    except BootstrapError as exc:
        pytest.skip(str(exc))
    store = tmp_path_factory.mktemp("store")
    return Bind(make_busybox_store_path(store / BUSYBOX_NAME), BUSYBOX_LOGICAL)


@pytest.fixture
def build_dir(tmp_path) -> Path:
    path = tmp_path / "build"
    path.mkdir()
    return path


def shell(script: str, busybox: Bind, build_dir: Path, **spec_fields) -> SandboxSpec:
    env = {"PATH": BUSYBOX_BIN, **spec_fields.pop("env", {})}
    return SandboxSpec(
        command=["sh", "-c", script],
        build_dir=build_dir,
        env=env,
        inputs=[busybox, *spec_fields.pop("inputs", [])],
        **spec_fields,
    )


def run_lines(spec: SandboxSpec, tmp_path: Path) -> tuple[list[str], SandboxResult]:
    lines: list[str] = []
    result = run_in_sandbox(spec, tmp_path / "build.log", lines.append)
    return lines, result


def test_builder_sees_exactly_the_fixed_environment(busybox, build_dir, tmp_path):
    spec = SandboxSpec(
        command=["env"],
        build_dir=build_dir,
        env={"PATH": BUSYBOX_BIN, "out": OUT_LOGICAL, "name": "demo"},
        inputs=[busybox],
        cores=3,
        store_dir="/bootstrap/store",
    )
    lines, result = run_lines(spec, tmp_path)
    assert result.succeeded and result.hermetic
    seen = dict(line.split("=", 1) for line in lines)
    assert seen == sandbox_environment(spec, "/build")
    # what Nix 2.8's sandbox adds (printed by a real Nix build here), and nothing else
    added = {key: value for key, value in seen.items() if key not in spec.env}
    top_names = ("NIX_BUILD_TOP", "TMPDIR", "TEMPDIR", "TMP", "TEMP", "PWD")
    build_top = dict.fromkeys(top_names, "/build")
    assert added == {
        **build_top,
        "HOME": "/homeless-shelter",
        "NIX_STORE": "/bootstrap/store",
        "NIX_BUILD_CORES": "3",
        "NIX_LOG_FD": "2",
        "TERM": "xterm-256color",
    }
    assert seen["PATH"] == BUSYBOX_BIN


def test_path_is_not_set_unless_the_derivation_sets_it(busybox, build_dir, tmp_path):
    spec = SandboxSpec(
        command=[f"{BUSYBOX_BIN}/env"], build_dir=build_dir, inputs=[busybox], network=True
    )
    lines, result = run_lines(spec, tmp_path)
    seen = dict(line.split("=", 1) for line in lines)
    assert result.succeeded and seen["PATH"] == "/path-not-set"
    assert seen["NIX_OUTPUT_CHECKED"] == "1"  # a fixed output's build, as in Nix


def test_identity_hostname_umask_and_cwd_are_fixed(busybox, build_dir, tmp_path):
    script = "id -u; id -g; hostname; umask; pwd; test -e $HOME || echo no-home"
    lines, result = run_lines(shell(script, busybox, build_dir), tmp_path)
    assert result.succeeded
    assert lines == ["1000", "100", "localhost", "0022", "/build", "no-home"]


def test_host_filesystem_is_invisible(busybox, build_dir, tmp_path):
    script = (
        "ls /; for d in /usr /lib /lib64 /bin /sys /tmp /root; do test -e $d && echo $d; done; true"
    )
    lines, result = run_lines(shell(script, busybox, build_dir), tmp_path)
    assert result.succeeded
    assert lines == ["bootstrap", "build", "dev", "etc", "proc", "tmp", "/tmp"]

    lines, _ = run_lines(shell("cat /etc/passwd; ls /etc; ls /dev", busybox, build_dir), tmp_path)
    assert not set(lines) & set(Path("/etc/passwd").read_text().splitlines())
    assert lines[:3] == [
        "root:x:0:0:Nix build user:/build:/noshell",
        "nixbld:x:1000:100:Nix build user:/build:/noshell",
        "nobody:x:65534:65534:Nobody:/:/noshell",
    ]
    assert {"group", "hosts", "passwd", "null", "zero", "urandom"} <= set(lines)


def test_inputs_root_and_etc_are_read_only(busybox, build_dir, tmp_path):
    targets = [f"{BUSYBOX_BIN}/new", f"{BUSYBOX_BIN}/busybox", "/new", "/etc/passwd"]
    script = "; ".join(f"echo x >> {t} || echo refused {t}" for t in targets)
    before = (busybox.physical / "bin/busybox").read_bytes()
    lines, _ = run_lines(shell(script, busybox, build_dir), tmp_path)
    assert [line for line in lines if line.startswith("refused")] == [
        f"refused {t}" for t in targets
    ]
    assert "Read-only file system" in (tmp_path / "build.log").read_text()
    assert sorted(p.name for p in (busybox.physical / "bin").iterdir()) == sorted(
        ["busybox", *APPLETS]
    )
    assert (busybox.physical / "bin/busybox").read_bytes() == before


def test_outputs_land_at_their_physical_paths(busybox, build_dir, tmp_path):
    outputs_dir = tmp_path / "outputs"
    outputs_dir.mkdir()
    file_out = f"{STORE}/{'3' * 32}-file"
    outputs = [Bind(outputs_dir / "dir-out", OUT_LOGICAL), Bind(outputs_dir / "file-out", file_out)]
    script = (
        "test -e $out && echo out-exists; mkdir $out; echo hello > $out/greeting; "
        "printf single > $file; echo scratch > /build/scratch; echo junk > " + STORE + "/junk"
    )
    env = {"out": OUT_LOGICAL, "file": file_out}
    spec = shell(script, busybox, build_dir, env=env, outputs=outputs)
    lines, result = run_lines(spec, tmp_path)
    assert result.succeeded and lines == []
    assert (outputs_dir / "dir-out/greeting").read_text() == "hello\n"
    assert (outputs_dir / "file-out").read_text() == "single"
    assert (build_dir / "scratch").read_text() == "scratch\n"
    assert sorted(p.name for p in outputs_dir.iterdir()) == ["dir-out", "file-out"]


def test_failed_build_leaves_no_output(busybox, build_dir, tmp_path):
    outputs_dir = tmp_path / "outputs"
    outputs_dir.mkdir()
    outputs = [Bind(outputs_dir / "out", OUT_LOGICAL)]
    script = "mkdir $out; echo partial > $out/f; exit 3"
    spec = shell(script, busybox, build_dir, env={"out": OUT_LOGICAL}, outputs=outputs)
    _, result = run_lines(spec, tmp_path)
    assert result.exit_code == 3
    assert list(outputs_dir.iterdir()) == []


def test_symlink_input_stays_a_symlink(busybox, build_dir, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(BUSYBOX_LOGICAL)
    alias = f"{STORE}/{'4' * 32}-alias"
    spec = shell(f"ls {alias}/bin/busybox", busybox, build_dir, inputs=[Bind(link, alias)])
    lines, result = run_lines(spec, tmp_path)
    assert result.succeeded and lines == [f"{alias}/bin/busybox"]


class _Listener:
    """A TCP server on all host addresses that records what clients send."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("0.0.0.0", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.received.append(conn.recv(100))


def _host_ipv4_addresses() -> list[str]:
    """Every IPv4 address of the host's interfaces, loopback included."""
    addresses = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                reply = fcntl.ioctl(probe.fileno(), 0x8915, request)  # SIOCGIFADDR
            except OSError:
                continue
            addresses.append(socket.inet_ntoa(reply[20:24]))
    return addresses


@pytest.mark.parametrize("network", [False, True])
def test_network_only_for_fixed_output_derivations(busybox, build_dir, tmp_path, network):
    listener = _Listener()
    addresses = _host_ipv4_addresses()
    assert "127.0.0.1" in addresses
    connects = "; ".join(
        f"echo ping-{address} | nc -w 2 {address} {listener.port} && echo reached {address}"
        for address in addresses
    )
    script = f"grep : /proc/net/dev | while read iface rest; do echo $iface; done; {connects}"
    spec = shell(script, busybox, build_dir, network=network)
    lines, _ = run_lines(spec, tmp_path)
    listener.sock.close()
    reached = sorted(line.split()[1] for line in lines if line.startswith("reached"))
    interfaces = [line for line in lines if line.endswith(":")]
    if network:
        assert reached == sorted(addresses)
        assert {f"ping-{a}\n".encode() for a in addresses} == set(listener.received)
    else:
        assert interfaces == ["lo:"] and reached == [] and listener.received == []


def test_failing_builder_returns_its_exit_code_and_logs(busybox, build_dir, tmp_path):
    script = "echo before-failure; echo on-stderr >&2; printf no-newline; exit 42"
    lines, result = run_lines(shell(script, busybox, build_dir), tmp_path)
    assert (result.exit_code, result.timed_out, result.succeeded) == (42, None, False)
    assert lines == ["before-failure", "on-stderr", "no-newline"]
    assert (tmp_path / "build.log").read_text() == "before-failure\non-stderr\nno-newline"


def test_signal_death_is_reported_as_128_plus_signal(busybox, build_dir, tmp_path):
    _, result = run_lines(shell("kill -TERM $$", busybox, build_dir), tmp_path)
    assert result.exit_code == 128 + signal.SIGTERM


def _marker() -> str:
    return str(random.randrange(10**8, 10**9))


def _processes_with_arg(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if entry.name.isdigit() and marker.encode() in argv:
            found.append(int(entry.name))
    return found


def _count_becomes(marker: str, count: int) -> bool:
    """Whether the number of processes carrying the marker reaches `count` within 5 s."""
    for _ in range(50):
        if len(_processes_with_arg(marker)) == count:
            return True
        time.sleep(0.1)
    return False


def _gone(marker: str) -> bool:
    return _count_becomes(marker, 0)


def test_silent_timeout_kills_the_whole_tree(busybox, build_dir, tmp_path):
    marker = _marker()
    script = f"sleep {marker} & echo started; sleep {marker}"
    spec = shell(script, busybox, build_dir, max_silent_seconds=1, max_seconds=60)
    lines, result = run_lines(spec, tmp_path)
    assert result.timed_out is TimeoutKind.SILENT and not result.succeeded
    assert lines == ["started"]
    assert _gone(marker)


def test_total_timeout_kills_the_whole_tree(busybox, build_dir, tmp_path):
    marker = _marker()
    script = f"sleep {marker} & while true; do echo tick; sleep 0.2; done"
    spec = shell(script, busybox, build_dir, max_silent_seconds=5, max_seconds=1.5)
    lines, result = run_lines(spec, tmp_path)
    assert result.timed_out is TimeoutKind.TOTAL
    assert lines and set(lines) == {"tick"}
    assert _gone(marker)


# The child takes Ctrl-C as Python does by default even when it was started with SIGINT
# ignored (as everything started with `&` from a script is).
CHILD_SCRIPT = """
import json, signal, sys
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)
from bootstrap.sandbox import Bind, SandboxSpec, run_in_sandbox
args = json.loads(sys.argv[1])
spec = SandboxSpec(
    command=args["command"], build_dir=Path(args["build_dir"]), env=args["env"],
    inputs=[Bind(Path(p), logical) for p, logical in args["inputs"]],
    outputs=[Bind(Path(p), logical) for p, logical in args["outputs"]],
    sandboxed=args["sandboxed"],
)
def show(line):
    print(line, flush=True)
result = run_in_sandbox(spec, Path(args["log"]), show)
print("exit", result.exit_code, result.hermetic, flush=True)
"""


def start_child(spec: SandboxSpec, log: Path, user: int | None = None) -> subprocess.Popen:
    """Run run_in_sandbox(spec) in a separate Python process, optionally as another user."""
    args = {
        "command": list(spec.command),
        "build_dir": str(spec.build_dir),
        "env": dict(spec.env),
        "inputs": [[str(p), logical] for p, logical in spec.inputs],
        "outputs": [[str(p), logical] for p, logical in spec.outputs],
        "sandboxed": spec.sandboxed,
        "log": str(log),
    }
    prefix = []
    if user is not None:
        prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]
    argv = [*prefix, sys.executable, "-c", CHILD_SCRIPT, json.dumps(args)]
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO)}
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env, cwd="/")


@pytest.mark.parametrize("parent_signal", [signal.SIGINT, signal.SIGKILL])
def test_parent_interrupt_or_death_kills_the_whole_tree(
    busybox, build_dir, tmp_path, parent_signal
):
    marker = _marker()
    spec = shell(f"sleep {marker} & echo started; sleep {marker}", busybox, build_dir)
    child = start_child(spec, tmp_path / "log")
    assert child.stdout.readline() == "started\n"
    assert _count_becomes(marker, 2)
    child.send_signal(parent_signal)
    child.communicate()
    assert child.returncode != 0
    assert _gone(marker)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_works_as_an_unprivileged_user(busybox):
    top = Path(tempfile.mkdtemp(prefix="sandbox-nobody-"))
    try:
        busybox_copy = make_busybox_store_path(top / BUSYBOX_NAME)
        for path in (top, top / "build", top / "outputs"):
            path.mkdir(exist_ok=True)
            os.chown(path, NOBODY, NOBODY)
        junk = f"mkdir -p {STORE}/junk/locked; chmod 0 {STORE}/junk/locked; chmod 555 {STORE}/junk"
        spec = SandboxSpec(
            command=["sh", "-c", f"id -u; hostname; mkdir $out; id -u > $out/uid; {junk}"],
            build_dir=top / "build",
            env={"PATH": BUSYBOX_BIN, "out": OUT_LOGICAL},
            inputs=[Bind(busybox_copy, BUSYBOX_LOGICAL)],
            outputs=[Bind(top / "outputs/out", OUT_LOGICAL)],
        )
        child = start_child(spec, top / "log", user=NOBODY)
        output, _ = child.communicate()
        assert child.returncode == 0, output
        assert output.splitlines() == ["1000", "localhost", "exit 0 True"]
        assert (top / "outputs/out/uid").read_text() == "1000\n"
        assert (top / "outputs/out/uid").stat().st_uid == NOBODY
        assert [p.name for p in (top / "outputs").iterdir()] == ["out"]
    finally:
        shutil.rmtree(top)


def test_no_sandbox_mode_runs_directly_and_is_not_hermetic(busybox, build_dir, tmp_path):
    store = busybox.physical.parent
    out = store / ("5" * 32 + "-out")
    bin_dir = str(busybox.physical / "bin")
    spec = SandboxSpec(
        command=["sh", "-c", "echo $TMPDIR; echo $HOME; pwd; mkdir $out; echo hi > $out/f"],
        build_dir=build_dir,
        env={"PATH": bin_dir, "out": str(out)},
        inputs=[Bind(busybox.physical, str(busybox.physical))],
        outputs=[Bind(out, str(out))],
        sandboxed=False,
    )
    lines, result = run_lines(spec, tmp_path)
    assert result.succeeded and not result.hermetic
    assert lines == [str(build_dir), "/homeless-shelter", str(build_dir)]
    assert (out / "f").read_text() == "hi\n"


def test_no_sandbox_mode_kills_the_whole_tree_on_timeout(busybox, build_dir, tmp_path):
    marker = _marker()
    spec = SandboxSpec(
        command=["sh", "-c", f"sleep {marker} & echo started; sleep {marker}"],
        build_dir=build_dir,
        env={"PATH": str(busybox.physical / "bin")},
        max_silent_seconds=1,
        sandboxed=False,
    )
    lines, result = run_lines(spec, tmp_path)
    assert (lines, result.timed_out, result.hermetic) == (["started"], TimeoutKind.SILENT, False)
    assert _gone(marker)


def test_no_sandbox_mode_refuses_to_remap_store_paths(busybox, build_dir, tmp_path):
    spec = shell("true", busybox, build_dir, sandboxed=False)
    with pytest.raises(BootstrapError, match=r"no-sandbox mode: .* needs a sandbox"):
        run_in_sandbox(spec, tmp_path / "log")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"env": {"HOME": "/root"}}, "env variable HOME is set by the sandbox"),
        ({"inputs": [Bind(Path("/nonexistent-input"), f"{STORE}/x")]}, "does not exist"),
        ({"inputs": [Bind(Path("/"), "/build/x")]}, "collides with sandbox /build"),
        ({"inputs": [Bind(Path("/"), "relative")]}, "must be absolute, normalized"),
        ({"inputs": [Bind(Path("/"), BUSYBOX_LOGICAL)]}, "is bound twice"),
        ({"cores": 0}, "cores is 0"),
    ],
)
def test_bad_specs_raise_one_line_errors(busybox, build_dir, tmp_path, fields, message):
    with pytest.raises(BootstrapError, match=message) as caught:
        run_in_sandbox(shell("true", busybox, build_dir, **fields), tmp_path / "log")
    assert "\n" not in str(caught.value)


def test_existing_output_is_refused(busybox, build_dir, tmp_path):
    stale = tmp_path / "stale"
    stale.mkdir()
    spec = shell("true", busybox, build_dir, outputs=[Bind(stale, OUT_LOGICAL)])
    with pytest.raises(BootstrapError, match="already exists"):
        run_in_sandbox(spec, tmp_path / "log")


@pytest.mark.parametrize("bwrap", ["/nonexistent/bwrap", "/bin/false"])
def test_unusable_bwrap_points_to_no_sandbox(monkeypatch, bwrap):
    monkeypatch.setenv("BOOTSTRAP_BWRAP", bwrap)
    with pytest.raises(BootstrapError, match="--no-sandbox"):
        check_sandbox_available()
