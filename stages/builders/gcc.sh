# gcc 3.4.6 with binutils 2.16.1 as its assembler and linker, compiled by $CC (tcc-cc for
# gcc-core, the cc-musl wrapper for gcc). Its built-in header and start-file paths name the musl
# among the inputs instead of /usr/include, /lib and /usr/lib, its fallback program prefixes are
# its own, and it links statically unless asked for a shared object (the musl here is static
# only). With $withLibstdcxx set, libstdc++ is built too, on its generic OS and locale layers
# (its gnu-linux layer is glibc's), without precompiled headers (they are not reproducible). No fixincludes (no system headers to fix), no docs.
unpack_sources
cd gcc-h8300-hms-3.4.6+dfsg2
apply_patches
sed -i "s|#define STANDARD_INCLUDE_DIR \"/usr/include\"|#define STANDARD_INCLUDE_DIR \"$musl/include\"|" \
    gcc/cppdefault.c
sed -i -e "s|\"/lib/\";|\"$musl/lib/\";|" -e "s|\"/usr/lib/\";|\"$musl/lib/\";|" \
    -e "s|\"/usr/libexec/gcc/\";|\"$out/libexec/gcc/\";|" -e "s|\"/usr/lib/gcc/\";|\"$out/lib/gcc/\";|" \
    gcc/gcc.c
sed -i -e "s|/lib64/ld-linux-x86-64.so.2|$musl/lib/ld-musl-x86_64.so.1|" \
    -e "s|/lib/ld-linux.so.2|$musl/lib/ld-musl-i386.so.1|" gcc/config/i386/linux64.h
printf '#undef DRIVER_SELF_SPECS\n#define DRIVER_SELF_SPECS "%%{!shared:%%{!static:-static}}"\n' \
    >> gcc/config/i386/linux64.h
sed -i -e "s|^NATIVE_SYSTEM_HEADER_DIR = .*|NATIVE_SYSTEM_HEADER_DIR = $musl/include|" \
    -e "s|^STMP_FIXINC = .*|STMP_FIXINC =|" -e "s|^BUILD_INFO = .*|BUILD_INFO =|" \
    -e "s|^GENERATED_MANPAGES = .*|GENERATED_MANPAGES =|" gcc/Makefile.in
sed -i 's|os_include_dir="os/gnu-linux"|os_include_dir="os/generic"|' libstdc++-v3/configure.host
cd ..
mkdir build
cd build
AR=ar RANLIB=ranlib MAKEINFO=true \
    ../gcc-h8300-hms-3.4.6+dfsg2/configure --prefix="$out" --build=x86_64-pc-linux-gnu \
    --host=x86_64-pc-linux-gnu --target=x86_64-pc-linux-gnu \
    --with-as="$binutils/bin/as" --with-ld="$binutils/bin/ld" --with-local-prefix="$linux_headers" \
    --enable-languages=c,c++ --disable-nls --disable-shared --disable-multilib \
    --enable-threads=posix --enable-clocale=generic --disable-libstdcxx-pch
# without fixincludes, gcc's limits.h still wants the syslimits.h that step would install
mkdir -p gcc/include
cp ../gcc-h8300-hms-3.4.6+dfsg2/gcc/gsyslimits.h gcc/include/syslimits.h
make -j"$NIX_BUILD_CORES" MAKEINFO=true all-gcc
# `install` minus the man pages and info files (their sources are not in the tarball)
make -C gcc MAKEINFO=true install-common install-headers install-libgcc install-cpp \
    lang.install-normal install-driver
rm "$out/bin/gccbug" # a bug-report mailer
if [ -n "${withLibstdcxx:-}" ]; then
    # names in anonymous namespaces carry a random number unless -frandom-seed fixes it
    for goal in all install; do
        make MAKEINFO=true CFLAGS_FOR_TARGET=-O2 \
            CXXFLAGS_FOR_TARGET="-O2 -frandom-seed=bootstrap" $goal-target-libstdc++-v3
    done
fi
