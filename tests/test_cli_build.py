"""`bootstrap run/show/graph/fetch/log` as a user runs them, on a small real recipe tree."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from bootstrap.store import Store
from bootstrap.store.verify import verify_store

from .conftest import run_cli
from .engine_fixtures import busybox_seed, make_recipes, requires_busybox, wait_until

pytestmark = requires_busybox

STAGES_INIT = """
from bootstrap.fetch import Source
from bootstrap.hashing import Hash
from bootstrap.recipe import Package, Seed, Stage

seed = Seed("test-seed", Hash.parse({archive_hash!r}), Hash.parse({tree_hash!r}), ({url!r},))
note = Source.of({note_url!r}, {note_hash!r}, name="note.txt")
hello = Package("hello", "1.0", "hello.sh", sources=(note,), shell=seed)
greet = Package(
    "greet", "2.0", "greet.sh", shell=seed, inputs=(hello,),
    profiles={{"fast": {{"speed": "fast"}}}},
)

PROFILES = {{"default": "what users ship", "fast": "sooner"}}

TARGETS = {{
    "x86_64-linux": [
        Stage("stage0", (seed,)),
        Stage("stage1", (hello,)),
        Stage("stage2", (greet,)),
    ],
}}
"""

SCRIPTS = {
    "hello.sh": textwrap.dedent("""\
        unpack_sources
        mkdir -p $out/bin
        printf '#!%s\\necho hello, %s\\n' "$SHELL" "$(cat note.txt)" > $out/bin/hello
        chmod +x $out/bin/hello
    """),
    "greet.sh": 'hello > $out\nif [ -n "${speed:-}" ]; then echo "$speed" >> $out; fi\n',
}


def make_stages(tmp: Path) -> Path:
    seed, _ = busybox_seed(tmp)
    note = tmp / "note.txt"
    note.write_text("world")
    recipes = make_recipes(tmp, SCRIPTS)
    (recipes.stages_dir / "__init__.py").write_text(
        STAGES_INIT.format(
            archive_hash=str(seed.archive_hash),
            tree_hash=str(seed.tree_hash),
            url=seed.urls[0],
            note_url=note.as_uri(),
            note_hash=hashlib.sha256(b"world").hexdigest(),
        )
    )
    return recipes.stages_dir


def cli_env(tmp: Path) -> dict:
    return {
        **os.environ,
        "BOOTSTRAP_STORE": str(tmp / "root"),
        "BOOTSTRAP_CACHE_DIR": str(tmp / "cache"),
        "BOOTSTRAP_PROGRESS": "0",
    }


def test_run_show_graph_log(tmp_path):
    stages = make_stages(tmp_path)
    env = cli_env(tmp_path)
    assert b"2 built" in run_cli("fetch", "--stages", stages, env=env).stdout
    shown = run_cli("show", "x86_64-linux", "--stages", stages, env=env).stdout.decode()
    assert "stage2" in shown and "greet-2.0" in shown and shown.count("missing") == 2

    partial = run_cli(
        "run",
        "--target",
        "x86_64-linux",
        "--until",
        "stage1",
        "--stages",
        stages,
        "--out-link",
        tmp_path / "result",
        env=env,
    )
    assert b"1 built, 2 reused" in partial.stdout
    assert (tmp_path / "result" / "bin" / "hello").exists()
    shown = run_cli("show", "--stages", stages, env=env).stdout.decode()
    assert shown.count("built") == 3 and shown.count("missing") == 1

    # while another process builds greet (holds its lock), show says so
    greet = next(line.split()[-1] for line in shown.splitlines() if "greet-2.0" in line)
    with Store(tmp_path / "root").lock(greet):
        shown = run_cli("show", "--stages", stages, env=env).stdout.decode()
    assert next(line for line in shown.splitlines() if "greet-2.0" in line).split()[2] == "building"

    full = run_cli("run", "--stages", stages, "--out-link", tmp_path / "result", env=env)
    assert b"1 built, 3 reused" in full.stdout
    assert (tmp_path / "result").read_text() == "hello, world\n"
    summary = (tmp_path / "root/var/bootstrap/manifests/x86_64-linux.summary").read_text()
    assert summary.count("sha256:") == 3 and "incomplete" not in summary
    assert summary.splitlines()[0] in full.stdout.decode()

    dot = run_cli("graph", "--stages", stages, env=env).stdout.decode()
    assert dot.startswith("digraph") and dot.count("->") == 3  # seed -> greet is implied
    greet_out = os.readlink(tmp_path / "result")
    assert b"building greet-2.0" in run_cli("log", greet_out, env=env).stdout


def test_fetch_only_downloads(tmp_path):
    stages = make_stages(tmp_path)
    env = cli_env(tmp_path)
    out = run_cli("fetch", "--stages", stages, env=env).stdout.decode()
    assert "2 built" in out  # the seed archive and note.txt, nothing else
    shown = run_cli("show", "--stages", stages, env=env).stdout.decode()
    assert shown.count("missing") == 2


def test_fetch_goes_on_past_a_source_it_cannot_download(tmp_path):
    stages = make_stages(tmp_path)
    (tmp_path / "test-seed.tar.gz").unlink()  # fetched first; note.txt is still downloaded
    result = run_cli("fetch", "-j", "1", "--stages", stages, env=cli_env(tmp_path), check=False)
    assert result.returncode == 1
    assert b"1 built, 0 reused, 1 failed" in result.stdout
    assert b"FAILED test-seed" in result.stdout


def test_bad_target_and_stage_are_one_line_errors(tmp_path):
    stages = make_stages(tmp_path)
    env = cli_env(tmp_path)
    for args, message in (
        (("show", "aarch64-linux"), b"unknown target 'aarch64-linux'; known: x86_64-linux"),
        (("run", "x86_64-linx"), b"unknown target 'x86_64-linx'; known: x86_64-linux\n"),
        (("show", "--until", "stage9"), b"unknown stage 'stage9'"),
        (("run", "-j", "0"), b"max-jobs is 0 and no builders are set: nothing could build"),
        (("run", "-j", "x"), b"expected a whole number"),
    ):
        result = run_cli(*args, "--stages", stages, env=env, check=False)
        assert result.returncode != 0 and message in result.stderr, result.stderr
        assert b"Traceback" not in result.stderr


def test_failed_build_exits_nonzero_with_log_tail(tmp_path):
    stages = make_stages(tmp_path)
    (stages / "builders" / "greet.sh").write_text("echo broken build; exit 4\n")
    result = run_cli("run", "--stages", stages, "--no-out-link", env=cli_env(tmp_path), check=False)
    assert result.returncode == 1
    assert b"FAILED greet-2.0" in result.stdout and b"broken build" in result.stderr


def test_a_profile_changes_the_packages_that_name_it(tmp_path):
    stages = make_stages(tmp_path)
    env = cli_env(tmp_path)
    run = ("run", "--stages", stages, "--no-out-link")
    run_cli(*run, env=env)
    fast = run_cli(*run, "--profile", "fast", env=env).stdout.decode()
    # hello names no profile: reused; greet is a new derivation, built with the fast settings
    assert "1 built, 3 reused" in fast and "built  greet-2.0" in fast, fast
    manifests = tmp_path / "root" / "var" / "bootstrap" / "manifests"
    assert {"x86_64-linux.json", "x86_64-linux.fast.json"} <= {p.name for p in manifests.iterdir()}
    shown = run_cli("show", "--stages", stages, "--profile", "fast", env=env).stdout.decode()
    greet_fast = next(line for line in shown.splitlines() if "greet-2.0" in line).split()[-1]
    store = tmp_path / "root" / "store" / Path(greet_fast).name
    assert store.read_text() == "hello, world\nfast\n"


def test_an_unknown_profile_is_a_one_line_error(tmp_path):
    stages = make_stages(tmp_path)
    result = run_cli(
        "show", "--stages", stages, "--profile", "quick", env=cli_env(tmp_path), check=False
    )
    assert result.returncode != 0
    assert result.stderr.decode() == (
        "bootstrap: error: unknown profile 'quick': expected one of default, fast\n"
    )


def test_sigterm_stops_a_run_like_ctrl_c_and_the_next_run_finishes(tmp_path):
    stages = make_stages(tmp_path)
    script = stages / "builders" / "greet.sh"
    script.write_text("sleep 3007\n" + script.read_text())  # a duration no other test uses
    env = cli_env(tmp_path)
    run = [sys.executable, "-m", "bootstrap", "run", "--stages", str(stages), "--no-out-link"]
    proc = subprocess.Popen(run, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    logs = tmp_path / "root" / "var" / "bootstrap" / "logs"
    wait_until(lambda: any("greet" in log.name for log in logs.glob("*.log")), proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.decode().endswith("bootstrap: terminated\n"), stderr
    assert not subprocess.run(["pgrep", "-f", "sleep 3007"], capture_output=True).stdout
    store = Store(tmp_path / "root")
    assert verify_store(store).ok
    assert not any(p.endswith("-greet-2.0") for p in store.all_paths())
    script.write_text(script.read_text().removeprefix("sleep 3007\n"))
    assert b"1 built, 3 reused" in run_cli(*run[3:], env=env).stdout


def test_an_interrupted_resumable_build_shows_as_partial_and_the_next_run_continues_it(tmp_path):
    stages = make_stages(tmp_path)
    init = stages / "__init__.py"
    init.write_text(
        init.read_text().replace('"greet.sh", shell=seed', '"greet.sh", resumable=True, shell=seed')
    )
    script = stages / "builders" / "greet.sh"
    script.write_text("[ -f paused ] || { touch paused; sleep 300; }\n" + script.read_text())
    env = cli_env(tmp_path)
    run = [sys.executable, "-m", "bootstrap", "run", "--stages", str(stages), "--no-out-link"]
    proc = subprocess.Popen(run, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    physical = tmp_path / "root" / "store"
    wait_until(lambda: list(physical.glob(".partial-*-greet-2.0/build/paused")), proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    shown = run_cli("show", "--stages", stages, env=env).stdout.decode()
    assert next(line for line in shown.splitlines() if "greet-2.0" in line).split()[2] == "partial"
    again = run_cli(*run[3:], env=env)
    assert b"building greet-2.0 (resuming its interrupted build" in again.stderr
    assert b"1 built, 3 reused" in again.stdout
    assert not list(physical.glob(".partial-*"))


def test_a_mistake_in_the_recipes_is_one_line_naming_the_file_and_line(tmp_path):
    stages = tmp_path / "stages"
    stages.mkdir()
    (stages / "__init__.py").write_text("from stages import stage1\nTARGETS = {}\n")
    (stages / "stage1.py").write_text("from bootstrap.recipe import Package\nbusybox = Pakage()\n")
    result = run_cli("show", "--stages", stages, check=False, env=cli_env(tmp_path))
    assert result.returncode == 1
    assert result.stderr.decode() == (
        f"bootstrap: error: {stages}/stage1.py:2: NameError: name 'Pakage' is not defined\n"
    )
