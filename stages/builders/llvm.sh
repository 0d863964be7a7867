# clang and lld (LLVM), by the stage-6 toolchain's c++ (gcc for glibc): programs for the store's
# glibc that find libLLVM and libclang-cpp beside them ($ORIGIN/../lib) and libstdc++ through
# the wrapper's RUNPATH. clang links with lld by default; it knows nothing of the store itself:
# the final toolchain's clang wrappers pass the sysroot (glibc), the gcc installation (libstdc++,
# libgcc, start files) and the loader. $targets lists the code generators, $optimize the
# optimisation of LLVM's own code; no assertions, tests, examples, docs or bindings, and no
# static analyzer (its scan-build scripts are Perl, which the chain does not have).
unpack_sources
src=$(ls -d llvm-* | head -n 1)
python=$(input python)/bin/python3
cmake -S "$src/llvm" -B build -G "Unix Makefiles" -Wno-dev \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$out" \
    -DCMAKE_C_COMPILER=cc -DCMAKE_CXX_COMPILER=c++ -DCMAKE_AR="$(command -v ar)" \
    -DCMAKE_C_FLAGS_RELEASE="$optimize -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="$optimize -DNDEBUG" \
    -DPython3_EXECUTABLE="$python" \
    -DLLVM_ENABLE_PROJECTS="clang;lld" -DLLVM_TARGETS_TO_BUILD="$targets" \
    -DLLVM_HOST_TRIPLE=x86_64-pc-linux-gnu -DLLVM_DEFAULT_TARGET_TRIPLE=x86_64-pc-linux-gnu \
    -DLLVM_BUILD_LLVM_DYLIB=ON -DLLVM_LINK_LLVM_DYLIB=ON -DCLANG_LINK_CLANG_DYLIB=ON \
    -DLLVM_ENABLE_ASSERTIONS=OFF -DLLVM_INCLUDE_TESTS=OFF -DLLVM_INCLUDE_BENCHMARKS=OFF \
    -DLLVM_INCLUDE_EXAMPLES=OFF -DLLVM_INCLUDE_DOCS=OFF -DLLVM_BUILD_UTILS=OFF \
    -DLLVM_ENABLE_BINDINGS=OFF -DLLVM_ENABLE_TERMINFO=OFF -DLLVM_ENABLE_ZLIB=OFF \
    -DLLVM_ENABLE_ZSTD=OFF -DLLVM_ENABLE_LIBXML2=OFF -DLLVM_ENABLE_LIBEDIT=OFF \
    -DLLVM_ENABLE_LIBPFM=OFF \
    -DCLANG_INCLUDE_TESTS=OFF -DCLANG_INCLUDE_DOCS=OFF -DCLANG_DEFAULT_LINKER=lld \
    -DCLANG_ENABLE_ARCMT=OFF -DCLANG_ENABLE_STATIC_ANALYZER=OFF \
    > configure.log || { tail -n 60 configure.log; tail -n 60 build/CMakeFiles/CMakeError.log; exit 1; }
make -C build -j"$BOOTSTRAP_CORES"
make -C build install
