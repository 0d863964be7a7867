# gcc's source tree as both gcc builders need it: gcc unpacked (from inside Debian's orig tarball,
# which wraps the upstream one) with gmp, mpfr and mpc moved into it, so gcc builds them
# in-tree. Sets $src to the tree's directory.
unpack_gcc_tree() {
    unpack_sources
    for inner in gcc-*/gcc-*.tar.xz; do
        [ -f "$inner" ] || continue
        tar -xJf "$inner"
        rm -r "${inner%/*}"
    done
    src=$(echo gcc-[0-9]*)
    for lib in gmp mpfr mpc; do
        mv "$lib"-[0-9]* "$src/$lib"
    done
    # Debian's gmp orig tarball has no doc/ (the manual is not DFSG-free)
    sed -i 's| doc/Makefile||' "$src/gmp/configure"
    sed -i 's|^\(SUBDIRS = .*\) doc$|\1|' "$src/gmp/Makefile.in"
}
