"""Build times as a report: each derivation's wall and CPU seconds, the critical path through
the build graph, and core use. Pure: steps in, text out (the CLI and the scheduler gather them).

Definitions:
- CPU seconds: user+system time of a build's whole process tree (a fetch: its own thread's).
- critical path: the chain of derivations, each an input of the next, whose recorded wall times
  add up to the most: no schedule finishes the graph sooner, however many cores it has. A
  derivation without a recorded time (substituted, not built, built before times were recorded)
  counts as 0 s, and the report says how many of those lie on it.
- modelled on N cores: each build's wall time estimated for N cores from its recorded wall, CPU
  and cores (Amdahl's law, `wall_on`), then the critical path through those estimates: how soon
  a builder with N cores could finish the graph, however many jobs it ran at once.
- core use: CPU seconds / (cores x wall seconds). For a run: the CPU seconds of its builds over
  the cores it was given (`--cores`) times the run's wall time. For builds recorded in a store,
  which may span many runs: summed over the timed builds, each with the cores it was given and
  its own wall time, i.e. the share of their cores the builds kept busy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from bootstrap.store.db import BuildTime

# how many builds the end of a run lists (the longest first)
TOP_BUILDS = 10


@dataclass(frozen=True)
class Step:
    """One derivation of a build graph. `time` is None where no build time is recorded;
    `note` is a remark: why it has no time (substituted, missing, ...), or about its build."""

    drv: str
    name: str
    inputs: tuple[str, ...]
    stage: str = ""
    time: BuildTime | None = None
    note: str = ""

    @property
    def wall(self) -> float:
        return self.time.wall if self.time else 0.0


@dataclass(frozen=True)
class CriticalPath:
    """The derivations of the longest path, inputs first, its wall seconds, and how many of
    them have no recorded time (counted as 0 s)."""

    steps: tuple[Step, ...]
    wall: float

    @property
    def untimed(self) -> int:
        return sum(step.time is None for step in self.steps)


def remaining_paths(
    order: Sequence[str], inputs_of: Callable[[str], Iterable[str]], seconds: Mapping[str, float]
) -> dict[str, float]:
    """For each of `order` (inputs before users), the longest chain of `seconds` from it to
    the end of the graph, itself included: how long the work that waits on it takes at best.
    Inputs outside `order` are ignored. Schedulers start the longest first (as build farms
    do), so the critical path never waits behind side branches."""
    longest = {drv: seconds[drv] for drv in order}
    for drv in reversed(order):  # users before their inputs
        for dep in inputs_of(drv):
            if dep in longest:
                longest[dep] = max(longest[dep], seconds[dep] + longest[drv])
    return longest


def critical_path(steps: Sequence[Step]) -> CriticalPath:
    """The longest path through `steps` (inputs before users; inputs outside `steps` are not
    waited for), weighted by wall time. Of equally long ones, the one through derivations
    later in build order: a path runs on through untimed ones (0 s) to the end of the graph."""
    order = {step.drv: index for index, step in enumerate(steps)}
    finish: dict[str, float] = {}
    previous: dict[str, str | None] = {}

    def longest(drvs: Iterable[str]) -> str | None:
        return max(drvs, key=lambda d: (finish[d], order[d]), default=None)

    for step in steps:
        before = longest(d for d in step.inputs if d in finish)
        finish[step.drv] = (finish[before] if before else 0.0) + step.wall
        previous[step.drv] = before
    by_drv = {step.drv: step for step in steps}
    chain: list[Step] = []
    end = longest(finish)
    while end is not None:
        chain.append(by_drv[end])
        end = previous[end]
    return CriticalPath(tuple(reversed(chain)), finish[chain[0].drv] if chain else 0.0)


def wall_on(time: BuildTime, cores: int) -> float:
    """The wall time `time`'s build would take with `cores` cores, by Amdahl's law: of its
    CPU seconds, P ran in parallel on all `time.cores` and the rest serially, so
    wall = serial + P/k and cpu = serial + P give P = (cpu - wall) * k / (k - 1). A build
    given one core shows no parallel part, so its wall time stays as it is. The estimate holds
    for a build that had its cores to itself: one that waited for CPU behind other work has a
    wall time longer than its work, which reads as serial time."""
    k = time.cores
    if k <= 1:
        return time.wall
    parallel = min(max((time.cpu - time.wall) * k / (k - 1), 0.0), time.cpu)
    return time.wall - parallel / k + parallel / cores


def modelled_path(steps: Sequence[Step], cores: int) -> CriticalPath:
    """The critical path with each build's wall time estimated for `cores` cores."""
    scaled = [
        replace(step, time=replace(step.time, wall=wall_on(step.time, cores), cores=cores))
        if step.time
        else step
        for step in steps
    ]
    return critical_path(scaled)


def model_lines(steps: Sequence[Step], core_counts: Iterable[int]) -> list[str]:
    """One line per core count: the modelled critical path's length and its longest builds."""
    lines = []
    for cores in core_counts:
        path = modelled_path(steps, cores)
        if path.untimed == len(path.steps):
            lines.append(f"on {cores} cores: unknown (no build on the path has a recorded time)")
            continue
        longest = sorted(path.steps, key=lambda s: -s.wall)[:3]
        top = ", ".join(f"{s.name} {_seconds(s)}" for s in longest if s.time)
        untimed = f"; {path.untimed} untimed builds on it count as 0 s" if path.untimed else ""
        lines.append(
            f"on {cores} cores: critical path {_long(path.wall)}, {len(path.steps)} builds "
            f"(longest: {top}){untimed}"
        )
    return lines


@dataclass(frozen=True)
class Report:
    """The timed builds of a graph; `run_wall` and `run_cores` for the report of one run."""

    steps: tuple[Step, ...]
    run_wall: float | None = None
    run_cores: int = 1

    @property
    def timed(self) -> list[BuildTime]:
        return [step.time for step in self.steps if step.time]

    @property
    def cpu(self) -> float:
        return sum(time.cpu for time in self.timed)

    @property
    def wall(self) -> float:
        return sum(time.wall for time in self.timed)

    @property
    def core_use(self) -> float | None:
        """See the module's docstring; None when there is no wall time to divide by."""
        if self.run_wall is not None:
            capacity = self.run_cores * self.run_wall
        else:
            capacity = sum(time.cores * time.wall for time in self.timed)
        return self.cpu / capacity if capacity > 0 else None

    @property
    def path(self) -> CriticalPath:
        return critical_path(self.steps)


def run_lines(report: Report, top: int = TOP_BUILDS) -> list[str]:
    """The end of a run: its longest builds, the critical path, core use."""
    builds = sorted((s for s in report.steps if s.time), key=lambda s: -s.wall)
    lines = [
        f"  built  {s.name:<32} {s.wall:8.1f} s  cpu {_cpu(s)}{f'  {s.note}' if s.note else ''}"
        for s in builds[:top]
    ]
    if len(builds) > top:
        lines.append(f"  ... and {len(builds) - top} more (`bootstrap show --timings` lists all)")
    if builds:
        lines += [path_line(report.path), core_use_line(report)]
    return lines


def path_line(path: CriticalPath) -> str:
    """`critical path: 12.3 s, 3 builds: a 1.0 s -> b 2.0 s -> c 9.3 s`."""
    if path.untimed == len(path.steps):
        return "critical path: unknown (no build on it has a recorded time)"
    chain = " -> ".join(f"{s.name} {_seconds(s)}" for s in path.steps)
    untimed = f" ({path.untimed} without a time, counted as 0 s)" if path.untimed else ""
    return f"critical path: {path.wall:.1f} s, {len(path.steps)} builds{untimed}: {chain}"


def core_use_line(report: Report) -> str:
    use = report.core_use
    share = "n/a" if use is None else f"{use:.0%}"
    if report.run_wall is not None:
        basis = f"{report.run_cores} cores x the run's {report.run_wall:.1f} s"
    else:
        basis = "each build's cores x its wall, summed"
    return f"core use: {share} ({report.cpu:.1f} CPU s / ({basis}))"


def text_table(report: Report) -> str:
    """Every derivation in build order with its times, then the totals, path and core use."""
    width = max([len("package"), *(len(s.name) for s in report.steps)])
    lines = [f"{'stage':<10} {'package':<{width}} {'wall s':>9} {'CPU s':>9} {'cores':>5}  use"]
    for step in report.steps:
        head = f"{step.stage:<10} {step.name:<{width}}"
        if (t := step.time) is None:
            lines.append(f"{head} {'-':>9} {'-':>9} {'-':>5}  {step.note}")
        else:
            lines.append(f"{head} {t.wall:9.2f} {t.cpu:9.2f} {t.cores:>5}  {_use(t)}")
    return "\n".join([*lines, "", *_totals(report)])


def markdown_table(report: Report) -> str:
    """The same as `text_table`, as a Markdown table docs/stages.md can hold."""
    lines = ["| stage | package | wall | CPU | cores | core use |", "|---|---|---|---|---|---|"]
    for step in report.steps:
        head = f"| {step.stage} | {step.name} |"
        if (t := step.time) is None:
            lines.append(f"{head} — | — | — | {step.note} |")
        else:
            lines.append(f"{head} {_long(t.wall)} | {_long(t.cpu)} | {t.cores} | {_use(t)} |")
    return "\n".join([*lines, "", *(f"- {line}" for line in _totals(report))])


def _totals(report: Report) -> list[str]:
    untimed = _counts(s.note for s in report.steps if s.time is None)
    missing = f" (not timed: {untimed})" if untimed else ""
    return [
        f"{len(report.timed)} timed builds: {report.wall:.1f} s wall, {report.cpu:.1f} s CPU"
        f"{missing}",
        path_line(report.path),
        core_use_line(report),
    ]


def _counts(notes: Iterable[str]) -> str:
    counted: dict[str, int] = {}
    for note in notes:
        counted[note] = counted.get(note, 0) + 1
    return ", ".join(f"{n} {note}" for note, n in counted.items())


def _seconds(step: Step) -> str:
    return f"{step.wall:.1f} s" if step.time else "?"


def _cpu(step: Step) -> str:
    return f"{step.time.cpu:8.1f} s" if step.time else f"{'?':>8}"


def _use(time: BuildTime) -> str:
    capacity = time.cores * time.wall
    return f"{time.cpu / capacity:.0%}" if capacity > 0 else "n/a"


def _long(seconds: float) -> str:
    """`5.4 s`, or with minutes from a minute on: `528 s (8.8 min)`."""
    return f"{seconds:.1f} s" if seconds < 60 else f"{seconds:.0f} s ({seconds / 60:.1f} min)"
