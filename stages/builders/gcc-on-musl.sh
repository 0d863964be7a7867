# A modern gcc (C and C++, with libstdc++) for x86_64-linux-musl, as a native, non-bootstrapped
# build by the gcc among the inputs (configure_gcc in gcc-tree.sh says what is left out). The
# store's musl is the compiler's sysroot: headers in $musl/include, start files and libc in
# $musl/lib. Everything it links is static (see --with-specs below), as the musl here is static
# only.
. "$(builder_file gcc-tree.sh)"
unpack_gcc_tree
# the loader names behind -static's absence point into the store, not at /lib
sed -i "s|\"/lib/ld-musl-|\"$musl/lib/ld-musl-|" "$src/gcc/config/i386/linux64.h"
enter_gcc_build
# Links are static unless -shared asks otherwise, or -nostdlib says the caller names every file
# linked (as glibc's build does for its own dynamic programs).
# $optimize is for the runtime libraries (libgcc, libstdc++), compiled by the new gcc.
configure_gcc --target=x86_64-pc-linux-musl --with-sysroot="$musl" --disable-shared \
    --with-specs='%{!shared:%{!static:%{!nostdlib:-static}}}'
make -j"$NIX_BUILD_CORES" MAKEINFO=true CFLAGS_FOR_TARGET="$optimize" \
    CXXFLAGS_FOR_TARGET="$optimize" all
install_gcc
