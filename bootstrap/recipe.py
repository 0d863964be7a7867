"""The recipe language of `stages/`: packages, seeds and stages, evaluated into derivations.

A `Package` reads like a data sheet: name, version, sources (fixed-output downloads), patches,
what it is built with (`inputs`), a builder script and environment. Evaluation turns packages
into derivations whose output paths cover every input, and collects them into a `BuildGraph`
for the scheduler. Nothing here builds or downloads.

Every package builds by running `<shell>/bin/sh -e prelude.sh`: the prelude (in
`stages/builders/`) has helpers to unpack `$srcs` and apply `$patches`, and sources the
package's own builder script. Each input is an environment variable named after it (`$musl`,
`$linux_headers`: the name with `-` as `_`) holding its store path, and its `bin/` is on PATH.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import traceback
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bootstrap.buildgraph import BuildGraph
from bootstrap.builtins import FETCHURL, SEED_NAR_DIR
from bootstrap.derivation import Derivation, DerivationHasher, Output, drv_path
from bootstrap.drv_options import DrvOptions, reproducible_env
from bootstrap.errors import BootstrapError
from bootstrap.fetch import Source
from bootstrap.hashing import Hash
from bootstrap.mirrors import canonical_url
from bootstrap.nar import nar_hash
from bootstrap.storepath import source_path

REPO_DIR = Path(__file__).resolve().parent.parent
PRELUDE = "prelude.sh"
DEFAULT_PROFILE = "default"
DEFAULT_PROFILES = {DEFAULT_PROFILE: "what users ship"}


@dataclass(frozen=True, eq=False)
class Seed:
    """A prebuilt, hashed tree that roots the chain: an archive unpacked into the store.

    Its store path is a recursive fixed output (`tree_hash` is the NAR sha256 of the unpacked
    tree), so it depends on nothing but its content. The hashes and URLs are given, or pinned
    in a seed manifest (`manifest`: read when the recipes are evaluated, not when they load).
    """

    name: str
    archive_hash: Hash | None = None
    tree_hash: Hash | None = None
    urls: tuple[str, ...] = ()
    strip_top: bool = False
    # host path strings its files may name; as `Package.allowed_host_paths`
    allowed_host_paths: tuple[str, ...] = ()
    manifest: Path | None = None

    def pins(self) -> tuple[Hash, Hash, tuple[str, ...]]:
        """The archive's hash, the tree's NAR hash and the archive's URLs."""
        if self.manifest is not None:
            # the seed package is imported only when a seed is pinned so (a lean run path)
            from bootstrap.seed.manifest import load_manifest, pinned_hash, pinned_tree_hash

            manifest = load_manifest(self.manifest)
            return pinned_hash(manifest), pinned_tree_hash(manifest), manifest.archive_urls
        if self.archive_hash is None or self.tree_hash is None:
            raise BootstrapError(f"seed {self.name}: give archive_hash and tree_hash, or manifest")
        return self.archive_hash, self.tree_hash, self.urls


@dataclass(frozen=True)
class PinnedSource:
    """A source pinned in a seed manifest, named by the directory it unpacks to (stage 1
    rebuilds exactly what the seed holds); read when the recipes are evaluated."""

    manifest: Path
    unpack_to: str

    def resolve(self) -> Source:
        from bootstrap.seed.manifest import load_manifest  # as in Seed.pins

        return load_manifest(self.manifest).source(self.unpack_to).as_fetch_source()


def resolve_source(source: Source | PinnedSource) -> Source:
    """The download a recipe's source names (a manifest's pin is read here)."""
    return source.resolve() if isinstance(source, PinnedSource) else source


@dataclass(frozen=True, eq=False)
class Package:
    name: str
    version: str
    builder: str
    # the package whose bin/sh runs the build: an input like the others (named, on PATH), first
    # on PATH unless `inputs` places it
    shell: Package | Seed = field(kw_only=True)
    sources: tuple[Source | PinnedSource, ...] = ()
    patches: tuple[str, ...] = ()
    # what it is built with, their bin/ on PATH in this order after the shell's
    inputs: tuple[Package | Seed, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    outputs: tuple[str, ...] = ("out",)
    files: tuple[str, ...] = ()  # more files from stages/builders/ (`builder_file NAME`)
    # host path strings its files may name (search-path defaults, /bin/sh for system()); the
    # hermeticity audit accepts exactly these, and the recipe says why. Audit policy, not a
    # build input: it is not part of the derivation, so changing it rebuilds nothing
    allowed_host_paths: tuple[str, ...] = ()
    # files the builder finds in /build describing an input's closure (Nix's
    # exportReferencesGraph): file name -> input
    closure_files: Mapping[str, Package | Seed] = field(default_factory=dict)
    # env settings that differ by build profile (`bootstrap run --profile NAME`): profile name ->
    # settings that replace or add to `env`
    profiles: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # a C library names its dynamic loader (relative to its output); its own programs load with
    # it, and so do those of every package whose `libc` it is
    loader: str = ""
    # the C library (one of the inputs, with a `loader`) that dynamic programs and libraries
    # of this package load with: the fix-up gives them its loader and finds their DT_NEEDED
    # libraries in the loader's directory. None: a static world, where nothing may be dynamic.
    libc: Package | None = None
    # the programs `#!` lines of its outputs run, by the name a script asks for ("python3" in
    # `#!/usr/bin/env python3`): a path in its own output ("bin/python3"), or (input, path)
    shebangs: Mapping[str, str | tuple[Package | Seed, str]] = field(default_factory=dict)
    # its builder can continue a build that was cut short (an interrupted run, a crash): the
    # build directory is kept until the next attempt, which starts in it (hours-long builds)
    resumable: bool = False

    @property
    def full_name(self) -> str:
        return f"{self.name}-{self.version}" if self.version else self.name

    @property
    def built_with(self) -> tuple[Package | Seed, ...]:
        """The shell and the inputs, in PATH order: the shell first unless `inputs` places it."""
        return self.inputs if self.shell in self.inputs else (self.shell, *self.inputs)


@dataclass(frozen=True)
class Stage:
    """A named, ordered group of packages; the chain is a list of stages."""

    name: str
    packages: tuple[Package | Seed, ...]
    description: str = ""


@dataclass(frozen=True)
class Recipes:
    """Where recipes live: `stages/` (recipes and builder scripts) and `patches/`."""

    stages_dir: Path = REPO_DIR / "stages"
    patches_dir: Path = REPO_DIR / "patches"

    def profiles(self) -> dict[str, str]:
        """Build profiles (name -> what it is for): the stages package's PROFILES, if any."""
        profiles = getattr(_load_stages_package(self.stages_dir), "PROFILES", DEFAULT_PROFILES)
        if not isinstance(profiles, dict) or DEFAULT_PROFILE not in profiles:
            raise BootstrapError(
                f"{self.stages_dir}/__init__.py: PROFILES must be a dict naming {DEFAULT_PROFILE!r}"
            )
        return profiles

    def targets(self) -> dict[str, list[Stage]]:
        module = _load_stages_package(self.stages_dir)
        targets = getattr(module, "TARGETS", None)
        if not isinstance(targets, dict):
            raise BootstrapError(f"{self.stages_dir}/__init__.py: expected a dict named TARGETS")
        return targets

    def stages(self, target: str) -> list[Stage]:
        targets = self.targets()
        if target not in targets:
            raise BootstrapError(
                f"unknown target {target!r}: expected one of {', '.join(sorted(targets))}"
            )
        return targets[target]


def _load_stages_package(stages_dir: Path):
    init = stages_dir / "__init__.py"
    if not init.is_file():
        raise BootstrapError(f"{init}: no recipes found (set --stages to the stages directory)")
    spec = importlib.util.spec_from_file_location(
        "stages", init, submodule_search_locations=[str(stages_dir)]
    )
    module = importlib.util.module_from_spec(spec)
    # recipes import each other as `stages.stageN`, so the package must be registered under
    # that name; a later load (another --stages directory) replaces it
    sys.modules["stages"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # a recipe author's mistake: one line that says where
        where = _recipe_line(err, stages_dir.resolve()) or init
        raise BootstrapError(f"{where}: {type(err).__name__}: {err}") from None
    return module


def _recipe_line(err: Exception, stages_dir: Path) -> str | None:
    """FILE:LINE in `stages_dir` where loading the recipes failed: the innermost such frame."""
    if isinstance(err, SyntaxError) and err.filename:
        return f"{err.filename}:{err.lineno}"
    frames = traceback.extract_tb(err.__traceback__)
    inside = [f for f in frames if Path(f.filename).resolve().is_relative_to(stages_dir)]
    return f"{inside[-1].filename}:{inside[-1].lineno}" if inside else None


class Evaluator:
    """Turns packages and seeds into derivations, memoised, for one store dir and system."""

    def __init__(
        self,
        store_dir: str,
        system: str,
        recipes: Recipes | None = None,
        profile: str = DEFAULT_PROFILE,
        known_profiles: Collection[str] = (DEFAULT_PROFILE,),
    ) -> None:
        self.store_dir = store_dir
        self.system = system
        self.recipes = recipes or Recipes()
        self.profile = profile
        self.known_profiles = known_profiles
        self.graph = BuildGraph(derivations={})
        self._hasher = DerivationHasher(self.graph.derivations.__getitem__, store_dir)
        # by the recipe object itself: packages compare and hash by identity (eq=False)
        self._paths: dict[Package | Seed, str] = {}
        self._fetches: dict[Hash, str] = {}
        self._locals: dict[Path, str] = {}
        # output path -> the host path strings its recipe allows (audit policy, not in the drv)
        self.allowed_host_paths: dict[str, frozenset[str]] = {}

    def evaluate(self, targets: Sequence[Package | Seed]) -> BuildGraph:
        self.graph.targets = [self.drv_path_of(t) for t in targets]
        return self.graph

    def drv_path_of(self, item: Package | Seed) -> str:
        if item not in self._paths:
            drv = self._seed(item) if isinstance(item, Seed) else self._package(item)
            self._paths[item] = path = self._add(drv)
            for output in self.graph.derivations[path].outputs.values():
                self.allowed_host_paths[output.path] = frozenset(item.allowed_host_paths)
        return self._paths[item]

    def output_path(self, item: Package | Seed, output: str = "out") -> str:
        return self.graph.derivations[self.drv_path_of(item)].outputs[output].path

    def _add(self, drv: Derivation) -> str:
        drv = self._hasher.fill_outputs(drv)
        path = drv_path(drv, self.store_dir)
        self.graph.derivations[path] = drv
        return path

    def _seed(self, seed: Seed) -> Derivation:
        """The seed as Nix's `builtin:fetchurl` unpacking a NAR (`url`, `unpack`): real Nix
        builds it from `file://` + SEED_NAR_DIR, which its sandbox must be given
        (docs/seed.md); we from the NAR in the download cache, else from the seed archive
        (`archiveHash`, `archiveUrls`, `stripTop`: ours, which Nix ignores)."""
        archive_hash, tree_hash, urls = seed.pins()
        return Derivation(
            name=seed.name,
            outputs={"out": Output(hash_algo="r:sha256", hash=tree_hash.hex)},
            system=self.system,
            builder=FETCHURL,
            env={
                "url": f"file://{SEED_NAR_DIR}/{tree_hash.hex}",
                "unpack": "1",
                **_fixed_output_env("recursive", tree_hash),
                "archiveHash": str(archive_hash),
                "archiveUrls": " ".join(urls),
                "stripTop": "1" if seed.strip_top else "0",
            },
        )

    def _fetch(self, source: Source | PinnedSource) -> str:
        """A download as Nix's `builtin:fetchurl` (`url`: the first URL, a mirror at its
        canonical place); `urls` are every URL we try."""
        source = resolve_source(source)
        if source.hash not in self._fetches:
            algo = source.hash.algo
            self._fetches[source.hash] = self._add(
                Derivation(
                    name=source.name,
                    outputs={"out": Output(hash_algo=algo, hash=source.hash.hex)},
                    system=self.system,
                    builder=FETCHURL,
                    env={
                        "url": canonical_url(source.urls[0]),
                        "urls": " ".join(source.urls),
                        **_fixed_output_env("flat", source.hash),
                    },
                )
            )
        return self._fetches[source.hash]

    def _local(self, file: Path) -> str:
        """The store path of a recipe file, hashed once per evaluation (the store checks it
        again when it adds the file, so a file changed meanwhile is caught there)."""
        if file not in self._locals:
            if not file.is_file():
                raise BootstrapError(f"{file}: recipe file not found")
            path = source_path(nar_hash(file)[0], file.name, self.store_dir)
            self.graph.local_sources[path] = file
            self._locals[file] = path
        return self._locals[file]

    def _package(self, pkg: Package) -> Derivation:
        where = f"package {pkg.full_name}"
        builders = self.recipes.stages_dir / "builders"
        prelude = self._local(builders / PRELUDE)
        script = self._local(builders / pkg.builder)
        patches = [self._local(self.recipes.patches_dir / p) for p in pkg.patches]
        files = [self._local(builders / f) for f in pkg.files]
        fetches = [self._fetch(s) for s in pkg.sources]
        on_path = pkg.built_with
        dep_drvs = [self.drv_path_of(d) for d in on_path]
        shell_path = f"{self.output_path(pkg.shell)}/bin/sh"
        env = {
            "name": pkg.full_name,
            "pname": pkg.name,
            "version": pkg.version,
            "system": self.system,
            "srcs": " ".join(self.graph.derivations[f].outputs["out"].path for f in fetches),
            "patches": " ".join(patches),
            "builderFiles": " ".join(files),
            "builderScript": script,
            "PATH": ":".join(f"{self.output_path(i)}/bin" for i in on_path),
            "SHELL": shell_path,
            **reproducible_env(),
            **self._options(where, pkg).to_env(),
            **_checked_env(where, pkg.env),
            **self._profile_env(where, pkg),
        }
        env |= self._input_vars(where, on_path, taken={*env, *pkg.outputs})
        return Derivation(
            name=pkg.full_name,
            outputs={name: Output() for name in pkg.outputs},
            input_drvs={p: ("out",) for p in [*fetches, *dep_drvs]},
            input_srcs=(prelude, script, *patches, *files),
            system=self.system,
            builder=shell_path,
            args=("-e", prelude),
            env=env,
        )

    def _input_vars(
        self, where: str, inputs: Sequence[Package | Seed], taken: Collection[str]
    ) -> dict[str, str]:
        """Each input's store path under its name (`-` and `.` as `_`), which must be a shell
        variable name no other input and no other env key has."""
        names: dict[str, str] = {}
        for item in inputs:
            var = item.name.replace("-", "_").replace(".", "_")
            if not _SHELL_NAME.fullmatch(var):
                raise BootstrapError(f"{where}: input {item.name!r}: its name is no variable name")
            if var in names or var in taken:
                raise BootstrapError(
                    f"{where}: two inputs, or an input and an env key, are named {var!r}"
                )
            names[var] = self.output_path(item)
        return names

    def _profile_env(self, where: str, pkg: Package) -> dict[str, str]:
        for name in pkg.profiles:
            if name not in self.known_profiles:
                raise BootstrapError(
                    f"{where}: profiles names {name!r}: expected one of "
                    f"{', '.join(sorted(self.known_profiles))}"
                )
        return _checked_env(where, pkg.profiles.get(self.profile, {}))

    def _options(self, where: str, pkg: Package) -> DrvOptions:
        return DrvOptions(
            interpreter=self._interpreter(where, pkg),
            shebangs=self._shebangs(where, pkg),
            closure_files=self._closure_files(where, pkg),
            resumable=pkg.resumable,
        )

    def _interpreter(self, where: str, pkg: Package) -> str:
        """The loader the fix-up gives dynamic outputs (its directory is where their libraries
        are looked for): the `libc`'s, or a libc's own, named through `$out`, which the build
        expands, as a derivation cannot name its own path."""
        if pkg.libc is None:
            return f"$out/{pkg.loader}" if pkg.loader else ""
        if pkg.libc not in pkg.built_with or not pkg.libc.loader:
            raise BootstrapError(f"{where}: libc must be one of its inputs and name its loader")
        return f"{self.output_path(pkg.libc)}/{pkg.libc.loader}"

    def _shebangs(self, where: str, pkg: Package) -> tuple[tuple[str, str], ...]:
        """The programs `#!` lines get: (program, path), with `$out` for its own output."""
        pairs = []
        for program, target in pkg.shebangs.items():
            owner, path = target if isinstance(target, tuple) else (None, target)
            if owner is not None and owner not in pkg.built_with:
                raise BootstrapError(f"{where}: shebangs[{program!r}] must name one of its inputs")
            root = "$out" if owner is None else self.output_path(owner)
            pairs.append((program, f"{root}/{path}"))
        return tuple(pairs)

    def _closure_files(self, where: str, pkg: Package) -> tuple[tuple[str, str], ...]:
        pairs = []
        for file, item in pkg.closure_files.items():
            if item not in pkg.built_with:
                raise BootstrapError(f"{where}: closure_files[{file!r}] must be one of its inputs")
            pairs.append((file, self.output_path(item)))
        return tuple(pairs)


_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _fixed_output_env(mode: str, hash_: Hash) -> dict[str, str]:
    """The attributes a Nix expression's fixed-output derivation has in its env."""
    return {"outputHashMode": mode, "outputHashAlgo": hash_.algo, "outputHash": hash_.hex}


def _checked_env(where: str, env: Mapping[str, str]) -> dict[str, str]:
    for key, value in env.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise BootstrapError(f"{where}: env {key!r} must map strings to strings")
    return dict(env)


@dataclass
class TargetPlan:
    """A target's build graph and, per stage in order, the drv paths of its packages."""

    target: str
    graph: BuildGraph
    stages: dict[str, list[str]]
    profile: str = DEFAULT_PROFILE
    # output path -> the host path strings its recipe allows (`allowed_host_paths`)
    allowed_host_paths: dict[str, frozenset[str]] = field(default_factory=dict)

    def stage_of(self, drv: str) -> str | None:
        return next((name for name, drvs in self.stages.items() if drv in drvs), None)


def select_stages(stages: Sequence[Stage], until: str | None = None) -> list[Stage]:
    """`stages` up to and including the one named `until` (all of them without `until`).

    A bare number N names stageN."""
    names = [s.name for s in stages]
    if until is None:
        return list(stages)
    if until not in names and f"stage{until}" in names:
        until = f"stage{until}"  # `--stage 1` means stage1
    if until not in names:
        raise BootstrapError(f"unknown stage {until!r}: expected one of {', '.join(names)}")
    return list(stages[: names.index(until) + 1])


def plan_target(
    store_dir: str,
    target: str,
    recipes: Recipes,
    until: str | None = None,
    profile: str = DEFAULT_PROFILE,
) -> TargetPlan:
    """Evaluate the target's stages (up to `until`) in a build profile into one build graph."""
    stages = select_stages(recipes.stages(target), until)
    profiles = recipes.profiles()
    if profile not in profiles:
        raise BootstrapError(
            f"unknown profile {profile!r}: expected one of {', '.join(sorted(profiles))}"
        )
    evaluator = Evaluator(store_dir, target, recipes, profile, known_profiles=profiles)
    graph = evaluator.evaluate([p for stage in stages for p in stage.packages])
    per_stage: dict[str, list[str]] = {}
    seen: set[str] = set()
    for stage in stages:
        drvs = [evaluator.drv_path_of(p) for p in stage.packages]
        per_stage[stage.name] = [d for d in drvs if d not in seen]
        seen.update(drvs)
    return TargetPlan(target, graph, per_stage, profile, evaluator.allowed_host_paths)
