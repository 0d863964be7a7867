# A modern gcc (C and C++, with libstdc++) for x86_64-linux-musl, as a native, non-bootstrapped
# build by the gcc among the inputs (as `gcc`/`g++`), with binutils among the inputs as its
# assembler and linker. gmp, mpfr and mpc are built in-tree (their sources sit beside gcc's).
# The store's musl is the compiler's sysroot: headers in $musl/include, start files and libc in
# $musl/lib. Everything it links is static (see --with-specs below), as the musl here
# is static only. No docs, NLS, LTO, plugins or optional runtimes (sanitizers, OpenMP, ...).
musl=$(input musl)
binutils=$(input binutils)
. "$(builder_file gcc-tree.sh)"
unpack_gcc_tree
# the loader names behind -static's absence point into the store, not at /lib
sed -i "s|\"/lib/ld-musl-|\"$musl/lib/ld-musl-|" "$src/gcc/config/i386/linux64.h"
(cd "$src" && apply_patches)
patch_shebangs "$src"
mkdir build
cd build
# binutils 2.16.1 knows --sysroot but was not configured with one, so it refuses it: gcc passes
# the sysroot's start files and libraries to ld by full path instead
export gcc_cv_ld_sysroot=no
# Links are static unless -shared asks otherwise, or -nostdlib says the caller names every file
# linked (as glibc's build does for its own dynamic programs).
# $hostOptimize is for the compiler's own code, compiled by the inputs' gcc; $optimize is for
# the runtime libraries (libgcc, libstdc++), compiled by the new gcc. Names in anonymous
# namespaces carry a random number unless -frandom-seed fixes it (gcc 3.4).
CC=gcc CXX=g++ CFLAGS="$hostOptimize" CXXFLAGS="$hostOptimize -frandom-seed=bootstrap" \
    AR=ar RANLIB=ranlib MAKEINFO=true \
    "../$src/configure" --prefix="$out" --build=x86_64-pc-linux-musl \
    --host=x86_64-pc-linux-musl --target=x86_64-pc-linux-musl \
    --with-sysroot="$musl" --with-native-system-header-dir=/include \
    --with-as="$binutils/bin/as" --with-ld="$binutils/bin/ld" \
    --with-specs='%{!shared:%{!static:%{!nostdlib:-static}}}' \
    --enable-languages=c,c++ --disable-bootstrap --disable-nls --disable-multilib \
    --disable-shared --disable-lto --disable-plugin --disable-libsanitizer --disable-libssp \
    --disable-libquadmath --disable-libgomp --disable-libitm --disable-libvtv --disable-libcc1 \
    --disable-libatomic --enable-threads=posix --disable-libstdcxx-pch --without-isl \
    --without-zstd
make -j"$NIX_BUILD_CORES" MAKEINFO=true CFLAGS_FOR_TARGET="$optimize" \
    CXXFLAGS_FOR_TARGET="$optimize" all
# `install` minus the manuals: the compilers, drivers and headers, then libgcc and libstdc++
make -C gcc MAKEINFO=true install-common install-headers install-cpp install-driver \
    install-lto-wrapper install-gcc-ar
make MAKEINFO=true install-target
