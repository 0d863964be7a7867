"""A development environment from a toolchain store path, as `nix develop` or `guix shell` give.

The environment is a toolchain path (its `toolchain.json`, written by the stage-6 and stage-7
recipes) and tool paths beside it (CMake, ninja, Python, make, busybox, ...): PATH lists their
`bin` directories, CC, CXX, AR, LD and the other tool variables name the toolchain's wrappers
for the chosen compiler (gcc, or clang once the toolchain has it), CMAKE_TOOLCHAIN_FILE its
CMake toolchain file, PKG_CONFIG_PATH and CMAKE_PREFIX_PATH the tool paths that have
something for them.

Store paths are named under the logical store directory, which need not exist on the host:
a shell runs in a mount namespace (bubblewrap) where the store is bound there, beside the
host's own files, or with `pure` beside nothing but the working directory, /dev, /proc, a
fresh /tmp and /bin/sh (the store's, as Nix's sandbox has it), so nothing from the host can
leak into what is built in it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bootstrap.errors import BootstrapError
from bootstrap.store import Store

if TYPE_CHECKING:
    from bootstrap.recipe import TargetPlan

# the packages a shell puts on PATH after the toolchain, by package name, first wins
TOOL_PACKAGES = ("cmake", "ninja", "python", "make", "grep", "sed", "gawk", "m4", "bison", "patch")
TOOL_PACKAGES += ("busybox", "seed")

# environment variable -> the toolchain.json tool it names, per compiler
GCC_VARIABLES = {"CC": "cc", "CXX": "c++", "CPP": "cpp", "AR": "ar", "AS": "as", "LD": "ld"}
GCC_VARIABLES |= {"NM": "nm", "RANLIB": "ranlib", "STRIP": "strip", "OBJCOPY": "objcopy"}
GCC_VARIABLES |= {"OBJDUMP": "objdump", "READELF": "readelf", "SIZE": "size"}
CLANG_VARIABLES = GCC_VARIABLES | {"CC": "clang", "CXX": "clang++", "LD": "ld.lld"}
CLANG_VARIABLES |= {
    name: f"llvm-{tool}"
    for name, tool in GCC_VARIABLES.items()
    if tool in ("ar", "nm", "ranlib", "strip", "objcopy", "objdump", "readelf", "size")
}
COMPILERS = ("gcc", "clang")
PKG_CONFIG_DIRS = ("lib/pkgconfig", "share/pkgconfig")

# what the host passes into a pure shell
PURE_KEPT = ("TERM", "LANG", "LC_ALL", "USER", "LOGNAME")


@dataclass
class DevEnv:
    """The variables of a shell on `toolchain` (logical store paths) and what it needs."""

    toolchain: str
    compiler: str
    variables: dict[str, str]
    paths: list[str]  # every store path the variables name, the toolchain first

    def exports(self) -> str:
        """The variables as POSIX shell `export` lines, sorted."""
        return "".join(
            f"export {name}={shlex.quote(value)}\n"
            for name, value in sorted(self.variables.items())
        )

    def as_json(self) -> dict:
        return {
            "toolchain": self.toolchain,
            "compiler": self.compiler,
            "paths": self.paths,
            "variables": self.variables,
        }


def package_name(drv_name: str) -> str:
    """`cmake-3.25.1` -> `cmake`; a name without a version is itself."""
    base, _, version = drv_name.rpartition("-")
    return base if base and version[:1].isdigit() else drv_name


def plan_packages(plan: TargetPlan, until: str | None, extra: list[str]) -> list[str]:
    """The drv paths of a shell on `plan`: the last toolchain of the stages up to `until`,
    then the last of each TOOL_PACKAGES there, then each `extra` package (from any stage)."""
    names = list(plan.stages)
    if until is not None and until not in names and f"stage{until}" in names:
        until = f"stage{until}"
    if until is not None and until not in names:
        raise BootstrapError(f"unknown stage {until!r}: expected one of {', '.join(names)}")
    every = [d for stage in reversed(names) for d in reversed(plan.stages[stage])]
    kept = names[: names.index(until) + 1] if until else names
    upto = [d for stage in reversed(kept) for d in reversed(plan.stages[stage])]

    def last(name: str, drvs: list[str]) -> str | None:
        return next((d for d in drvs if package_name(plan.graph.derivations[d].name) == name), None)

    toolchain = last("toolchain", upto)
    if toolchain is None:
        first = last("toolchain", list(reversed(every)))
        where = f" (the first is built in {plan.stage_of(first)})" if first else ""
        raise BootstrapError(
            f"no toolchain up to {kept[-1]}{where}: give a later --until, "
            "or a toolchain store path as TARGET"
        )
    chosen = [toolchain]
    for name in extra:
        drv = last(name, every)
        if drv is None:
            known = sorted({package_name(plan.graph.derivations[d].name) for d in every})
            raise BootstrapError(f"no package {name!r} in {plan.target}; known: {', '.join(known)}")
        chosen.append(drv)
    chosen += [d for name in TOOL_PACKAGES if (d := last(name, upto))]
    return list(dict.fromkeys(chosen))


def read_descriptor(store: Store, toolchain: str) -> dict:
    """The toolchain.json of the store path `toolchain`; one line if it has none."""
    file = store.real_path(toolchain) / "toolchain.json"
    try:
        return json.loads(file.read_text())
    except FileNotFoundError:
        raise BootstrapError(f"{toolchain} is not a toolchain: it has no toolchain.json") from None
    except (OSError, ValueError) as err:
        raise BootstrapError(f"{toolchain}/toolchain.json cannot be read: {err}") from None


def dev_env(store: Store, toolchain: str, tools: list[str], compiler: str = "gcc") -> DevEnv:
    """The environment of `toolchain` with the store paths `tools` (first wins on PATH)."""
    descriptor = read_descriptor(store, toolchain)
    if compiler == "clang" and "clang" not in descriptor:
        raise BootstrapError(
            f"{toolchain} has no clang (it is added in stage7); use --compiler gcc, "
            "or a later --until"
        )
    table = CLANG_VARIABLES if compiler == "clang" else GCC_VARIABLES
    found = descriptor.get("tools", {})
    variables = {name: found[tool] for name, tool in table.items() if tool in found}
    section = descriptor["clang"] if compiler == "clang" else descriptor
    if "cmakeToolchainFile" in section:
        variables["CMAKE_TOOLCHAIN_FILE"] = section["cmakeToolchainFile"]
    if "mesonNativeFile" in section:
        variables["BOOTSTRAP_MESON_NATIVE_FILE"] = section["mesonNativeFile"]
    paths = [toolchain, *(p for p in tools if p != toolchain)]

    def has(path: str, sub: str) -> bool:
        return (store.real_path(path) / sub).is_dir()

    variables["PATH"] = ":".join(f"{p}/bin" for p in paths if has(p, "bin"))
    pkg_config = [f"{p}/{s}" for p in tools for s in PKG_CONFIG_DIRS if has(p, s)]
    prefixes = [p for p in tools if any(has(p, s) for s in (*PKG_CONFIG_DIRS, "lib/cmake"))]
    if pkg_config:
        variables["PKG_CONFIG_PATH"] = ":".join(pkg_config)
    if prefixes:
        variables["CMAKE_PREFIX_PATH"] = ":".join(prefixes)
    variables["BOOTSTRAP_TOOLCHAIN"] = toolchain
    return DevEnv(toolchain, compiler, variables, paths)


def shell_argv(
    store: Store,
    env: DevEnv,
    command: list[str],
    cwd: Path,
    pure: bool = False,
    host_path: str = "",
) -> tuple[list[str], dict[str, str]]:
    """The bwrap command line that runs `command` in the environment with the store at its
    logical place, and the environment to start it with."""
    bwrap = shutil.which("bwrap")
    if not bwrap:
        raise BootstrapError(
            "shell: bubblewrap (bwrap) not found on PATH; scripts/setup installs it"
        )
    store_dir, physical = store.store_dir, str(store.physical_dir)
    argv = [bwrap, "--die-with-parent"]
    if pure:
        argv += ["--tmpfs", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        argv += ["--ro-bind", physical, store_dir, "--bind", str(cwd), str(cwd)]
        shell = _store_shell(store, env)
        argv += ["--symlink", shell, "/bin/sh"]  # what ninja, make and system() run
        variables = {k: v for k, v in os.environ.items() if k in PURE_KEPT}
        variables |= {"HOME": str(cwd), "SHELL": shell} | env.variables
    else:
        argv += [*_host_except(store_dir), "--ro-bind", physical, store_dir]
        variables = dict(os.environ) | env.variables
        variables["PATH"] = ":".join(filter(None, [env.variables["PATH"], host_path]))
        shell = os.environ.get("SHELL") or _store_shell(store, env)
    argv += ["--chdir", str(cwd), "--"]
    return argv + (command or [shell]), variables | {"BOOTSTRAP_SHELL": env.toolchain}


def _store_shell(store: Store, env: DevEnv) -> str:
    for path in env.paths:
        if (store.real_path(path) / "bin/sh").exists():
            return f"{path}/bin/sh"
    raise BootstrapError("shell: no path of the environment has bin/sh")


def _host_except(logical: str) -> list[str]:
    """bwrap arguments that show the host's whole tree except `logical` (the store directory),
    where a mount point is left: each directory on the way is a tmpfs holding its host
    entries, bound one by one."""
    parts = Path(logical).parts[1:]
    argv = ["--dev-bind", "/", "/"] if not parts else []
    here = Path("/")
    for depth, part in enumerate(parts):
        if not here.is_dir():
            break
        argv += ["--tmpfs", str(here)] if depth else ["--tmpfs", "/"]
        for entry in sorted(here.iterdir()):
            if entry.name == part:
                continue
            if entry.is_symlink():
                argv += ["--symlink", os.readlink(entry), str(entry)]
            else:
                argv += ["--dev-bind", str(entry), str(entry)]
        here = here / part
        if not here.exists() or here.is_symlink():
            break
    return argv
