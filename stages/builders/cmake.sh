# CMake, the build system LLVM's build needs, static against the store's musl: its bootstrap
# script compiles a minimal cmake, which then configures and builds the real one with the
# libraries bundled in its tree (curl without TLS, libarchive, zlib, expat, libuv, ...), at
# $optimize. No GUI, no test suite, no manuals; the license texts under doc/ are kept.
# gcc 12 has no built-in Linux headers path, and kwsys includes <linux/fs.h>.
headers="-isystem $linux_headers/include"
unpack_sources
cd cmake-*
CC=gcc CXX=g++ CFLAGS="$headers" CXXFLAGS="$headers" ./bootstrap --prefix="$out" \
    --parallel="$NIX_BUILD_CORES" --no-system-libs --no-qt-gui -- -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_USE_OPENSSL=OFF -DBUILD_TESTING=OFF \
    -DCMAKE_C_FLAGS_RELEASE="$optimize" -DCMAKE_CXX_FLAGS_RELEASE="$optimize" \
    > bootstrap.log || { tail -n 60 bootstrap.log; tail -n 40 Bootstrap.cmk/cmake_bootstrap.log; exit 1; }
make -j"$NIX_BUILD_CORES"
make install
# IBM XL Fortran's preprocessor wrapper is a bash script, and the Green Hills project templates
# start with `#!gbuild`, a program no store holds: left out
modules=$(echo "$out"/share/cmake-*/Modules)
rm "$modules/Compiler/XL-Fortran/cpp" "$modules"/CompilerId/GHS_*.gpj.in
