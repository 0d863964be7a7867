# Python, static: one interpreter with the standard library's C modules built in
# (MODULE_BUILDTYPE=static: a static interpreter cannot load extension modules), compiled at
# $optimize. Left out: the test suite, and the bytecode caches (`make install` writes them,
# but their bytes depend on reference counts at compile time, so they are not reproducible).
unpack_sources
cd Python-*
# Python 3.11 still builds these with setup.py, as shared extensions only: build them in.
# Left out: _ctypes (libffi), _decimal, pyexpat and _elementtree (bundled libraries), and the
# subinterpreter test module.
cat > Modules/Setup.local <<'SETUP'
*static*
_blake2 _blake2/blake2module.c _blake2/blake2b_impl.c _blake2/blake2s_impl.c
_crypt _cryptmodule.c
_datetime _datetimemodule.c
_multiprocessing -I$(srcdir)/Modules/_multiprocessing _multiprocessing/multiprocessing.c _multiprocessing/semaphore.c
_pickle _pickle.c
_posixshmem -I$(srcdir)/Modules/_multiprocessing _multiprocessing/posixshmem.c
_posixsubprocess _posixsubprocess.c
_socket socketmodule.c
_statistics _statisticsmodule.c
cmath cmathmodule.c
fcntl fcntlmodule.c
grp grpmodule.c
math mathmodule.c
mmap mmapmodule.c
resource resource.c
select selectmodule.c
spwd spwdmodule.c
syslog syslogmodule.c
termios termios.c
unicodedata unicodedata.c
SETUP
./configure --prefix="$out" --disable-shared --without-ensurepip --disable-test-modules \
    MODULE_BUILDTYPE=static CFLAGS="$optimize" > configure.log || { tail -n 60 config.log; exit 1; }
make -j"$BOOTSTRAP_CORES"
make install
rm -rf "$out"/lib/python3*/test
find "$out" -name __pycache__ -type d -prune -exec rm -r {} +
# scripts in the standard library name /usr/bin/env python3 (or /usr/local/bin/python, ...):
# point them at this Python
grep -rlE '^#! ?(/usr/bin/env +)?[^ ]*python' "$out" | while read -r file; do
    sed -i -E "1s@^#! ?(/usr/bin/env +)?[^ ]*python[0-9.]*@#!$out/bin/python3@" "$file"
done
patch_shebangs "$out"
