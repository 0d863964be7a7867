"""Realising a graph of derivations: what is missing gets built, in dependency order, in parallel.

Before anything is built, every derivation of the graph is written to the store (with the local
files it names), so `bootstrap log`, `drv show` and the audits can find them. Then the
derivations whose outputs are not all valid are built, `max_jobs` at a time. An interrupted run
leaves only complete, valid paths behind; running it again continues where it stopped. With a
`root_name`, whatever the run made valid is then rooted under that name (even when a build
failed or the run was interrupted), so `store gc` keeps it and the kept work of its builds.

With remote `builders` (machines running Nix, see bootstrap.remote), a ready derivation goes
to a free builder whose system and features fit, the fastest first, and the heaviest ready
derivations (by the NAR size of their input closure) are placed first; local slots
(`max_jobs`, 0 for none) keep building beside them. A derivation real Nix cannot build (one
of bootstrap's builtins) is built here. A builder that cannot be reached is dropped for the
rest of the run with one warning, and its derivation placed again (another builder, or here).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bootstrap import progress
from bootstrap.build import (
    BuildOptions,
    BuildOutcome,
    earlier_attempts,
    has_kept_build,
    input_paths,
    realise,
)
from bootstrap.buildgraph import BuildGraph, complete, instantiate
from bootstrap.builtins import BUILTINS, FETCHURL
from bootstrap.derivation import Derivation
from bootstrap.errors import BootstrapError
from bootstrap.store import Store
from bootstrap.store.db import BuildTime
from bootstrap.store.disk import disk_full, is_disk_full
from bootstrap.store.gc import set_profile_root
from bootstrap.timings import Report, Step, remaining_paths, run_lines

if TYPE_CHECKING:  # remote building and substitution load when used
    from bootstrap.remote.machines import Machine
    from bootstrap.substitute import Substituter


@dataclass
class Summary:
    built: list[BuildOutcome] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    substituted: dict[str, str] = field(default_factory=dict)  # drv path -> cache URL
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cores: int = 1  # what each build was given (`--cores`), for core use

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped

    def render(self, graph: BuildGraph) -> str:
        lines = [
            f"{len(self.built)} built, "
            + (f"{len(self.substituted)} substituted, " if self.substituted else "")
            + f"{len(self.reused)} reused, {len(self.failed)} failed, "
            f"{len(self.skipped)} not built because an input failed, in {self.seconds:.1f} s"
        ]
        lines += run_lines(self.report(graph))
        for path, url in self.substituted.items():
            lines.append(f"  substituted {graph.derivations[path].name} from {url}")
        for path, reason in self.failed.items():
            lines.append(f"  FAILED {graph.derivations[path].name}: {reason.splitlines()[0]}")
        return "\n".join(lines)

    def report(self, graph: BuildGraph) -> Report:
        """This run's builds as a timing report: what was not built in it took no time."""
        built = {outcome.drv_path: outcome for outcome in self.built}
        steps = tuple(
            Step(
                path,
                graph.derivations[path].name,
                tuple(graph.inputs_of(path)),
                time=BuildTime(outcome.seconds, outcome.cpu_seconds, self.cores, 0),
                note="" if outcome.hermetic else "(NOT hermetic: --no-sandbox)",
            )
            for path in graph.topological()
            if (outcome := built.get(path))
        )
        return Report(steps, run_wall=self.seconds, run_cores=self.cores)


@dataclass
class Scheduler:
    store: Store
    options: BuildOptions = field(default_factory=BuildOptions)
    max_jobs: int = 1
    keep_going: bool = False
    progress: bool | None = None
    # without a progress bar, a build says at most this often how long it has run and what its
    # log last said (a line on stderr), so a long build in a CI log shows it is alive
    heartbeat_seconds: float = 300.0
    # told what happens: each build's start, log lines and end, and notes (the scheduler prints
    # nothing itself); default: a progress.Reporter with `progress` and `heartbeat_seconds`
    on_event: progress.OnEvent | None = None
    # asked for a derivation's outputs before it is built (None: build everything)
    substituter: Substituter | None = None
    # called after substitution, before the first build (e.g. to provide the seed archive)
    before_build: Callable[[BuildGraph], None] | None = None
    # the GC root (`gcroots/profiles/NAME`) that the run replaces with what it made valid
    root_name: str | None = None
    # remote machines to offload to (`max_jobs` then counts local builds only, and may be 0)
    builders: Sequence[Machine] = ()

    def __post_init__(self) -> None:
        self._emit = self.on_event or progress.Reporter(
            self.progress, heartbeat_seconds=self.heartbeat_seconds
        )
        self._placed: dict[str, Machine | None] = {}  # running drv path -> where (None: here)
        self._down: set[Machine] = set()
        self._weights: dict[str, int] = {}
        self._rank: dict[str, float] = {}  # drv path -> longest remaining path from it, seconds

    def realise(self, graph: BuildGraph) -> Summary:
        """Build everything `graph.targets` needs; raise BootstrapError if anything failed."""
        start = time.monotonic()
        with self.store.gc_guard():
            done = complete(graph, self.instantiate(graph))
            try:
                substituted = self._substitute(graph, done)
                if substituted:  # with their closures, which may hold other outputs
                    done = complete(graph, self.store.db.valid_among(graph.output_paths()))
                if self.before_build is not None:
                    self.before_build(graph)
                summary = self._run(graph, self._missing(graph, done), done)
            finally:
                if self.root_name:
                    self._root(graph, self.root_name)
        summary.substituted = substituted
        summary.reused = [p for p in summary.reused if p not in substituted]
        summary.seconds = time.monotonic() - start
        summary.cores = self.options.cores
        return summary

    def _root(self, graph: BuildGraph, name: str) -> None:
        """Root every valid output of the graph and its targets' derivations (whose closure
        holds every derivation of the graph, so their kept build directories stay too)."""
        try:
            set_profile_root(self.store, name, [*graph.output_paths(), *graph.targets])
        except BootstrapError as err:
            self._note(f"bootstrap: warning: the run's GC root was not updated: {err}")

    def instantiate(self, graph: BuildGraph) -> set[str]:
        """Write local sources and every drv of the graph into the store; return the graph's
        valid output paths."""
        return instantiate(self.store, graph)

    def _substitute(self, graph: BuildGraph, done: set[str]) -> dict[str, str]:
        """Take what the caches have, top down as Nix does: a derivation whose outputs are
        substituted needs none of its inputs, so those are not even asked for."""
        if self.substituter is None or not self.substituter.caches:
            return {}
        done: dict[str, str] = {}
        seen: set[str] = set()
        todo = list(reversed(graph.targets))
        while todo:
            path = todo.pop()
            drv = graph.derivations[path]
            if path in seen or path in done:
                continue
            seen.add(path)
            outputs = {name: out.path for name, out in drv.outputs.items()}
            if self.substituter.substitute(list(outputs.values())):
                for name, out in outputs.items():
                    self.store.db.set_drv_output(path, name, out)
                done[path] = self.substituter.origins.get(outputs["out"], "")
                self._note(f"substituted {drv.name} from {done[path]}")
            else:
                todo.extend(graph.inputs_of(path))
        return done

    def _missing(self, graph: BuildGraph, done: set[str]) -> list[str]:
        """What must be built: derivations with an invalid output (not in `done`), reached
        from the targets through such derivations (a valid one needs none of its inputs)."""
        needed: set[str] = set()
        todo = list(graph.targets)
        while todo:
            path = todo.pop()
            if path in needed or path in done:
                continue
            needed.add(path)
            todo.extend(graph.inputs_of(path))
        return [p for p in graph.topological() if p in needed]

    def _run(self, graph: BuildGraph, missing: list[str], done: set[str]) -> Summary:
        missing_set = set(missing)
        # a source that a valid output no longer needs is neither built nor reused
        present = [p for p in graph.topological() if p not in missing_set and p in done]
        summary = Summary(reused=present)
        if not missing:
            return summary
        waiting = {p: {d for d in graph.inputs_of(p) if d in missing_set} for p in missing}
        self._rank = remaining_paths(missing, graph.inputs_of, self._estimates(graph, missing))
        builtins = sum(graph.derivations[p].builder in BUILTINS for p in missing)
        self._emit(progress.Event(progress.PLAN, count=len(missing) - builtins, total=builtins))
        running: dict[Future, str] = {}
        workers = max(1, self.max_jobs + sum(m.max_jobs for m in self.builders))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            try:
                while waiting or running:
                    self._submit_ready(graph, pool, waiting, running, summary)
                    if not running:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        self._finish(graph, running.pop(future), future, waiting, summary)
            except KeyboardInterrupt:
                self._cancel(running)
                raise
            finally:
                self._emit(progress.Event(progress.END))
        summary.skipped = sorted(waiting)
        return summary

    def _cancel(self, running: dict[Future, str]) -> None:
        """Stop every build at once: none may register its outputs, and sandboxes are killed
        until each build has given up (one may have been about to start its sandbox)."""
        self.options.cancelled.set()
        while running:
            _kill_children()
            done, _ = wait(running, timeout=0.2)
            for future in done:
                del running[future]

    def _submit_ready(self, graph, pool, waiting, running, summary) -> None:
        """Start ready derivations while a slot fits them (so "building" means started)."""
        if summary.failed and not self.keep_going:
            return
        ready = [p for p, deps in waiting.items() if not deps]
        ready.sort(key=lambda p: -self._rank.get(p, 0.0))  # the longest path first
        if self.builders:
            ready.sort(key=lambda p: -self._weight(graph.derivations[p]))
        for path in ready:
            drv = graph.derivations[path]
            place = self._place(drv)
            if place is _WAIT:
                continue
            del waiting[path]
            if isinstance(place, str):
                summary.failed[path] = place
                self._emit(progress.Event(progress.FAILED, drv.name, path, place))
                continue
            self._placed[path] = place
            running[self._start(pool, path, drv, place)] = path

    def _start(self, pool, path: str, drv: Derivation, place: Machine | None) -> Future:
        from bootstrap.remote.offload import build_remotely, not_offloadable

        sink = progress.line_events(self._emit, drv.name, path)
        if place is not None:
            self._started(path, drv, f" on {place.uri}")
            return pool.submit(build_remotely, self.store, path, drv, place, self.options, sink)
        note = self._resume_note(path, drv)
        if self.builders and (reason := not_offloadable(drv)):
            note += f" (here: {reason})"
        self._started(path, drv, note)
        if drv.builder not in BUILTINS and self._beside_longer(path):
            return pool.submit(
                _niced, SIDE_NICE, realise, self.store, path, drv, self.options, sink
            )
        return pool.submit(realise, self.store, path, drv, self.options, sink)

    def _resume_note(self, path: str, drv: Derivation) -> str:
        if not has_kept_build(self.store, path, drv):
            return ""
        earlier = earlier_attempts(self.store, path)
        if not earlier.attempts:
            return " (resuming its interrupted build)"
        return (
            f" (resuming its interrupted build: {earlier.attempts} attempt(s) so far,"
            f" {earlier.wall / 60:.0f} min, {earlier.cpu / 60:.0f} CPU min)"
        )

    def _beside_longer(self, path: str) -> bool:
        """Whether a local build already running has a longer path ahead of it than `path`:
        then `path` is a side branch, built in the cycles that build leaves idle."""
        mine = self._rank.get(path, 0.0)
        return any(
            place is None and other != path and self._rank.get(other, 0.0) > mine
            for other, place in self._placed.items()
        )

    def _estimates(self, graph: BuildGraph, paths: list[str]) -> dict[str, float]:
        """Expected wall seconds of each build: its last recorded time, else the last one of an
        output of the same name (the package at another version of its inputs), else a guess
        from the size of the sources it compiles (`_guess`)."""
        recorded = self.store.db.recorded_build_times()
        by_name = {}
        for path, took in sorted(recorded.items(), key=lambda item: item[1].built_at):
            by_name[path.rsplit("/", 1)[-1].split("-", 1)[-1]] = took.wall
        seconds = {}
        for path in paths:
            drv = graph.derivations[path]
            out = drv.outputs[next(iter(drv.outputs))].path
            name = out.rsplit("/", 1)[-1].split("-", 1)[-1]
            if out in recorded or name in by_name:
                seconds[path] = recorded[out].wall if out in recorded else by_name[name]
            else:
                seconds[path] = self._guess(graph, drv)
        return seconds

    def _guess(self, graph: BuildGraph, drv: Derivation) -> float:
        """A build never timed in this store: its time grows with the sources it compiles, so
        GUESS_SECONDS_PER_MB for each MB of its downloads in the download cache (as
        compressed archives), at least BUILD_GUESS_SECONDS; a download itself, a second."""
        if drv.builder in BUILTINS:
            return BUILTIN_GUESS_SECONDS
        size = 0
        for dep in drv.input_drvs:
            source = graph.derivations.get(dep)
            if source is not None and source.builder == FETCHURL:
                cached = self.options.fetcher.cache_path(source.outputs["out"].fixed_hash())
                size += cached.stat().st_size if cached.is_file() else 0
        return max(BUILD_GUESS_SECONDS, GUESS_SECONDS_PER_MB * size / 1e6)

    def _place(self, drv: Derivation) -> Machine | str | object | None:
        """Where `drv` builds now: a free fitting builder (the fastest, then the least busy),
        None for here, _WAIT while every place that fits is busy, or why it cannot build."""
        from bootstrap.remote.offload import not_offloadable, required_features

        busy = {m: list(self._placed.values()).count(m) for m in self.builders}
        fitting = [] if not_offloadable(drv) else self._fitting(drv)
        free = [m for m in fitting if busy[m] < m.max_jobs]
        if free:
            return max(free, key=lambda m: (m.speed_factor, -busy[m] / m.max_jobs))
        if list(self._placed.values()).count(None) < self.max_jobs:
            return None
        if fitting or self.max_jobs > 0:
            return _WAIT
        why = not_offloadable(drv) or (
            f"no builder fits (system {drv.system}, "
            f"features {' '.join(sorted(required_features(drv))) or 'none'})"
        )
        return f"not built: max-jobs is 0 (nothing builds here) and {why}"

    def _fitting(self, drv: Derivation) -> list[Machine]:
        from bootstrap.remote.offload import required_features

        features = required_features(drv)
        return [m for m in self.builders if m not in self._down and m.fits(drv.system, features)]

    def _weight(self, drv: Derivation) -> int:
        """The NAR size of what a build of `drv` needs: heavier builds go to faster builders."""
        key = drv.outputs["out"].path
        if key not in self._weights:
            try:
                closure = self.store.closure(input_paths(self.store, drv))
                size = sum(self.store.query_info(p).nar_size for p in closure)
            except BootstrapError:
                size = 0
            self._weights[key] = size
        return self._weights[key]

    def _finish(self, graph, path, future, waiting, summary) -> None:
        from bootstrap.remote.ssh import RemoteUnavailable

        drv = graph.derivations[path]
        name, builtin = drv.name, drv.builder in BUILTINS
        place = self._placed.pop(path)
        try:
            outcome = future.result()
        except RemoteUnavailable as err:
            self._down.add(place)
            self._note(f"bootstrap: warning: builder unavailable, not used again: {err}")
            waiting[path] = set()
            return
        except (BootstrapError, OSError) as err:
            if isinstance(err, OSError) and not is_disk_full(err):
                raise
            if isinstance(err, OSError):
                err = disk_full(err.filename or self.store.physical_dir)
            reason = str(err)
            summary.failed[path] = reason
            self._emit(progress.Event(progress.FAILED, name, path, reason, builtin=builtin))
            return
        if outcome.built:
            summary.built.append(outcome)
            out = drv.outputs["out"].path
            event = progress.Event(progress.DONE, name, path, out, outcome.seconds, builtin)
        else:
            summary.reused.append(path)
            event = progress.Event(progress.REUSED, name, path, builtin=builtin)
        self._emit(event)
        for deps in waiting.values():
            deps.discard(path)

    def _started(self, path: str, drv: Derivation, note: str) -> None:
        builtin = drv.builder in BUILTINS
        self._emit(progress.Event(progress.START, drv.name, path, note, builtin=builtin))

    def _note(self, message: str) -> None:
        self._emit(progress.Event(progress.NOTE, text=message))


_WAIT = object()  # every place that fits the derivation is busy
# expected seconds of a build nothing like which was timed in this store before: at least
# this, and so much per MB of compressed sources (gcc 10 at -O0 by g++ 3.4.6: about 8 s/MB)
BUILD_GUESS_SECONDS = 10.0
GUESS_SECONDS_PER_MB = 10.0
BUILTIN_GUESS_SECONDS = 1.0
# how much nicer a build runs while one with a longer path ahead of it runs beside it
SIDE_NICE = 10


def _niced(increment: int, build: Callable, *args):
    """`build(*args)` in a thread of its own whose nice value (and so its sandbox's) is raised
    by `increment`: Linux keeps a nice value per thread, children inherit it, and a raised one
    cannot be lowered again unprivileged, so the pool's threads are left as they are."""
    outcome: list = []

    def target() -> None:
        with suppress(OSError):
            os.nice(increment)
        try:
            outcome.append((True, build(*args)))
        except BaseException as err:  # handed to the pool's thread as it is
            outcome.append((False, err))

    thread = threading.Thread(target=target, name="side-build")
    thread.start()
    thread.join()
    succeeded, value = outcome[0]
    if not succeeded:
        raise value
    return value


def _kill_children() -> None:
    """SIGKILL every child process group (the sandboxes), so an interrupted run stops at once."""
    for task in Path("/proc/self/task").iterdir():
        with suppress(OSError):
            for pid in (task / "children").read_text().split():
                with suppress(OSError):
                    os.killpg(int(pid), signal.SIGKILL)
                with suppress(OSError):
                    os.kill(int(pid), signal.SIGKILL)
