# The toolchain handed to the main builder, as one store path: `cc`/`c++` wrappers around the
# gcc for glibc (and `clang`/`clang++` when LLVM, clang and lld are inputs), binutils' and LLVM's
# tools beside them, and descriptors in formats builders already read (toolchain.json, CMake
# toolchain files, Meson native files), written by toolchain.py (and toolchain_clang.py, which
# imports it). The closure-*.json files (the recipe's closure_files) list what the toolchain
# runs with.
set -- --out "$out" --shell "$SHELL" --system "$system" \
    --gcc "$gcc" --binutils "$binutils" --glibc "$glibc"
cp "$(builder_file toolchain.py)" toolchain.py
if [ -n "${llvm:-}" ]; then
    cp "$(builder_file toolchain_clang.py)" toolchain_clang.py
    python3 toolchain_clang.py "$@" --llvm "$llvm" --clang "$clang" --lld "$lld"
else
    python3 toolchain.py "$@"
fi
