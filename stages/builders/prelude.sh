# The prelude every package builds with: `<shell>/bin/sh -e prelude.sh`, in /build.
#
# The environment comes from the derivation: $srcs (downloaded archives), $patches,
# $builderFiles (more files from stages/builders/), one variable per input named after it
# holding its store path ($musl, $linux_headers; their bin/ is on $PATH), $SHELL (the
# builder's own shell), $out (and other outputs), $builderScript, $NIX_BUILD_CORES.
# The package's builder script is sourced last and uses the helpers below.

umask 022
export CONFIG_SHELL="$SHELL"

# GNU make runs recipes with the builder's own shell, not whatever /bin/sh is (the setting
# reaches recursive makes through MAKEFLAGS).
make() { command make SHELL="$SHELL" "$@"; }

# Point `#!/bin/sh` scripts under the given directories at $SHELL, as Nix's patchShebangs does.
patch_shebangs() {
    find "$@" -type f -perm -u+x | while read -r file; do
        case "$(head -c 16 "$file")" in
            "#!/bin/sh"* | "#! /bin/sh"*) sed -i "1s|^#! */bin/sh|#!$SHELL|" "$file" ;;
        esac
    done
}

# Unpack every source archive into the current directory (plain files are copied), and patch
# the shebangs of the scripts they hold.
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
    patch_shebangs .
}

# Print the store path of the file NAME the recipe lists in `files` (from stages/builders/).
builder_file() {
    for f in $builderFiles; do
        case "$f" in */*-"$1") echo "$f"; return 0 ;; esac
    done
    echo "no builder file named $1 in: $builderFiles" >&2
    return 1
}

# Apply each patch in $patches with -p1 in the current directory; shell scripts are run.
apply_patches() {
    for p in $patches; do
        echo "applying ${p#*-}"
        case "$p" in
            *.sh) sh -e "$p" ;;
            *) patch -p1 -i "$p" ;;
        esac
    done
}

echo "building $name with $(basename "$builderScript" | cut -d- -f2-) on $NIX_BUILD_CORES cores"
. "$builderScript"
