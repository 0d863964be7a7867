# glibc for x86_64-linux-gnu, by the gcc among the inputs, whose own libc is musl: glibc is
# compiled against its own headers and the Linux UAPI headers only, and links its programs
# itself (-nostdlib), so none of musl reaches it. Everything is installed under $out: headers in
# include/ (with the Linux UAPI headers beside glibc's, so that include/ alone is a complete
# system header directory), the libraries, start files and the dynamic loader in lib/ (so the
# loader's store path is what programs name as their interpreter).
unpack_sources
src=$(echo glibc-[0-9]*)
(cd "$src" && apply_patches)
# Debian's orig tarball has no manual/ (the manual is not DFSG-free): no such subdirectory
sed -i 's/ wctype manual shadow / wctype shadow /' "$src/Makeconfig"
mkdir build
cd build
printf 'slibdir=%s/lib\nrtlddir=%s/lib\n' "$out" "$out" > configparms
# the build system is musl's: configure as a cross build, which runs none of its test programs.
# C++ is only for glibc's tests, whose helpers link libgcc_s, which a static musl gcc lacks:
# configure is told that linking C++ fails, so it leaves C++ out
libc_cv_cxx_link_ok=no CC=gcc BUILD_CC=gcc CFLAGS="$optimize" MAKEINFO=true \
    "../$src/configure" --prefix="$out" --build=x86_64-pc-linux-musl \
    --host=x86_64-pc-linux-gnu --with-headers="$linux_headers/include" --enable-kernel=3.2 \
    --disable-werror --disable-profile --disable-nscd --without-selinux --without-gd \
    > configure.log || { tail -n 60 config.log; exit 1; }
make -j"$NIX_BUILD_CORES" MAKEINFO=true
make MAKEINFO=true install
rm -rf "$out/share/info"
cp -R "$linux_headers/include/." "$out/include/"
# the conventional x86-64 name of the library directory, where clang looks for the loader
ln -s lib "$out/lib64"
# the scripts glibc installs for bash or Perl (ldd, sotruss, memusage, xtrace, tzselect, mtrace):
# the chain has neither, so they are left out
for script in ldd sotruss memusage xtrace tzselect mtrace; do
    rm -f "$out/bin/$script"
done
