"""Write the final toolchain store path: toolchain.py's gcc part, plus clang (see toolchain.sh).

clang knows nothing of the store, so its wrappers (`clang`, `clang++`) pass all of it: the
sysroot (the store's glibc), the gcc installation whose libstdc++, libgcc and start files it
uses, the loader (`--dyld-prefix`: glibc's `lib64/`), and when they link, lld (`--ld-path`, a
store path of its own) and the gcc wrappers' RUNPATH. They also give lld an empty sysroot:
lld reads every absolute path in a linker script found under its sysroot as relative to it,
and glibc's libc.so script names libc.so.6 by its store path, which is already absolute.
"""

import argparse
from pathlib import Path

from toolchain import (
    GCC_ROLES,
    gcc_toolchain,
    link_tools,
    parse_args,
    version_of,
    write_cmake,
    write_descriptor,
    write_meson,
    write_script,
)

LLVM_TOOLS = ("llvm-ar", "llvm-nm", "llvm-ranlib", "llvm-objcopy", "llvm-objdump")
LLVM_TOOLS += ("llvm-readelf", "llvm-strip", "llvm-size", "llvm-symbolizer")
LLD_TOOLS = ("ld.lld",)
# options after which clang does not link (so a linker option would be "unused")
NO_LINK = ("-c", "-S", "-E", "-M", "-MM", "-fsyntax-only")
CLANG_ROLES = {"C_COMPILER": "clang", "CXX_COMPILER": "clang++", "LINKER": "ld.lld"}
CLANG_ROLES |= {role: f"llvm-{tool}" for role, tool in GCC_ROLES.items() if role not in CLANG_ROLES}


def write_clang_wrappers(out: Path, args: argparse.Namespace, runtime: str) -> dict[str, str]:
    """`runtime` is the gcc wrappers' RUNPATH entry (toolchain.json's runtimeLibraries)."""
    store_flags = f"--sysroot={args.glibc} --gcc-toolchain={args.gcc} --dyld-prefix={args.glibc}"
    link_flags = f"--ld-path={args.lld}/bin/ld.lld -Wl,--sysroot= -Wl,-rpath,{runtime}"
    tools = {}
    for name in ("clang", "clang++"):
        driver = f"{args.clang}/bin/{name} {store_flags}"
        tools[name] = write_script(
            out / "bin" / name,
            f"#!{args.shell}\n"
            'for arg in "$@"; do\n'
            f'    case "$arg" in {" | ".join(NO_LINK)}) exec {driver} "$@" ;; esac\n'
            "done\n"
            f'exec {driver} {link_flags} "$@"\n',
        )
    return tools


def add_clang(descriptor: dict, args: argparse.Namespace) -> None:
    out = Path(args.out)
    tools = descriptor["tools"]
    tools |= write_clang_wrappers(out, args, descriptor["runtimeLibraries"])
    tools |= link_tools(out, Path(args.llvm), LLVM_TOOLS) | link_tools(
        out, Path(args.lld), LLD_TOOLS
    )
    descriptor["clang"] = {
        "version": version_of(Path(args.clang)),
        "path": args.clang,
        "lld": args.lld,
        "llvm": args.llvm,
        "dynamicLinker": str(Path(args.glibc) / "lib64" / "ld-linux-x86-64.so.2"),
        "cmakeToolchainFile": str(write_cmake(out, tools, CLANG_ROLES, "-clang")),
        "mesonNativeFile": str(write_meson(out, tools, CLANG_ROLES, "-clang")),
    }


arguments = parse_args("llvm", "clang", "lld")
toolchain = gcc_toolchain(arguments)
add_clang(toolchain, arguments)
write_descriptor(Path(arguments.out), toolchain)
