# busybox 1.35.0 (defconfig, static) by the stage-1 tcc and make, with relative applet links.
# busybox's headers expect a GNU C compiler: tcc passes as gcc 2.95. tcc does not fold
# `if (ENABLE_X && ...)` away, so a few features must be enabled for busybox to link.
unpack_sources
cd busybox-1.35.0
apply_patches
export KCONFIG_NOTIMESTAMP=1
printf '#!%s\nexec tcc-cc -D__GNUC__=2 -D__GNUC_MINOR__=95 "$@"\n' "$SHELL" > bb-cc
chmod +x bb-cc
bb_make() { make CC="$PWD/bb-cc" HOSTCC="$PWD/bb-cc" AR=tcc-ar SKIP_STRIP=y "$@"; }
bb_make defconfig > defconfig.log
sed -i -e 's/^# CONFIG_STATIC is not set/CONFIG_STATIC=y/' \
    -e 's/^# CONFIG_FEATURE_CLEAN_UP is not set/CONFIG_FEATURE_CLEAN_UP=y/' \
    -e 's/^# CONFIG_FEATURE_SH_NOFORK is not set/CONFIG_FEATURE_SH_NOFORK=y/' \
    -e 's/^# CONFIG_FEATURE_SUN_LABEL is not set/CONFIG_FEATURE_SUN_LABEL=y/' .config
bb_make oldconfig < /dev/null > oldconfig.log
bb_make -j"$NIX_BUILD_CORES" busybox
mkdir -p "$out/bin"
cp busybox "$out/bin/busybox"
for applet in $("$out/bin/busybox" --list); do
    ln -s busybox "$out/bin/$applet"
done
