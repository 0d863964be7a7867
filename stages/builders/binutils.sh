# binutils 2.16.1 (as, ld, ar, nm, objdump, ...) by the stage-1 tcc, static against the store's
# musl. The top-level configure is autoconf 2.13: tools are passed in the environment. No docs
# (no makeinfo or pod2man here), no gprof (it needs them), no NLS, no -g. Archives are made
# deterministic by patches/binutils-2.16.1-deterministic-ar.patch.
unpack_sources
(cd binutils-h8300-hms-2.16.1 && apply_patches)
mkdir build
cd build
CC=tcc-cc AR=tcc-ar RANLIB=true CFLAGS= MAKEINFO=true \
    ../binutils-h8300-hms-2.16.1/configure --prefix="$out" --build=x86_64-pc-linux-gnu \
    --host=x86_64-pc-linux-gnu --target=x86_64-pc-linux-gnu --disable-nls --disable-werror \
    --disable-shared
make MAKEINFO=true all-binutils all-gas all-ld
make MAKEINFO=true install-binutils install-gas install-ld
rm -rf "$out/info" "$out/man"
