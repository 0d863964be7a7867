# tcc 0.9.27 against the store's musl: configured with absolute store paths for musl and the Linux
# headers, built once by the seed's tcc, then again by itself, so the installed tcc is compiled
# by tcc and linked against the store's musl. Also installs tcc-cc and tcc-ar, the wrappers that
# let Makefiles written for gcc drive tcc.
mkdir tcc # the orig tarball has no top directory
(cd tcc && unpack_sources)
apply_patches

configure_tcc() { # configure_tcc CC: configure ./tcc for $out with CC
    ../tcc/configure --cc="$1" --ar="tcc -ar" --prefix="$out" --config-musl \
        --sysincludepaths="{B}/include:$musl/include:$linux_headers/include" \
        --libpaths="$musl/lib:{B}" --crtprefix="$musl/lib" \
        --elfinterp="$musl/lib/ld-musl-x86_64.so.1"
}

install_tcc() { # install_tcc DIR: the compiler, its runtime library and its own headers
    mkdir -p "$out/bin" "$out/lib/tcc/include"
    cp "$1/libtcc1.a" "$out/lib/tcc/"
    cp ../tcc/include/*.h ../tcc/tcclib.h "$out/lib/tcc/include/"
    cp "$1/tcc" "$out/bin/tcc.new"
    mv "$out/bin/tcc.new" "$out/bin/tcc"
}

build_round() { # build_round N CC: build tcc and libtcc1.a in objN with compiler CC
    mkdir "obj$1"
    cd "obj$1"
    configure_tcc "$2 -static"
    make -C lib XTCC="$2" XAR="tcc -ar" XFLAGS="-I$PWD"
    make tcc
    install_tcc .
    cd ..
}

build_round 1 "tcc -B$seed/lib/tcc"
build_round 2 "$out/bin/tcc"

# tcc-cc: tcc as a Makefile calls a C compiler (see the template's comments).
sed -e "s|@SHELL@|$SHELL|" -e "s|@TCC@|$out/bin/tcc|" "$(builder_file tcc-cc.in)" > "$out/bin/tcc-cc"
# tcc-ar: tcc -ar, which cannot create an empty archive; that one is written directly.
cat > "$out/bin/tcc-ar" <<EOS
#!$SHELL
[ \$# -gt 2 ] || { printf '!<arch>\\n' > "\$2"; exit 0; }
exec $out/bin/tcc -ar "\$@"
EOS
chmod +x "$out/bin/tcc-cc" "$out/bin/tcc-ar"
