# Python, static: one interpreter with the standard library's C modules built in (a static
# interpreter cannot load extension modules), compiled at $optimize. Left out: the test suite,
# and the bytecode caches (`make install` writes them, but their bytes depend on reference
# counts at compile time, so they are not reproducible).
unpack_sources
cd Python-*
# Python 3.11 builds its optional C modules as shared extensions, which a static interpreter
# cannot load (MODULE_BUILDTYPE=static is not enough): Modules/Setup.local builds them in.
# zlib is built in against the store's static zlib. Left out: _ctypes (libffi), _decimal,
# pyexpat and _elementtree (bundled libraries), and the subinterpreter and xxlimited test modules.
cat > Modules/Setup.local <<'SETUP'
*static*
_asyncio _asynciomodule.c
_bisect _bisectmodule.c
_blake2 _blake2/blake2module.c _blake2/blake2b_impl.c _blake2/blake2s_impl.c
_contextvars _contextvarsmodule.c
_crypt _cryptmodule.c
_csv _csv.c
_datetime _datetimemodule.c
_heapq _heapqmodule.c
_json _json.c
_lsprof _lsprof.c rotatingtree.c
_md5 md5module.c
_multiprocessing -I$(srcdir)/Modules/_multiprocessing _multiprocessing/multiprocessing.c _multiprocessing/semaphore.c
_opcode _opcode.c
_pickle _pickle.c
_posixshmem -I$(srcdir)/Modules/_multiprocessing _multiprocessing/posixshmem.c
_posixsubprocess _posixsubprocess.c
_queue _queuemodule.c
_random _randommodule.c
_sha1 sha1module.c
_sha256 sha256module.c
_sha3 _sha3/sha3module.c
_sha512 sha512module.c
_socket socketmodule.c
_statistics _statisticsmodule.c
_struct _struct.c
_typing _typingmodule.c
_zoneinfo _zoneinfo.c
array arraymodule.c
audioop audioop.c
binascii binascii.c
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
_multibytecodec cjkcodecs/multibytecodec.c
_codecs_cn cjkcodecs/_codecs_cn.c
_codecs_hk cjkcodecs/_codecs_hk.c
_codecs_iso2022 cjkcodecs/_codecs_iso2022.c
_codecs_jp cjkcodecs/_codecs_jp.c
_codecs_kr cjkcodecs/_codecs_kr.c
_codecs_tw cjkcodecs/_codecs_tw.c
SETUP
echo "zlib zlibmodule.c -I$zlib/include $zlib/lib/libz.a" >> Modules/Setup.local
./configure --prefix="$out" --disable-shared --without-ensurepip --disable-test-modules \
    MODULE_BUILDTYPE=static CFLAGS="$optimize" > configure.log || { tail -n 60 config.log; exit 1; }
make -j"$NIX_BUILD_CORES"
make install
# what glibc's and LLVM's build scripts use must load from the interpreter itself
"$out/bin/python3" -c "import subprocess, random, math, json, hashlib, socket, select, struct, zlib"
rm -rf "$out"/lib/python3*/test
find "$out" -name __pycache__ -type d -prune -exec rm -r {} +
