# gcc (C and C++) for x86_64-linux-gnu with the store's glibc as its sysroot, built by the gcc
# among the inputs, which targets musl. So this is a cross build in gcc's terms: the compilers
# themselves are static musl programs (they need nothing at run time), while everything they
# compile and link is for glibc, starting with their own runtime libraries: libgcc (with
# libgcc_s.so) and libstdc++ (static and shared). binutils among the inputs is their assembler
# and linker (configure_gcc in gcc-tree.sh says what is left out). Programs it links get the
# store's glibc loader as their interpreter; the RUNPATH of its own shared libraries is the
# wrapper's job (the toolchain's wrappers).
triple=x86_64-pc-linux-gnu
. "$(builder_file gcc-tree.sh)"
unpack_gcc_tree
# the loader that dynamic programs name is the store's glibc's, not /lib64's
sed -i "s|\"/lib64/ld-linux-x86-64.so.2\"|\"$glibc/lib/ld-linux-x86-64.so.2\"|" \
    "$src/gcc/config/i386/linux64.h"
enter_gcc_build
# a cross build looks for the target's binutils as $triple-ar and so on: name them
for tool in ar nm objdump ranlib readelf strip; do
    export "$(echo "$tool" | tr a-z A-Z)_FOR_TARGET=$binutils/bin/$tool"
done
export AS_FOR_TARGET="$binutils/bin/as" LD_FOR_TARGET="$binutils/bin/ld"
configure_gcc --target="$triple" --with-sysroot="$glibc" --enable-shared --enable-__cxa_atexit
make -j"$NIX_BUILD_CORES" MAKEINFO=true CFLAGS_FOR_TARGET="$optimize" \
    CXXFLAGS_FOR_TARGET="$optimize -frandom-seed=bootstrap" all
install_gcc
# a cross build installs its drivers as $triple-gcc and so on; give them their usual names too
for tool in gcc g++ cpp gcc-ar gcc-nm gcc-ranlib; do
    [ -e "$out/bin/$tool" ] || ln -s "$triple-$tool" "$out/bin/$tool"
done
