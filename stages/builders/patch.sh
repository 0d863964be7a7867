# GNU patch 2.7.6 by the stage-1 tcc, configured by busybox's shell and tools.
unpack_sources
cd patch-2.7.6
./configure --prefix="$out" --disable-dependency-tracking --disable-xattr \
    CC=tcc-cc AR=tcc-ar RANLIB=true > configure.log || { tail -n 40 config.log; exit 1; }
make -j"$NIX_BUILD_CORES"
make install
