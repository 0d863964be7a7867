"""Write the toolchain store path (see toolchain.sh); run by the stage-4 Python in the sandbox.

The wrappers add one thing to the compiler: a RUNPATH entry for the compiler's own shared
runtime libraries (libstdc++, libgcc_s), through a specs file, so the programs they link load
everything from the store. The dynamic loader, the store glibc's, is the compiler's default.
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


def write_wrappers(out: Path, gcc: Path, shell: str) -> dict[str, str]:
    specs = out / "lib" / "rpath.specs"
    specs.parent.mkdir(parents=True)
    specs.write_text(f"*link:\n+ %{{!static:%{{!static-pie:-rpath {runtime_dir(gcc)}}}}}\n\n")
    tools = {}
    for name, driver in (("cc", "gcc"), ("c++", "g++"), ("cpp", "cpp")):
        wrapper = out / "bin" / name
        wrapper.write_text(f'#!{shell}\nexec {gcc}/bin/{driver} -specs={specs} "$@"\n')
        wrapper.chmod(0o755)
        tools[name] = str(wrapper)
    for alias, name in (("gcc", "cc"), ("g++", "c++")):
        (out / "bin" / alias).symlink_to(name)
    return tools


def link_binutils(out: Path, binutils: Path) -> dict[str, str]:
    for name in BINUTILS:
        (out / "bin" / name).symlink_to(binutils / "bin" / name)
    return {name: str(out / "bin" / name) for name in BINUTILS}


def write_cmake(out: Path, tools: dict[str, str]) -> Path:
    path = out / "share" / "toolchain" / "toolchain.cmake"
    variables = {"C_COMPILER": "cc", "CXX_COMPILER": "c++", "AR": "ar", "RANLIB": "ranlib"}
    variables |= {"LINKER": "ld", "NM": "nm", "OBJCOPY": "objcopy", "OBJDUMP": "objdump"}
    variables |= {"STRIP": "strip"}
    lines = [
        "# CMake toolchain file: cmake -DCMAKE_TOOLCHAIN_FILE=<this file>",
        "set(CMAKE_SYSTEM_NAME Linux)",
        "set(CMAKE_SYSTEM_PROCESSOR x86_64)",
        *(f"set(CMAKE_{var} {tools[tool]})" for var, tool in variables.items()),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_meson(out: Path, tools: dict[str, str]) -> Path:
    path = out / "share" / "toolchain" / "meson-native.ini"
    names = {"c": "cc", "cpp": "c++", "ar": "ar", "strip": "strip", "nm": "nm"}
    lines = ["# Meson native file: meson setup --native-file <this file>", "[binaries]"]
    lines += [f"{key} = '{tools[tool]}'" for key, tool in names.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def merged_closure() -> list[dict]:
    """The union of the closure-*.json files (the recipe's closure_files), sorted by path."""
    entries = {}
    for file in Path().glob("closure-*.json"):
        entries.update((entry["path"], entry) for entry in json.loads(file.read_text()))
    return [entries[path] for path in sorted(entries)]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="write the toolchain store path")
    for name in ("out", "shell", "system", "gcc", "binutils", "glibc"):
        parser.add_argument(f"--{name}", required=True)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    out, gcc, glibc = Path(args.out), Path(args.gcc), Path(args.glibc)
    (out / "bin").mkdir(parents=True)
    tools = {**write_wrappers(out, gcc, args.shell), **link_binutils(out, Path(args.binutils))}
    descriptor = {
        "target": TRIPLE,
        "system": args.system,
        "tools": tools,
        "compiler": {"name": "gcc", "version": gcc.name.rsplit("-", 1)[1], "path": str(gcc)},
        "libc": {
            "name": "glibc",
            "version": glibc.name.rsplit("-", 1)[1],
            "path": str(glibc),
            "dynamicLinker": str(glibc / "lib" / "ld-linux-x86-64.so.2"),
        },
        "runtimeLibraries": str(runtime_dir(gcc)),
        "cmakeToolchainFile": str(write_cmake(out, tools)),
        "mesonNativeFile": str(write_meson(out, tools)),
        # what the toolchain runs with (its own path's NAR hash is known only once it is built)
        "closure": merged_closure(),
    }
    (out / "toolchain.json").write_text(json.dumps(descriptor, indent=2) + "\n")


main()
