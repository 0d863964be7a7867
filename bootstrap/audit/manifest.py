"""Stage manifests: what each stage built, hashed so two runs can be compared at a glance.

A manifest lists, per stage, every derivation with its drv path and outputs (path, NAR hash,
NAR size, references), plus the seed the chain descends from. Its JSON is deterministic
(sorted keys), and each stage gets one hash over its entries: post the one-line-per-stage
summary, compare it with someone else's, and diff the full manifests where the hashes differ.
Outside the stage entries, so never in a stage's hash: where substituted outputs came from,
and how long each build took (`timings`: measurements, which differ from run to run).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bootstrap.builtins import is_seed
from bootstrap.errors import BootstrapError
from bootstrap.recipe import DEFAULT_PROFILE, TargetPlan
from bootstrap.store import PathInfo, Store

MANIFEST_VERSION = 1


def stage_hash(entries: list[dict]) -> str:
    """The hash of a stage: sha256 of its entries' canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(entries, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def derivation_entry(
    store: Store, plan: TargetPlan, drv_path: str, infos: dict[str, PathInfo] | None = None
) -> dict:
    """A derivation's entry: its outputs as the store holds them (`infos`: those of the valid
    ones, looked up in the store if not given)."""
    drv = plan.graph.derivations[drv_path]
    if infos is None:
        infos = store.db.infos(out.path for out in drv.outputs.values())
    outputs = {}
    for name, out in drv.outputs.items():
        info = infos.get(out.path)
        outputs[name] = {
            "path": out.path,
            "narHash": info.nar_hash.sri if info else None,
            "narSize": info.nar_size if info else None,
            "references": list(info.references) if info else None,
        }
    return {"name": drv.name, "drv": drv_path, "outputs": outputs}


def build_manifest(store: Store, plan: TargetPlan) -> dict:
    """The manifest of every stage of `plan` as the store holds it now."""
    infos = store.db.infos(plan.graph.output_paths())
    seeds = [
        derivation_entry(store, plan, path, infos)
        for path, drv in plan.graph.derivations.items()
        if is_seed(drv)
    ]
    stages = {}
    for name, drvs in plan.stages.items():
        entries = [derivation_entry(store, plan, d, infos) for d in drvs]
        entries.sort(key=lambda e: e["drv"])
        complete = all(o["narHash"] for e in entries for o in e["outputs"].values())
        stages[name] = {
            "hash": stage_hash(entries),
            "complete": complete,
            "derivations": entries,
        }
    return {
        "version": MANIFEST_VERSION,
        "target": plan.target,
        "profile": plan.profile,
        "storeDir": store.store_dir,
        "seeds": sorted(seeds, key=lambda e: e["drv"]),
        "stageOrder": list(plan.stages),
        "stages": stages,
        "substituted": _substituted(store, plan),
        "timings": _timings(store, plan),
    }


def _timings(store: Store, plan: TargetPlan) -> dict[str, dict]:
    """Drv path -> its build's wall and CPU seconds, the cores it was given and when it ended
    (Unix time), for every derivation of the graph whose `out` was built here with a time
    recorded (none for a substituted one)."""
    outs = {path: drv.outputs["out"].path for path, drv in plan.graph.derivations.items()}
    times = store.db.build_times(outs.values())
    found = {path: times[out] for path, out in outs.items() if out in times}
    return {
        path: {"wall": t.wall, "cpu": t.cpu, "cores": t.cores, "builtAt": t.built_at}
        for path, t in sorted(found.items())
    }


def _substituted(store: Store, plan: TargetPlan) -> dict[str, str]:
    """Output path -> the binary cache it came from, for outputs not built here. Kept out of
    the stage entries: a substituted stage must hash as the same stage built locally."""
    found = store.db.substitutions(plan.graph.output_paths())
    return {path: url for path, url in sorted(found.items()) if url}


def summary_lines(manifest: dict) -> list[str]:
    """One line per stage: `<stage> <hash>` (with `incomplete` where not all is built)."""
    lines = []
    for name in manifest["stageOrder"]:
        stage = manifest["stages"][name]
        note = "" if stage["complete"] else "  incomplete"
        lines.append(f"{name:<12} {stage['hash']}{note}")
    return lines


def manifest_dir(store: Store) -> Path:
    """Where `bootstrap run` keeps the latest manifest of each target."""
    return store.state_dir / "manifests"


def write_manifest(manifest: dict, directory: Path) -> Path:
    """Write `<target>.json` and `<target>.summary` (`<target>.<profile>.*` for a profile
    other than the default) into `directory`; return the JSON's path."""
    directory.mkdir(parents=True, exist_ok=True)
    profile = manifest.get("profile", DEFAULT_PROFILE)
    stem = manifest["target"] if profile == DEFAULT_PROFILE else f"{manifest['target']}.{profile}"
    json_file = directory / f"{stem}.json"
    for file, text in (
        (json_file, json.dumps(manifest, sort_keys=True, indent=2) + "\n"),
        (directory / f"{stem}.summary", "\n".join(summary_lines(manifest)) + "\n"),
    ):
        tmp = file.with_name(f".{file.name}.tmp")
        tmp.write_text(text)
        tmp.replace(file)
    return json_file


def load_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError) as err:
        raise BootstrapError(f"{path}: cannot read manifest: {err}") from None
    for key in ("version", "stages", "stageOrder"):
        if key not in manifest:
            raise BootstrapError(f"{path}: not a bootstrap manifest: field {key!r} is missing")
    if manifest["version"] != MANIFEST_VERSION:
        raise BootstrapError(
            f"{path}: manifest version {manifest['version']}, expected {MANIFEST_VERSION}"
        )
    return manifest


def manifest_differences(a: dict, b: dict) -> list[dict]:
    """How manifest B differs from A: each stage that only one holds or whose hash differs
    (`a` and `b` its hashes, None where it is missing), with the derivations that differ
    (`what`: "only in A", "only in B", "recipe", "narHash" or "references" of `output`, and
    the two values). Nothing when every stage hash matches."""
    stages = []
    for stage in dict.fromkeys([*a["stageOrder"], *b["stageOrder"]]):
        sa, sb = a["stages"].get(stage), b["stages"].get(stage)
        if sa is None or sb is None or sa["hash"] != sb["hash"]:
            entries = [] if sa is None or sb is None else _differing(sa, sb)
            hashes = {"a": sa and sa["hash"], "b": sb and sb["hash"]}
            stages.append({"stage": stage, **hashes, "derivations": entries})
    return stages


def _differing(sa: dict, sb: dict) -> list[dict]:
    by_name_a = {e["name"]: e for e in sa["derivations"]}
    by_name_b = {e["name"]: e for e in sb["derivations"]}
    found = []
    for name in sorted(set(by_name_a) | set(by_name_b)):
        ea, eb = by_name_a.get(name), by_name_b.get(name)
        if ea is None or eb is None:
            what = "only in B" if ea is None else "only in A"
            found.append({"name": name, "what": what, "a": ea and ea["drv"], "b": eb and eb["drv"]})
            continue
        if ea["drv"] != eb["drv"]:
            found.append({"name": name, "what": "recipe", "a": ea["drv"], "b": eb["drv"]})
        for out in sorted(set(ea["outputs"]) | set(eb["outputs"])):
            oa, ob = ea["outputs"].get(out, {}), eb["outputs"].get(out, {})
            for field in ("narHash", "references"):
                if oa.get(field) != ob.get(field):
                    found.append(
                        {
                            "name": name,
                            "output": out,
                            "what": field,
                            "a": oa.get(field),
                            "b": ob.get(field),
                        }
                    )
                    break
    return found


def diff_manifests(a: dict, b: dict) -> list[str]:
    """Human-readable differences: stage hashes first, then each differing derivation."""
    lines = []
    for stage in manifest_differences(a, b):
        if stage["a"] is None or stage["b"] is None:
            lines.append(f"stage {stage['stage']}: only in {'B' if stage['a'] is None else 'A'}")
            continue
        lines.append(f"stage {stage['stage']}: {stage['a']} != {stage['b']}")
        lines += [f"  {_difference_line(entry)}" for entry in stage["derivations"]]
    return lines


def _difference_line(entry: dict) -> str:
    name, what = entry["name"], entry["what"]
    if what.startswith("only in"):
        return f"{name}: {what}"
    if what == "recipe":
        return f"{name}: different recipe: {entry['a']} != {entry['b']}"
    if what == "narHash":
        return f"{name}!{entry['output']}: NAR hash {entry['a']} != {entry['b']}"
    return f"{name}!{entry['output']}: references differ"
