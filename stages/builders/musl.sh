# musl 1.2.3, static only, compiled by the seed's tcc (see patches/musl-tcc.patch for why each
# change is needed; tcc has no _Complex and no x87/SSE asm constraints, hence the removals).
unpack_sources
cd musl-1.2.3
apply_patches
rm -rf src/complex src/math/x86_64 src/fenv/x86_64
./configure --target=x86_64-linux-musl --prefix="$out" --disable-shared \
    CC="tcc -B$seed/lib/tcc" AR="tcc -ar" RANLIB=true
make -j"$NIX_BUILD_CORES"
make install
