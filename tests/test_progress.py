"""Progress people can read: the bar's line (fixed width, the stage, real builds only), and
what `export`, `audit reproduce` and the build commands say with -L, -v and -q, run as a user
runs them on the small recipe tree of tests/test_cli_build.py."""

from __future__ import annotations

import io

from bootstrap import progress
from bootstrap.cli.progress import seed_sink
from bootstrap.progress import Event, Reporter

from .conftest import run_cli
from .engine_fixtures import requires_busybox
from .test_cli_build import cli_env, make_stages

LONG_LINE = "checking whether the C compiler works with a very long option list " * 5


def _bar_after(events: list[Event]) -> Reporter:
    report = Reporter(progress=False, stage_of={"gcc.drv": "stage4"}, stream=io.StringIO())
    for event in events:
        report(event)
    return report


def test_the_bar_keeps_its_width_names_the_stage_and_counts_real_builds_only():
    report = _bar_after(
        [
            Event(progress.PLAN, count=2, total=1),
            Event(progress.START, "source.tar.xz", "source.drv", builtin=True),
            Event(progress.DONE, "source.tar.xz", "source.drv", seconds=0.0, builtin=True),
            Event(progress.START, "gcc-12.2.0", "gcc.drv"),
            Event(progress.LINE, "gcc-12.2.0", "gcc.drv", LONG_LINE),
        ]
    )
    for width in (40, 80, 200):
        line = report.render_bar(width)
        assert len(line) < width, line
    wide = report.render_bar(120)
    assert wide.startswith("stage4 [" + "-" * Reporter.BAR_WIDTH + "] 0/2 builds")
    assert "ETA ?" in wide  # the 0.0 s download is no rate to predict the compile by
    assert "| gcc-12.2.0: checking whether" in wide and wide.endswith("…")
    # a short terminal cuts the log line, never the bar
    assert report.render_bar(72).startswith("stage4 [" + "-" * Reporter.BAR_WIDTH + "]")

    report(Event(progress.DONE, "gcc-12.2.0", "gcc.drv", seconds=84.0))
    done = report.render_bar(120)
    assert "] 1/2 builds" in done and " left" in done and "ETA ?" not in done
    assert done.count("#") == Reporter.BAR_WIDTH // 2


def test_print_build_logs_prefixes_each_line_and_quiet_says_only_failures():
    stream = io.StringIO()
    loud = Reporter(progress=False, print_build_logs=True, stream=stream)
    loud(Event(progress.START, "hello-1.0", "hello.drv"))
    loud(Event(progress.LINE, "hello-1.0", "hello.drv", "compiling hello.c"))
    assert stream.getvalue().splitlines() == ["building hello-1.0", "hello-1.0> compiling hello.c"]

    stream = io.StringIO()
    quiet = Reporter(progress=False, verbosity=-1, stream=stream)
    quiet(Event(progress.START, "hello-1.0", "hello.drv"))
    quiet(Event(progress.DONE, "hello-1.0", "hello.drv", "/bootstrap/store/x-hello", 1.0))
    quiet(Event(progress.FAILED, "bad-1", "bad.drv", "builder failed with exit code 1"))
    assert stream.getvalue() == "failed bad-1: builder failed with exit code 1\n"


@requires_busybox
def test_export_and_audit_reproduce_say_what_they_do(tmp_path):
    stages = make_stages(tmp_path)
    env = cli_env(tmp_path)
    run_cli("run", "--stages", stages, "--no-out-link", env=env)

    exported = run_cli("export", "--stages", stages, "--to", tmp_path / "cache", env=env)
    said = exported.stderr.decode().splitlines()
    assert said and said[0].startswith(f"exporting to {tmp_path / 'cache'}: 1/")
    quiet = run_cli("export", "-q", "--stages", stages, "--to", tmp_path / "c2", env=env)
    assert quiet.stderr == b""

    checked = run_cli("audit", "reproduce", "--stages", stages, env=env).stderr.decode()
    assert "building hello-1.0 again, to compare" in checked.splitlines()
    assert any(line.startswith("built greet-2.0 in ") for line in checked.splitlines())
    logs = run_cli("audit", "reproduce", "-L", "--stages", stages, env=env).stderr.decode()
    assert any(line.startswith("hello-1.0> ") for line in logs.splitlines()), logs


@requires_busybox
def test_run_streams_build_logs_with_L_shows_outputs_with_v_and_little_with_q(tmp_path):
    stages = make_stages(tmp_path)
    env = cli_env(tmp_path)
    logs = run_cli("run", "-L", "--stages", stages, "--no-out-link", env=env).stderr.decode()
    lines = logs.splitlines()
    assert any(line.startswith("hello-1.0> building hello-1.0 with hello.sh") for line in lines)

    fresh = {**env, "BOOTSTRAP_STORE": str(tmp_path / "quiet")}
    quiet = run_cli("run", "-q", "--stages", stages, "--no-out-link", env=fresh).stderr.decode()
    assert not any(line.startswith(("building ", "built ")) for line in quiet.splitlines()), quiet

    fresh = {**env, "BOOTSTRAP_STORE": str(tmp_path / "verbose")}
    loud = run_cli("run", "-v", "--stages", stages, "--no-out-link", env=fresh).stderr.decode()
    built = [line for line in loud.splitlines() if line.startswith("built greet-2.0 in ")]
    assert built and built[0].split(": ", 1)[1].startswith("/bootstrap/store/"), loud


def test_the_seed_build_shows_its_steps_as_lines_and_the_rest_live():
    stream = io.StringIO()
    report = Reporter(progress=True, stream=stream)
    sink = seed_sink(report)
    for line in ("not cached: building the seed", "STEP 2: tcc by tcc", "tcc -c libtcc.c"):
        sink(line)
    said = stream.getvalue()
    assert "  seed: not cached: building the seed\n" in said
    assert "  seed: STEP 2: tcc by tcc\n" in said
    assert said.endswith("\r") and "seed STEP 2: tcc -c libtcc.c" in said.rsplit("\n", 1)[1]
