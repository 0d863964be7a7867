#!/bin/sh
# Build the stage-0 seed inside the sandbox. Run by bootstrap.seed.host_build with /build as the
# working directory holding src/{tcc,musl,busybox,make} (pristine, unpacked), patches/,
# linux-headers/ (installed UAPI headers), hostbin/ (links to host tools that /etc/alternatives
# would hide) and this script. The seed tree is left in out/seed, which bootstrap.seed.archive
# writes. Paths below /build are fixed, so nothing that ends up in the seed depends on where
# the host keeps its files.
#
# Environment: HOST_CC (the host's C compiler, builds tcc0 only), MAX_ROUNDS (tcc rounds allowed
# to reach the fixpoint), JOBS (parallel make jobs).
set -eu
: "${HOST_CC:?}" "${MAX_ROUNDS:?}" "${JOBS:=1}"
B=/build
PREFIX=/seed
W=$B/work
OUT=$B/out/seed
mkdir -p "$W" "$B/out"

stamp() { date +%s%N; }
step_start=$(stamp)
step_done() { # print the wall time since the previous step in a line bootstrap.seed parses
	now=$(stamp)
	ms=$(((now - step_start) / 1000000))
	printf 'STEP %d.%03d %s\n' $((ms / 1000)) $((ms % 1000)) "$1"
	step_start=$(stamp)
}
quiet() { # quiet LOG CMD...: run CMD with output to LOG; show the log's tail on failure
	log=$1; shift
	if ! "$@" > "$log" 2>&1; then
		tail -n 40 "$log"; echo "FAILED: $*"; exit 1
	fi
}

# --- sources: apply our patches ---------------------------------------------------------------
cd $B/src
patch -p1 -s < $B/patches/tcc-seed.patch
(cd musl && patch -p1 -s < $B/patches/musl-tcc.patch && rm -rf src/complex src/math/x86_64 src/fenv/x86_64)
(cd make && patch -p1 -s < $B/patches/make-seed.patch)
(cd busybox && patch -p1 -s < $B/patches/busybox-seed.patch)
step_done prepare

TCC_CONF="--prefix=$PREFIX --config-musl --sysincludepaths={B}/include:{B}/../../include \
--libpaths={B}/..:{B} --crtprefix={B}/.. --elfinterp=/lib/ld-musl-x86_64.so.1"

# --- round 0: the host compiler builds tcc0 ----------------------------------------------------
mkdir $W/obj0 && cd $W/obj0
quiet configure.log ../../src/tcc/configure --cc="$HOST_CC" $TCC_CONF
quiet make.log make tcc
step_done "tcc0 (by $HOST_CC)"

# --- round k: tcc(k-1) builds musl, libtcc1 and a static tcc(k) into $W/s<k>$PREFIX ---------
round() {
	k=$1; prev=$2
	root=$W/s$k$PREFIX; lib=$root/lib/tcc
	mkdir -p $lib/include $root/bin
	cp $B/src/tcc/include/*.h $B/src/tcc/tcclib.h $lib/include/
	cp -a $B/src/musl $W/musl$k && cd $W/musl$k
	quiet configure.log ./configure --target=x86_64-linux-musl --prefix=$PREFIX --disable-shared \
		CC="$prev -B$lib" AR="$prev -ar" RANLIB=true
	quiet make.log make -j$JOBS
	quiet install.log make install DESTDIR=$W/s$k
	step_done "musl round $k"
	mkdir $W/obj$k && cd $W/obj$k
	quiet configure.log ../../src/tcc/configure --cc="$prev -B$lib -static" --ar="$prev -ar" $TCC_CONF
	quiet lib.log make -C lib XTCC="$prev -B$lib" XAR="$prev -ar" XFLAGS="-I$W/obj$k"
	cp libtcc1.a $lib/
	for o in bcheck.o bt-exe.o bt-log.o; do [ ! -f $o ] || cp $o $lib/; done
	quiet make.log make tcc
	cp tcc $root/bin/tcc
	step_done "libtcc1+tcc round $k"
}

prev=$W/obj0/tcc
k=1
while :; do
	round $k $prev
	prev=$W/s$k$PREFIX/bin/tcc
	if [ $k -ge 2 ] && diff -r $W/s$((k - 1)) $W/s$k > $W/fixpoint-$k.diff; then
		echo "FIXPOINT round $k"
		break
	fi
	if [ $k -ge $MAX_ROUNDS ]; then
		echo "NO FIXPOINT after $MAX_ROUNDS rounds: round $k differs from round $((k - 1)):"
		head -n 20 $W/fixpoint-$k.diff
		exit 3
	fi
	k=$((k + 1))
done
cp -a $W/s$k$PREFIX $OUT
cp -a $B/linux-headers/include/. $OUT/include/
step_done "assemble tcc+musl"

# --- tools around the seed tcc ---------------------------------------------------------------
# tcc-cc: tcc as a Makefile calls a C compiler (stages/builders/tcc-cc.in, pinned like a patch).
mkdir -p $W/bin
sed -e "s|@SHELL@|/bin/sh|" -e "s|@TCC@|$OUT/bin/tcc -B$OUT/lib/tcc|" $B/patches/tcc-cc.in > $W/bin/tcc-cc
# tcc-ar: tcc -ar, which cannot create an empty archive; that one is written directly.
cat > $W/bin/tcc-ar <<EOS
#!/bin/sh
[ \$# -gt 2 ] || { printf '!<arch>\\n' > "\$2"; exit 0; }
exec $OUT/bin/tcc -ar "\$@"
EOS
chmod +x $W/bin/tcc-cc $W/bin/tcc-ar
CC=$W/bin/tcc-cc

# --- GNU make 4.3, by the seed tcc: no configure; config.h comes from make-seed.patch ----------
cd $B/src/make
cp lib/glob.in.h lib/glob.h
cp lib/fnmatch.in.h lib/fnmatch.h
MAKE_SOURCES="ar arscan commands default dir expand file function getopt getopt1 guile hash
implicit job load loadapi main misc output posixos read remake remote-stub rule signame
strcache variable version vpath"
objects=
for name in $MAKE_SOURCES; do objects="$objects src/$name.o"; done
objects="$objects lib/glob.o lib/fnmatch.o"
for object in $objects; do
	quiet ${object%.o}.log $CC -DHAVE_CONFIG_H -DLOCALEDIR=\"$PREFIX/share/locale\" \
		-DLIBDIR=\"$PREFIX/lib\" -DINCLUDEDIR=\"$PREFIX/include\" -Isrc -Ilib \
		-c ${object%.o}.c -o $object
done
quiet link.log $CC -o make $objects
cp make $OUT/bin/make
step_done "make (by seed tcc)"

# --- busybox 1.35.0, by the seed tcc and the seed make -----------------------------------------
cd $B/src/busybox
export KCONFIG_NOTIMESTAMP=1
# busybox's headers expect a GNU C compiler; tcc passes as gcc 2.95
printf '#!/bin/sh\nexec %s -D__GNUC__=2 -D__GNUC_MINOR__=95 "$@"\n' $CC > $W/bin/bb-cc
chmod +x $W/bin/bb-cc
BB_MAKE="$OUT/bin/make CC=$W/bin/bb-cc HOSTCC=$W/bin/bb-cc AR=$W/bin/tcc-ar SKIP_STRIP=y"
quiet defconfig.log $BB_MAKE defconfig
# tcc does not fold 'if (ENABLE_X && ...)' away, so these two must exist to link
sed -i -e 's/^# CONFIG_STATIC is not set/CONFIG_STATIC=y/' \
	-e 's/^# CONFIG_FEATURE_CLEAN_UP is not set/CONFIG_FEATURE_CLEAN_UP=y/' \
	-e 's/^# CONFIG_FEATURE_SH_NOFORK is not set/CONFIG_FEATURE_SH_NOFORK=y/' \
	-e 's/^# CONFIG_FEATURE_SUN_LABEL is not set/CONFIG_FEATURE_SUN_LABEL=y/' .config
quiet oldconfig.log $BB_MAKE oldconfig < /dev/null
quiet build.log $BB_MAKE -j$JOBS busybox
cp busybox $OUT/bin/busybox
# relative applet links, so the seed's bin/ alone is a usable PATH (sh, tar, patch, sed...)
for applet in $($OUT/bin/busybox --list); do
	[ -e $OUT/bin/$applet ] || ln -s busybox $OUT/bin/$applet
done
step_done "busybox (by seed tcc)"
