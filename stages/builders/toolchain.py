"""Write the toolchain store path (see toolchain.sh); run by the stage-4 Python in the sandbox.

The gcc wrappers (`cc`, `c++`) add one thing to the compiler: a RUNPATH entry for the
compiler's own shared runtime libraries (libstdc++, libgcc_s), through a specs file, so the
programs they link load everything from the store. The dynamic loader, the store glibc's, is
the compiler's default. toolchain_clang.py adds clang to what this writes (stage 7); it is a
file of its own so that changing clang's wrappers does not change the stage-6 toolchain, which
LLVM is built with.
"""

import argparse
import json
from pathlib import Path

TRIPLE = "x86_64-pc-linux-gnu"
BINUTILS = ("ld", "as", "ar", "nm", "ranlib", "objcopy", "objdump", "readelf", "strip", "size")


def runtime_dir(gcc: Path) -> Path:
    """Where the gcc for glibc installed libstdc++.so."""
    found = sorted(gcc.rglob("libstdc++.so"))
    if not found:
        raise SystemExit(f"toolchain.py: no libstdc++.so under {gcc}")
    return found[0].parent


def write_script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def write_gcc_wrappers(out: Path, gcc: Path, runtime: Path, shell: str) -> dict[str, str]:
    specs = out / "lib" / "rpath.specs"
    specs.parent.mkdir(parents=True)
    # binutils' ld writes DT_RPATH by default; --enable-new-dtags makes every -rpath a RUNPATH
    rpath = f"--enable-new-dtags -rpath {runtime}"
    specs.write_text(f"*link:\n+ %{{!static:%{{!static-pie:{rpath}}}}}\n\n")
    tools = {
        name: write_script(
            out / "bin" / name, f'#!{shell}\nexec {gcc}/bin/{driver} -specs={specs} "$@"\n'
        )
        for name, driver in (("cc", "gcc"), ("c++", "g++"), ("cpp", "cpp"))
    }
    for alias, name in (("gcc", "cc"), ("g++", "c++")):
        (out / "bin" / alias).symlink_to(name)
    return tools


def link_tools(out: Path, package: Path, names: tuple[str, ...]) -> dict[str, str]:
    for name in names:
        (out / "bin" / name).symlink_to(package / "bin" / name)
    return {name: str(out / "bin" / name) for name in names}


# which tool each CMake variable (CMAKE_<VAR>) and Meson binary names
GCC_ROLES = {"C_COMPILER": "cc", "CXX_COMPILER": "c++", "AR": "ar", "RANLIB": "ranlib"}
GCC_ROLES |= {"LINKER": "ld", "NM": "nm", "OBJCOPY": "objcopy", "OBJDUMP": "objdump"}
GCC_ROLES |= {"STRIP": "strip"}
MESON_ROLES = {"c": "C_COMPILER", "cpp": "CXX_COMPILER", "ar": "AR", "strip": "STRIP"}
MESON_ROLES |= {"nm": "NM"}


def write_cmake(out: Path, tools: dict[str, str], roles: dict[str, str], suffix: str) -> Path:
    path = out / "share" / "toolchain" / f"toolchain{suffix}.cmake"
    lines = [
        "# CMake toolchain file: cmake -DCMAKE_TOOLCHAIN_FILE=<this file>",
        "set(CMAKE_SYSTEM_NAME Linux)",
        "set(CMAKE_SYSTEM_PROCESSOR x86_64)",
        *(f"set(CMAKE_{var} {tools[tool]})" for var, tool in roles.items()),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_meson(out: Path, tools: dict[str, str], roles: dict[str, str], suffix: str) -> Path:
    path = out / "share" / "toolchain" / f"meson-native{suffix}.ini"
    lines = ["# Meson native file: meson setup --native-file <this file>", "[binaries]"]
    lines += [f"{key} = '{tools[roles[role]]}'" for key, role in MESON_ROLES.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def merged_closure() -> list[dict]:
    """The union of the closure-*.json files (the recipe's closure_files), sorted by path."""
    entries = {}
    for file in Path().glob("closure-*.json"):
        entries.update((entry["path"], entry) for entry in json.loads(file.read_text()))
    return [entries[path] for path in sorted(entries)]


def parse_args(*optional: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="write the toolchain store path")
    for name in ("out", "shell", "system", "gcc", "binutils", "glibc", *optional):
        parser.add_argument(f"--{name}", required=True)
    return parser.parse_args()


def version_of(package: Path) -> str:
    return package.name.rsplit("-", 1)[1]


def gcc_toolchain(args: argparse.Namespace) -> dict:
    """Write the gcc wrappers, binutils' links and their descriptors; the descriptor so far."""
    out, gcc, glibc = Path(args.out), Path(args.gcc), Path(args.glibc)
    runtime = runtime_dir(gcc)
    (out / "bin").mkdir(parents=True)
    tools = write_gcc_wrappers(out, gcc, runtime, args.shell) | link_tools(
        out, Path(args.binutils), BINUTILS
    )
    return {
        "target": TRIPLE,
        "system": args.system,
        "tools": tools,
        "compiler": {"name": "gcc", "version": version_of(gcc), "path": str(gcc)},
        "libc": {
            "name": "glibc",
            "version": version_of(glibc),
            "path": str(glibc),
            "dynamicLinker": str(glibc / "lib" / "ld-linux-x86-64.so.2"),
        },
        "runtimeLibraries": str(runtime),
        "cmakeToolchainFile": str(write_cmake(out, tools, GCC_ROLES, "")),
        "mesonNativeFile": str(write_meson(out, tools, GCC_ROLES, "")),
    }


def write_descriptor(out: Path, descriptor: dict) -> None:
    """toolchain.json, with what the toolchain runs with (its own path's NAR hash is known only
    once it is built)."""
    descriptor["closure"] = merged_closure()
    (out / "toolchain.json").write_text(json.dumps(descriptor, indent=2) + "\n")


if __name__ == "__main__":
    arguments = parse_args()
    write_descriptor(Path(arguments.out), gcc_toolchain(arguments))
