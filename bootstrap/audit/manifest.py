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
from bootstrap.store import Store

MANIFEST_VERSION = 1


def stage_hash(entries: list[dict]) -> str:
    """The hash of a stage: sha256 of its entries' canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(entries, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def derivation_entry(store: Store, plan: TargetPlan, drv_path: str) -> dict:
    drv = plan.graph.derivations[drv_path]
    outputs = {}
    for name, out in drv.outputs.items():
        info = store.query_info(out.path) if store.is_valid(out.path) else None
        outputs[name] = {
            "path": out.path,
            "narHash": info.nar_hash.sri if info else None,
            "narSize": info.nar_size if info else None,
            "references": list(info.references) if info else None,
        }
    return {"name": drv.name, "drv": drv_path, "outputs": outputs}


def build_manifest(store: Store, plan: TargetPlan) -> dict:
    """The manifest of every stage of `plan` as the store holds it now."""
    seeds = [
        derivation_entry(store, plan, path)
        for path, drv in plan.graph.derivations.items()
        if is_seed(drv)
    ]
    stages = {}
    for name, drvs in plan.stages.items():
        entries = sorted((derivation_entry(store, plan, d) for d in drvs), key=lambda e: e["drv"])
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
    found = {
        path: store.db.build_time(drv.outputs["out"].path)
        for path, drv in plan.graph.derivations.items()
    }
    return {
        path: {"wall": t.wall, "cpu": t.cpu, "cores": t.cores, "builtAt": t.built_at}
        for path, t in sorted(found.items())
        if t is not None
    }


def _substituted(store: Store, plan: TargetPlan) -> dict[str, str]:
    """Output path -> the binary cache it came from, for outputs not built here. Kept out of
    the stage entries: a substituted stage must hash as the same stage built locally."""
    outputs = (out.path for drv in plan.graph.derivations.values() for out in drv.outputs.values())
    found = {path: store.db.substituted_from(path) for path in outputs}
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


def diff_manifests(a: dict, b: dict) -> list[str]:
    """Human-readable differences: stage hashes first, then each differing derivation."""
    lines = []
    for stage in dict.fromkeys([*a["stageOrder"], *b["stageOrder"]]):
        sa, sb = a["stages"].get(stage), b["stages"].get(stage)
        if sa is None or sb is None:
            lines.append(f"stage {stage}: only in {'B' if sa is None else 'A'}")
        elif sa["hash"] != sb["hash"]:
            lines.append(f"stage {stage}: {sa['hash']} != {sb['hash']}")
            lines += [f"  {line}" for line in _diff_entries(sa["derivations"], sb["derivations"])]
    return lines


def _diff_entries(a: list[dict], b: list[dict]) -> list[str]:
    by_name_a = {e["name"]: e for e in a}
    by_name_b = {e["name"]: e for e in b}
    lines = []
    for name in sorted(set(by_name_a) | set(by_name_b)):
        ea, eb = by_name_a.get(name), by_name_b.get(name)
        if ea is None or eb is None:
            lines.append(f"{name}: only in {'B' if ea is None else 'A'}")
            continue
        if ea["drv"] != eb["drv"]:
            lines.append(f"{name}: different recipe: {ea['drv']} != {eb['drv']}")
        for out in sorted(set(ea["outputs"]) | set(eb["outputs"])):
            oa, ob = ea["outputs"].get(out, {}), eb["outputs"].get(out, {})
            if oa.get("narHash") != ob.get("narHash"):
                lines.append(f"{name}!{out}: NAR hash {oa.get('narHash')} != {ob.get('narHash')}")
            elif oa.get("references") != ob.get("references"):
                lines.append(f"{name}!{out}: references differ")
    return lines
