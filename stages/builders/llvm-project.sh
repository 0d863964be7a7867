# One project of LLVM 15 from its monorepo tarball ($project: llvm, clang or lld), by the
# stage-6 toolchain's c++ (gcc for glibc): programs for the store's glibc. `llvm` is the
# libraries (one shared libLLVM, which everything else links), the llvm-* tools and the
# llvm-tblgen the others generate code with; clang and lld are built standalone against that
# installed LLVM (its CMake package), each a store path of its own, so a later run resumes
# after whichever finished. cmake gives their programs RUNPATH $ORIGIN/../lib and, standalone,
# LLVM's lib/; libstdc++ is found through the c++ wrapper's RUNPATH. $optimize is the
# optimisation of LLVM's own code. No assertions, tests, examples, docs or bindings.
# The build is resumable (hours on two cores): ninja builds it, and when the run was cut short
# this script starts in the build directory it left; once configured, the source tree and
# build/ are reused as they are, and ninja rebuilds only what had not finished.
build=all install=install # the ninja targets: everything the project's cmake set up
case "$project" in
    llvm)
        # $targets lists the code generators. Built and installed (LLVM's "distribution"):
        # what clang and lld are built with (the libraries, libLLVM among them, the headers,
        # the CMake package, llvm-tblgen), llvm-config, and the llvm-* tools the final
        # toolchain names. None of LLVM's other tools (a tenth of its build steps), and never
        # llvm-exegesis (a benchmark tool that tells users to run /usr/bin/objdump) or
        # llvm-libtool-darwin (macOS's libtool, which searches /usr/lib and /usr/local/lib)
        components="llvm-libraries;llvm-headers;cmake-exports;llvm-tblgen;llvm-config"
        components="$components;llvm-ar;llvm-ranlib;llvm-nm;llvm-objcopy;llvm-strip"
        components="$components;llvm-objdump;llvm-readobj;llvm-readelf;llvm-size;llvm-symbolizer"
        set -- -DLLVM_TARGETS_TO_BUILD="$targets" -DLLVM_DISTRIBUTION_COMPONENTS="$components" \
            -DLLVM_HOST_TRIPLE=x86_64-pc-linux-gnu -DLLVM_DEFAULT_TARGET_TRIPLE=x86_64-pc-linux-gnu \
            -DLLVM_BUILD_LLVM_DYLIB=ON -DLLVM_LINK_LLVM_DYLIB=ON -DLLVM_ENABLE_ASSERTIONS=OFF \
            -DLLVM_INCLUDE_TESTS=OFF -DLLVM_INCLUDE_BENCHMARKS=OFF -DLLVM_INCLUDE_EXAMPLES=OFF \
            -DLLVM_INCLUDE_DOCS=OFF -DLLVM_ENABLE_BINDINGS=OFF -DLLVM_ENABLE_TERMINFO=OFF \
            -DLLVM_ENABLE_ZLIB=FORCE_ON -DZLIB_ROOT="$zlib" -DLLVM_ENABLE_ZSTD=OFF \
            -DLLVM_ENABLE_LIBXML2=OFF -DLLVM_ENABLE_LIBEDIT=OFF -DLLVM_ENABLE_LIBPFM=OFF \
            -DLLVM_TOOL_LLVM_EXEGESIS_BUILD=OFF -DLLVM_TOOL_LLVM_LIBTOOL_DARWIN_BUILD=OFF \
            -DLLVM_BUILD_UTILS=ON -DLLVM_INSTALL_UTILS=OFF # installs llvm-tblgen, not the rest
        build=distribution install=install-distribution
        ;;
    clang)
        # clang links with lld by default; no static analyzer (its scan-build scripts are Perl,
        # which the chain does not have), and with the recipe's patch, not its libraries either
        set -- -DLLVM_DIR="$llvm/lib/cmake/llvm" -DCLANG_LINK_CLANG_DYLIB=ON \
            -DCLANG_DEFAULT_LINKER=lld -DCLANG_INCLUDE_TESTS=OFF -DCLANG_INCLUDE_DOCS=OFF \
            -DCLANG_ENABLE_ARCMT=OFF -DCLANG_ENABLE_STATIC_ANALYZER=OFF
        ;;
    lld)
        set -- -DLLVM_DIR="$llvm/lib/cmake/llvm" -DLLVM_INCLUDE_TESTS=OFF
        ;;
    *)
        echo "llvm-project.sh: project must be llvm, clang or lld, not '$project'" >&2
        exit 1
        ;;
esac
if [ -f build/configured ]; then
    echo "resuming: $project's build tree was configured by an earlier, interrupted build"
else
    rm -rf ./* # whatever an attempt interrupted before the end of its configure left
    unpack_sources
    (cd llvm-* && apply_patches)
    cmake -S llvm-*/"$project" -B build -G Ninja -Wno-dev \
        -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$out" \
        -DCMAKE_C_COMPILER=cc -DCMAKE_CXX_COMPILER=c++ -DCMAKE_AR="$(command -v ar)" \
        -DCMAKE_C_FLAGS_RELEASE="$optimize -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="$optimize -DNDEBUG" \
        -DPython3_EXECUTABLE="$python/bin/python3" "$@" \
        > configure.log || { tail -n 60 configure.log; tail -n 60 build/CMakeFiles/CMakeError.log; exit 1; }
    touch build/configured
fi
ninja -C build -j"$NIX_BUILD_CORES" "$build"
ninja -C build "$install"
