# musl 1.2.3 again, compiled by gcc 3.4.6 (the tcc-built one needs tcc's __va_arg helpers).
unpack_sources
cd musl-1.2.3
apply_patches
./configure --target=x86_64-linux-musl --prefix="$out" --disable-shared CC=gcc AR=ar RANLIB=ranlib
make -j"$NIX_BUILD_CORES"
make install
