# gcc (C and C++) for x86_64-linux-gnu with the store's glibc as its sysroot, built by the gcc
# among the inputs, which targets musl. So this is a cross build in gcc's terms: the compilers
# themselves are static musl programs (they need nothing at run time), while everything they
# compile and link is for glibc, starting with their own runtime libraries: libgcc (with
# libgcc_s.so) and libstdc++ (static and shared). binutils among the inputs is their assembler
# and linker. gmp, mpfr and mpc are built in-tree. Programs it links get the store's glibc
# loader as their interpreter; the RUNPATH of its own shared libraries is the wrapper's job
# (stage 7). No docs, NLS, LTO, plugins or optional runtimes (sanitizers, OpenMP, ...).
glibc=$(input glibc)
binutils=$(input binutils)
triple=x86_64-pc-linux-gnu
. "$(builder_file gcc-tree.sh)"
unpack_gcc_tree
# the loader that dynamic programs name is the store's glibc's, not /lib64's
sed -i "s|\"/lib64/ld-linux-x86-64.so.2\"|\"$glibc/lib/ld-linux-x86-64.so.2\"|" \
    "$src/gcc/config/i386/linux64.h"
(cd "$src" && apply_patches)
patch_shebangs "$src"
mkdir build
cd build
# binutils' ld was not configured with a sysroot and refuses --sysroot: gcc passes the sysroot's
# start files and libraries by full path instead
export gcc_cv_ld_sysroot=no
# a cross build looks for the target's binutils as $triple-ar and so on: name them
for tool in ar nm objdump ranlib readelf strip; do
    export "$(echo "$tool" | tr a-z A-Z)_FOR_TARGET=$binutils/bin/$tool"
done
CC=gcc CXX=g++ CFLAGS="$hostOptimize" CXXFLAGS="$hostOptimize -frandom-seed=bootstrap" \
    AR=ar RANLIB=ranlib \
    AS_FOR_TARGET="$binutils/bin/as" LD_FOR_TARGET="$binutils/bin/ld" \
    MAKEINFO=true "../$src/configure" --prefix="$out" --build=x86_64-pc-linux-musl \
    --host=x86_64-pc-linux-musl --target="$triple" \
    --with-sysroot="$glibc" --with-native-system-header-dir=/include \
    --with-as="$binutils/bin/as" --with-ld="$binutils/bin/ld" \
    --enable-languages=c,c++ --disable-bootstrap --disable-nls --disable-multilib \
    --enable-shared --disable-lto --disable-plugin --disable-libsanitizer --disable-libssp \
    --disable-libquadmath --disable-libgomp --disable-libitm --disable-libvtv --disable-libcc1 \
    --disable-libatomic --enable-threads=posix --enable-__cxa_atexit --disable-libstdcxx-pch \
    --without-isl --without-zstd
make -j"$NIX_BUILD_CORES" MAKEINFO=true CFLAGS_FOR_TARGET="$optimize" \
    CXXFLAGS_FOR_TARGET="$optimize -frandom-seed=bootstrap" all
make -C gcc MAKEINFO=true install-common install-headers install-cpp install-driver \
    install-lto-wrapper install-gcc-ar
make MAKEINFO=true install-target
# a cross build installs its drivers as $triple-gcc and so on; give them their usual names too
for tool in gcc g++ cpp gcc-ar gcc-nm gcc-ranlib; do
    [ -e "$out/bin/$tool" ] || ln -s "$triple-$tool" "$out/bin/$tool"
done
