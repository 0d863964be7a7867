# Python, static: one interpreter with the standard library's C modules built in
# (MODULE_BUILDTYPE=static: a static interpreter cannot load extension modules), compiled at
# $optimize. Left out: the test suite, and the bytecode caches (`make install` writes them,
# but their bytes depend on reference counts at compile time, so they are not reproducible).
unpack_sources
cd Python-*
./configure --prefix="$out" --disable-shared --without-ensurepip --disable-test-modules \
    MODULE_BUILDTYPE=static CFLAGS="$optimize" > configure.log || { tail -n 60 config.log; exit 1; }
make -j"$BOOTSTRAP_CORES"
make install
rm -r "$out"/lib/python3*/test
find "$out" -name __pycache__ -type d -prune -exec rm -r {} +
patch_shebangs "$out"
