"""-L/--print-build-logs, -v/--verbose, -q/--quiet, and the progress reporter they make."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from bootstrap.progress import Reporter, terminal_width


def add_progress_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-L",
        "--print-build-logs",
        action="store_true",
        help="print every build log line as it comes, prefixed by the package ('name> line'), "
        "as Nix's -L does",
    )
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also say downloads and unpacks, and each output path as it is built",
    )
    loudness.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bar and no per-build lines: only failures, warnings and the result",
    )


def reporter(args: argparse.Namespace, stage_of: dict[str, str] | None = None) -> Reporter:
    """The event callback the options ask for; `stage_of` maps drv paths to stage names."""
    verbosity = 1 if getattr(args, "verbose", False) else -1 if getattr(args, "quiet", False) else 0
    return Reporter(
        verbosity=verbosity,
        print_build_logs=getattr(args, "print_build_logs", False),
        stage_of=stage_of,
    )


def stage_names(plan) -> dict[str, str]:
    """drv path -> the name of the stage whose package it is (a TargetPlan's)."""
    return {drv: stage for stage, drvs in plan.stages.items() for drv in drvs}


def seed_sink(report: Reporter) -> Callable[[str], None]:
    """The seed build's line callback: its steps and fixpoint as lines; on a terminal, every
    other line live on one status line (the step it is in and what it last said)."""
    step = ""

    def sink(line: str) -> None:
        nonlocal step
        line = line.rstrip()
        if line.startswith(("not cached", "STEP", "FIXPOINT", "seed download failed")):
            step = line.split(":", 1)[0] if line.startswith("STEP") else step
            report.clear_status()
            report.say(f"  seed: {line}", level=0)
        elif report.print_build_logs:
            report.say(f"seed> {line}", level=-1)
        elif report.live and line:
            report.status(f"seed {step or 'build'}: {line}", terminal_width(report.stream))

    return sink
