# What both modern-gcc builders (gcc-on-musl.sh, gcc-for-glibc.sh) share: the source tree, the
# configure flags and the install steps.

# gcc unpacked (from inside Debian's orig tarball, which wraps the upstream one) with gmp, mpfr
# and mpc moved into it, so gcc builds them in-tree. Sets $src to the tree's directory.
unpack_gcc_tree() {
    unpack_sources
    for inner in gcc-*/gcc-*.tar.xz; do
        [ -f "$inner" ] || continue
        tar -xJf "$inner"
        rm -r "${inner%/*}"
    done
    src=$(echo gcc-[0-9]*)
    for lib in gmp mpfr mpc; do
        mv "$lib"-[0-9]* "$src/$lib"
    done
    # Debian's gmp orig tarball has no doc/ (the manual is not DFSG-free)
    sed -i 's| doc/Makefile||' "$src/gmp/configure"
    sed -i 's|^\(SUBDIRS = .*\) doc$|\1|' "$src/gmp/Makefile.in"
}

# Apply the recipe's patches to $src, then enter a build directory beside it. binutils' ld was
# not configured with a sysroot and refuses --sysroot: gcc passes the sysroot's start files and
# libraries to ld by full path instead.
enter_gcc_build() {
    (cd "$src" && apply_patches)
    patch_shebangs "$src"
    mkdir build
    cd build
    export gcc_cv_ld_sysroot=no
}

# Configure $src for $out from a build directory beside it: compiled by the gcc among the inputs
# (`gcc`/`g++`, a musl program, so the new compilers are static musl programs too) at
# $hostOptimize, with $binutils' as and ld, the sysroot's headers in its /include, C and C++ only,
# none of the optional runtimes (sanitizers, OpenMP, ...), no docs, NLS, LTO or plugins. The
# caller adds the target, the sysroot and its own flags.
configure_gcc() {
    CC=gcc CXX=g++ CFLAGS="$hostOptimize" CXXFLAGS="$hostOptimize -frandom-seed=bootstrap" \
        AR=ar RANLIB=ranlib MAKEINFO=true \
        "../$src/configure" --prefix="$out" --build=x86_64-pc-linux-musl \
        --host=x86_64-pc-linux-musl --with-native-system-header-dir=/include \
        --with-as="$binutils/bin/as" --with-ld="$binutils/bin/ld" \
        --enable-languages=c,c++ --disable-bootstrap --disable-nls --disable-multilib \
        --disable-lto --disable-plugin --disable-libsanitizer --disable-libssp \
        --disable-libquadmath --disable-libgomp --disable-libitm --disable-libvtv \
        --disable-libcc1 --disable-libatomic --enable-threads=posix --disable-libstdcxx-pch \
        --without-isl --without-zstd "$@"
}

# `install` minus the manuals: the compilers, drivers and headers, then the runtime libraries
install_gcc() {
    make -C gcc MAKEINFO=true install-common install-headers install-cpp install-driver \
        install-lto-wrapper install-gcc-ar
    make MAKEINFO=true install-target
}
