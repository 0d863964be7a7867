"""An ssh session running `nix-store --serve --write` on a machine, its stderr into a log.

ssh runs in its own process group (so an interrupted run's sandbox sweep kills it too), in
batch mode (never a password prompt), with the machine's key and, if the machine names a
host key, a known-hosts file holding only that key and strict checking. `$NIX_SSHOPTS` adds
options, as it does for Nix.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from bootstrap.errors import BootstrapError
from bootstrap.remote.machines import Machine
from bootstrap.remote.serve import ServeConnection, ServeError

CONNECT_SECONDS = 10
_STDERR_TAIL = 20


class RemoteUnavailable(BootstrapError):
    """The machine could not be reached or is not a Nix serve server: try another one."""


def remote_command(machine: Machine) -> str:
    """The command line ssh runs on the machine (a shell string, as Nix builds it)."""
    command = f"{machine.remote_program} --serve --write"
    if machine.remote_store:
        command += f" --store {shlex.quote(machine.remote_store)}"
    return command


def ssh_argv(machine: Machine, known_hosts: Path | None) -> list[str]:
    argv = ["ssh", "-x", "-a", "-T", "-o", "BatchMode=yes"]
    argv += ["-o", f"ConnectTimeout={CONNECT_SECONDS}", "-o", "ServerAliveInterval=30"]
    if machine.port:
        argv += ["-p", str(machine.port)]
    if machine.ssh_key:
        argv += ["-i", machine.ssh_key, "-o", "IdentitiesOnly=yes"]
    if known_hosts:
        argv += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes"]
    argv += shlex.split(os.environ.get("NIX_SSHOPTS", ""))
    return [*argv, machine.destination, "--", remote_command(machine)]


class _StderrPump(threading.Thread):
    """Copies the remote's stderr (the build log) into the log file, line by line."""

    def __init__(self, stream, log_file: Path, on_line: Callable[[str], None] | None) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.log_file = log_file
        self.on_line = on_line
        self.tail: deque[str] = deque(maxlen=_STDERR_TAIL)

    def run(self) -> None:
        with open(self.log_file, "ab") as log:
            for raw in self.stream:
                log.write(raw)
                log.flush()
                line = raw.decode(errors="replace").rstrip("\n")
                self.tail.append(line)
                if self.on_line is not None:
                    self.on_line(line)

    def last_line(self) -> str:
        lines = [line for line in self.tail if line.strip()]
        return lines[-1] if lines else "no message"


@contextmanager
def serve_session(
    machine: Machine, log_file: Path, on_line: Callable[[str], None] | None = None
) -> Iterator[ServeConnection]:
    """A connection to `machine` after the handshake; RemoteUnavailable if there is none.
    On leaving, stdin is closed (the server ends) and ssh is waited for, or killed."""
    with tempfile.TemporaryDirectory(prefix="bootstrap-ssh-") as scratch:
        known_hosts = _known_hosts(machine, Path(scratch))
        process = subprocess.Popen(
            ssh_argv(machine, known_hosts),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        pump = _StderrPump(process.stderr, log_file, on_line)
        pump.start()
        connection = ServeConnection(process.stdin, process.stdout, machine.uri)
        try:
            connection.handshake()
        except ServeError:
            _stop(process, pump, kill=True)
            raise RemoteUnavailable(f"{machine.uri}: {pump.last_line()}") from None
        try:
            yield connection
        except ServeError as err:
            _stop(process, pump, kill=True)
            raise ServeError(f"{err}; the remote said: {pump.last_line()}") from None
        except BaseException:
            _stop(process, pump, kill=True)
            raise
        _stop(process, pump, kill=False)


def _known_hosts(machine: Machine, scratch: Path) -> Path | None:
    if machine.host_key is None:
        return None
    name = f"[{machine.host}]:{machine.port}" if machine.port else machine.host
    path = scratch / "known_hosts"
    path.write_text(f"{name} {machine.host_key}\n")
    return path


def _stop(process: subprocess.Popen, pump: _StderrPump, kill: bool) -> None:
    """End the session: close our end (the server then exits) or, after a failure, kill ssh
    at once (the server sees its connection drop and keeps nothing half-added)."""
    if kill:
        with suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
    with suppress(OSError, ValueError):
        process.stdin.close()
    try:
        process.wait(timeout=CONNECT_SECONDS)
    except subprocess.TimeoutExpired:
        with suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    pump.join(timeout=CONNECT_SECONDS)
    with suppress(OSError, ValueError):
        process.stdout.close()
