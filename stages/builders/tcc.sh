# tcc 0.9.27 against the store's musl: configured with absolute store paths for musl and the Linux
# headers, built once by the seed's tcc, then again by itself, so the installed tcc is compiled
# by tcc and linked against the store's musl. Also installs tcc-cc and tcc-ar, the wrappers that
# let Makefiles written for gcc drive tcc.
seed=$(input seed)
musl=$(input musl)
headers=$(input linux-headers)
mkdir tcc # the orig tarball has no top directory
(cd tcc && unpack_sources)
apply_patches

configure_tcc() { # configure_tcc CC: configure ./tcc for $out with CC
    ../tcc/configure --cc="$1" --ar="tcc -ar" --prefix="$out" --config-musl \
        --sysincludepaths="{B}/include:$musl/include:$headers/include" \
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

# tcc-cc: tcc as a Makefile calls a C compiler. -Wp,-MD,F becomes -MD -MF F; a header given as
# input is compiled as C; linker options tcc lacks (they only affect layout or diagnostics) are
# dropped; tcc does not rescan archives, so those inside --start-group are given twice more.
cat > "$out/bin/tcc-cc" <<EOS
#!$SHELL
group= archives= raw=
for a do
	shift
	case \$a in
	-include) set -- "\$@" "\$a"; raw=1; continue ;;
	*.h) if [ -n "\$raw" ]; then set -- "\$@" "\$a"; else set -- "\$@" -x c "\$a"; fi ;;
	*.a) set -- "\$@" "\$a"; [ -z "\$group" ] || archives="\$archives \$a" ;;
	-Wp,-MD,*) set -- "\$@" -MD -MF "\${a#-Wp,-MD,}" ;;
	-Wl,--start-group) group=1 ;;
	-Wl,--end-group) set -- "\$@" \$archives \$archives; group= archives= ;;
	-Wl,--sort-common|-Wl,--sort-section,*|-Wl,--gc-sections|-Wl,--warn-common|-Wl,-Map,*) ;;
	-Wl,--verbose|-Wl,-O1|-Wl,--as-needed|-Wl,--no-as-needed) ;;
	*) set -- "\$@" "\$a" ;;
	esac
	raw=
done
exec $out/bin/tcc -static "\$@"
EOS
# tcc-ar: tcc -ar, which cannot create an empty archive; that one is written directly.
cat > "$out/bin/tcc-ar" <<EOS
#!$SHELL
[ \$# -gt 2 ] || { printf '!<arch>\\n' > "\$2"; exit 0; }
exec $out/bin/tcc -ar "\$@"
EOS
chmod +x "$out/bin/tcc-cc" "$out/bin/tcc-ar"
