# The toolchain handed to the main builder, as one store path: `cc`/`c++` wrappers around the
# gcc for glibc (and `clang`/`clang++` when LLVM, clang and lld are inputs), binutils' and LLVM's
# tools beside them, and descriptors in formats builders already read (toolchain.json, CMake
# toolchain files, Meson native files), all written by toolchain.py. The closure-*.json files
# (the recipe's closure_files) list what the toolchain runs with.
llvm=$(input llvm 2>/dev/null) || llvm=""
python3 "$(builder_file toolchain.py)" --out "$out" --shell "$SHELL" --system "$system" \
    --gcc "$(input gcc)" --binutils "$(input binutils)" --glibc "$(input glibc)" \
    ${llvm:+--llvm "$llvm" --clang "$(input clang)" --lld "$(input lld)"}
