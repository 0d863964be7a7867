# zlib by the stage-6 toolchain, as a static library only (libz.a, compiled with -fPIC so it
# can go into LLVM's shared libLLVM): LLVM links it so that lld can read the zlib-compressed
# debug sections of gcc's runtime (libgcc.a). zlib's configure is its own script, not
# autoconf's: it reads CC and CFLAGS from the environment. $optimize as for every package.
unpack_sources
cd zlib-*
CC=cc CFLAGS="$optimize -fPIC" ./configure --static --prefix="$out" > configure.log ||
    { cat configure.log; exit 1; }
make -j"$NIX_BUILD_CORES" libz.a
make install
rm -rf "$out/share/man"
