"""`audit challenge`: compare our outputs with what binary caches serve for the same paths.

As `guix challenge` does: for every local path and every cache, the cache's narinfo NarHash is
set beside ours. Two independent builds of one derivation must agree; a path that differs is
either non-deterministic or tampered with, and `diffoscope_dir` gets a report of how (the
cache's NAR is fetched, hash-checked against its own narinfo, and restored aside).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from bootstrap.audit.reproduce import differing_files, diffoscope_reports
from bootstrap.errors import BootstrapError
from bootstrap.store import Store
from bootstrap.substitute import BinaryCache, restore_nar

IDENTICAL = "identical"
DIFFERS = "differs"
UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Verdict:
    """One path against one cache."""

    path: str
    cache: str
    status: str
    ours: str
    theirs: str | None = None
    reason: str = ""
    differing: tuple[str, ...] = ()
    reports: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "substituter": self.cache,
            "status": self.status,
            "localHash": self.ours,
            "substituterHash": self.theirs,
            "reason": self.reason,
            "differingFiles": list(self.differing),
            "diffoscopeReports": list(self.reports),
        }


@dataclass
class Challenge:
    verdicts: list[Verdict] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(v.status == status for v in self.verdicts)

    @property
    def ok(self) -> bool:
        return self.count(DIFFERS) == 0


def challenge(
    store: Store,
    paths: Sequence[str],
    urls: Sequence[str],
    diffoscope_dir: Path | None = None,
    on_progress: Callable[[str], None] = lambda line: None,
) -> Challenge:
    """Compare each of `paths` (valid here) with every cache of `urls`."""
    if not urls:
        raise BootstrapError(
            "audit challenge: no substituters to compare with: give --substituters"
        )
    caches = [BinaryCache(url, store.store_dir) for url in urls]
    result = Challenge()
    for number, path in enumerate(paths, 1):
        on_progress(f"[{number}/{len(paths)}] {path}")
        for cache in caches:
            result.verdicts.append(_judge(store, path, cache, diffoscope_dir))
    return result


def _judge(store: Store, path: str, cache: BinaryCache, diffoscope_dir: Path | None) -> Verdict:
    ours = store.query_info(path).nar_hash
    try:
        info = cache.narinfo(path)
    except BootstrapError as err:
        return Verdict(path, cache.url, UNAVAILABLE, str(ours), reason=str(err))
    if info is None:
        return Verdict(path, cache.url, UNAVAILABLE, str(ours), reason="not in the cache")
    if info.nar_hash == ours:
        return Verdict(path, cache.url, IDENTICAL, str(ours), str(info.nar_hash))
    verdict = Verdict(path, cache.url, DIFFERS, str(ours), str(info.nar_hash))
    if diffoscope_dir is None:
        return verdict
    return _with_report(store, cache, info, verdict, diffoscope_dir)


def _with_report(store, cache, info, verdict: Verdict, diffoscope_dir: Path) -> Verdict:
    with tempfile.TemporaryDirectory(prefix="challenge-") as scratch:
        theirs = Path(scratch) / "theirs"
        try:
            restore_nar(cache, info, theirs)
        except BootstrapError as err:
            return replace(verdict, reason=f"cannot fetch its NAR: {err}")
        ours = store.real_path(verdict.path)
        files = differing_files(ours, theirs)
        name = verdict.path.rsplit("/", 1)[1]
        reports = diffoscope_reports(ours, theirs, files, Path(diffoscope_dir) / name)
    return replace(verdict, differing=tuple(files), reports=tuple(reports))


def render(result: Challenge) -> str:
    lines = []
    for v in result.verdicts:
        if v.status != DIFFERS:
            continue
        lines += [f"{v.path} differs", f"  local:       {v.ours}", f"  {v.cache}: {v.theirs}"]
        lines += [f"  differing file: {rel}" for rel in v.differing[:50]]
        lines += [f"  diffoscope report: {report}" for report in v.reports]
        if v.reason:
            lines.append(f"  ({v.reason})")
    lines.append(
        f"{result.count(IDENTICAL)} identical, {result.count(DIFFERS)} differing, "
        f"{result.count(UNAVAILABLE)} unavailable"
    )
    return "\n".join(lines)
