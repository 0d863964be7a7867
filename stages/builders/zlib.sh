# zlib as a static library only (libz.a, compiled with -fPIC so it can go into a shared
# library), by the gcc among the inputs: the stage-4 gcc 12 for Python's zlib module, the
# stage-6 toolchain for LLVM, which links it so that lld can read the zlib-compressed debug
# sections of gcc's runtime (libgcc.a) and goes into LLVM's shared libLLVM. zlib's configure is
# its own script, not autoconf's: it reads CC and CFLAGS from the environment.
unpack_sources
cd zlib-*
CC=gcc CFLAGS="$optimize -fPIC" ./configure --static --prefix="$out" > configure.log ||
    { cat configure.log; exit 1; }
make -j"$NIX_BUILD_CORES" libz.a
make install
rm -rf "$out/share/man"
