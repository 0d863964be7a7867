# Ninja, the build tool LLVM's CMake build runs, static against the store's musl (as CMake
# is). configure.py --bootstrap compiles it without an existing ninja. LLVM builds with it
# because a ninja build that was killed resumes safely: a command that did not finish has no
# entry in .ninja_log, so its (possibly half-written) output is built again.
unpack_sources
cd ninja-*
CXX=g++ CFLAGS="$optimize" python3 configure.py --bootstrap > configure.log ||
    { tail -n 40 configure.log; exit 1; }
mkdir -p "$out/bin"
strip -o "$out/bin/ninja" ninja
