# The prelude every package builds with: `<shell>/bin/sh -e prelude.sh`, in /build.
#
# The environment comes from the derivation: $srcs (downloaded archives), $patches, $inputs
# (store paths of what the package is built with; their bin/ is on $PATH), $SHELL (the
# builder's own shell), $out (and other outputs), $builderScript, $BOOTSTRAP_CORES.
# The package's builder script is sourced last and uses the helpers below.

umask 022
export CONFIG_SHELL="$SHELL"

# Unpack every source archive into the current directory; plain files are copied.
unpack_sources() {
    for src in $srcs; do
        echo "unpacking ${src##*/}"
        case "$src" in
            *.tar.gz | *.tgz) tar -xzf "$src" ;;
            *.tar.bz2) tar -xjf "$src" ;;
            *.tar.xz) tar -xJf "$src" ;;
            *.tar) tar -xf "$src" ;;
            *) cp "$src" "./${src#*-}" ;;
        esac
    done
}

# Apply each patch in $patches with -p1 in the current directory; shell scripts are run.
apply_patches() {
    for p in $patches; do
        echo "applying ${p#*-}"
        case "$p" in
            *.sh) sh -e "$p" ;;
            *) patch -p1 --no-backup-if-mismatch < "$p" ;;
        esac
    done
}

echo "building $name with $(basename "$builderScript" | cut -d- -f2-) on $BOOTSTRAP_CORES cores"
. "$builderScript"
