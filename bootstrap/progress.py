"""What a run is doing, as events, and how they are shown.

The scheduler, `audit reproduce` and `export` say what happens as `Event`s to a callback; they
print nothing themselves. `Reporter` is the callback the CLI gives them: on a terminal a
progress bar of a fixed width (its stage, real builds done of those to do, their rate and
ETA, and the last log line cut to the terminal's width) with a line per start and end above it,
elsewhere those lines and, for a long build, a line every `heartbeat_seconds` with its last
log line. Downloads and other builtins (fetch, unpack) are said but do not count toward the
bar, its rate or its ETA, whose clock starts with the first real build: a 0.0 s download
would make a long compile look quick. `print_build_logs` streams every log line as Nix's
`-L` does (`name> line`); `verbosity` -1 says only failures and warnings, 1 also each
output path.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TextIO

from bootstrap.fetch import progress_wanted

# event kinds
PLAN = "plan"  # `count` real builds and `builtins` builtins to do
START = "start"  # a build starts; `text` says how (a note such as "(resuming ...)")
LINE = "line"  # a build's log line in `text`
DONE = "done"  # a build ended; `seconds` it took, `text` its output path
REUSED = "reused"  # another process built it meanwhile
FAILED = "failed"  # `text` says why
NOTE = "note"  # a message of its own in `text` (a warning, a substitution)
END = "end"  # the run is over (the bar goes)
STEP = "step"  # item `count` of `total` of a long task named `name` (an export, a seed build)


@dataclass(frozen=True)
class Event:
    kind: str
    name: str = ""  # the derivation's name (or the task's)
    drv: str = ""  # its drv path, when a derivation
    text: str = ""
    seconds: float = 0.0
    builtin: bool = False  # a download or unpack, not a real build
    count: int = 0
    total: int = 0


OnEvent = Callable[[Event], None]


def terminal_width(stream: TextIO = sys.stderr) -> int:
    return shutil.get_terminal_size((100, 24)).columns if stream.isatty() else 100


def cut(text: str, width: int) -> str:
    """`text` on one line in at most `width` characters (an ellipsis where it was cut)."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


class Reporter:
    """The CLI's event callback (see the module docstring)."""

    BAR_WIDTH = 20

    def __init__(
        self,
        progress: bool | None = None,
        verbosity: int = 0,
        print_build_logs: bool = False,
        stage_of: Mapping[str, str] | None = None,
        heartbeat_seconds: float = 300.0,
        stream: TextIO | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.verbosity = verbosity
        self.print_build_logs = print_build_logs
        self.stage_of = stage_of or {}
        self.heartbeat_seconds = heartbeat_seconds
        self.live = progress_wanted(progress) and verbosity >= 0
        self._bar = None
        self._builds = self._done = 0
        self._clock: float | None = None  # when the first real build started
        self._stage = ""
        self._status = ""
        self._status_shown = False
        self._started: dict[str, float] = {}
        self._beat: dict[str, float] = {}

    def __call__(self, event: Event) -> None:
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(event)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # -- the events ------------------------------------------------------------------------------

    def _on_plan(self, event: Event) -> None:
        self._builds, self._done = event.count, 0
        if self.live and event.count:
            from tqdm import tqdm

            self._bar = tqdm(
                total=event.count,
                file=self.stream,
                bar_format="{desc}",
                dynamic_ncols=False,
                leave=False,
            )
            self._redraw()

    def _on_start(self, event: Event) -> None:
        now = time.monotonic()
        self._started[event.drv] = self._beat[event.drv] = now
        if not event.builtin:
            self._clock = self._clock if self._clock is not None else now
            self._stage = self.stage_of.get(event.drv, self._stage)
        self.say(f"building {event.name}{event.text}", level=0)
        self._status = f"{event.name}: starting"
        self._redraw()

    def _on_line(self, event: Event) -> None:
        if self.print_build_logs:
            self.say(f"{event.name}> {event.text}", level=-1)
            return
        self._status = f"{event.name}: {event.text}"
        if self._bar is not None:
            self._redraw()
            return
        now = time.monotonic()
        if now - self._beat.get(event.drv, now) >= self.heartbeat_seconds:
            self._beat[event.drv] = now
            minutes = (now - self._started[event.drv]) / 60
            self.say(f"  {event.name}: {minutes:.0f} min, at: {cut(event.text, 80)}", level=0)

    def _on_done(self, event: Event) -> None:
        self._finished(event)
        where = f": {event.text}" if self.verbosity > 0 and event.text else ""
        self.say(f"built {event.name} in {event.seconds:.1f} s{where}", level=0)

    def _on_reused(self, event: Event) -> None:
        self._finished(event)

    def _on_failed(self, event: Event) -> None:
        self._finished(event)
        self.say(f"failed {event.name}: {event.text}", level=-1)

    def _on_note(self, event: Event) -> None:
        self.say(event.text, level=-1 if "warning" in event.text else 0)

    def _on_end(self, _event: Event) -> None:
        self.close()

    def _on_step(self, event: Event) -> None:
        """A long task's progress: a live line on a terminal, else a line now and then."""
        text = f"{event.name}: {event.count}/{event.total} {event.text}".rstrip()
        if self.live:
            self.status(text)
            if event.count >= event.total:
                self.clear_status()
            return
        now = time.monotonic()
        last = self._beat.get(event.name)
        if last is None or now - last >= min(self.heartbeat_seconds, 30) or event.count == 1:
            self._beat[event.name] = now
            self.say(text, level=1 if event.count > 1 else 0)

    # -- showing ---------------------------------------------------------------------------------

    def _finished(self, event: Event) -> None:
        self._started.pop(event.drv, None)
        if not event.builtin:
            self._done += 1
        self._redraw()

    def status(self, text: str, width: int | None = None) -> None:
        """Show `text` on the live status line (a terminal's last line, rewritten)."""
        width = (width or terminal_width(self.stream)) - 1
        self.stream.write("\r" + cut(text, width).ljust(width) + "\r")
        self.stream.flush()
        self._status_shown = True

    def clear_status(self) -> None:
        if self._status_shown:
            self.stream.write("\r" + " " * (terminal_width(self.stream) - 1) + "\r")
            self._status_shown = False

    def say(self, message: str, level: int = 0) -> None:
        """Print `message` above the bar, if the verbosity shows messages of `level`."""
        if self.verbosity < level:
            return
        self.clear_status()
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def _redraw(self) -> None:
        if self._bar is None:
            return
        line = self.render_bar(terminal_width(self.stream))
        self._bar.set_description_str(line, refresh=True)

    def render_bar(self, width: int) -> str:
        """The bar's line, `width` characters at most: the stage, a bar of BAR_WIDTH, real
        builds done of all, time since the first real build and what is left by the rate of
        the real builds so far, then the last log line, cut to what is left of the width."""
        total, done = max(self._builds, 1), self._done
        filled = round(self.BAR_WIDTH * done / total)
        bar = "#" * filled + "-" * (self.BAR_WIDTH - filled)
        elapsed = 0.0 if self._clock is None else time.monotonic() - self._clock
        left = f"~{_clock(elapsed / done * (total - done))} left" if done else "ETA ?"
        stage = self._stage or "building"
        head = f"{stage} [{bar}] {done}/{self._builds} builds {_clock(elapsed)} {left}"
        room = width - len(head) - 4
        tail = f" | {cut(self._status, room)}" if self._status and room > 8 else ""
        return cut(head + tail, width - 1)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def step_events(on_event: OnEvent | None, name: str, total: int) -> Callable[[int, str], None]:
    """A `(count, text)` callback for a long task of `total` items that says each as STEP."""
    if on_event is None:
        return lambda _count, _text: None
    return lambda count, text: on_event(Event(STEP, name=name, count=count, total=total, text=text))


def line_events(on_event: OnEvent, name: str, drv: str) -> Callable[[str], None]:
    """A build's log-line callback that says each line as LINE."""
    return lambda line: on_event(Event(LINE, name, drv, line))
