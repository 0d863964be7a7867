# The toolchain handed to the main builder, as one store path: `cc`/`c++` wrappers around the
# gcc for glibc, binutils' tools beside them, and descriptors in formats builders already read
# (toolchain.json, a CMake toolchain file, a Meson native file), all written by toolchain.py.
# The closure-*.json files (the recipe's closure_files) list what the toolchain runs with.
python3 "$(builder_file toolchain.py)" --out "$out" --shell "$SHELL" --system "$system" \
    --gcc "$(input gcc)" --binutils "$(input binutils)" --glibc "$(input glibc)"
