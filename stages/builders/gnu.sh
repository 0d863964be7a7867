# A GNU-style package: unpack the one source tree, apply the patches, then
# `./configure --prefix=$out $configureFlags`, `make $makeFlags`, `make $makeFlags install`,
# then `#!/bin/sh` scripts of $out pointed at the builder's shell.
# Manuals (info, man) are left out: nothing in the chain reads them; so are the installed files
# listed in $dropFiles (relative to $out).
unpack_sources
cd "$(ls -d */ | head -n 1)"
apply_patches
# shellcheck disable=SC2086 # the flag lists are word lists
./configure --prefix="$out" $configureFlags > configure.log || { tail -n 60 config.log; exit 1; }
# shellcheck disable=SC2086
make -j"$NIX_BUILD_CORES" $makeFlags
# shellcheck disable=SC2086
make $makeFlags install
# final when the builder exits (as on a Nix builder, where no fix-up follows): installed scripts
# (bison's yacc) run the builder's shell, not /bin/sh
patch_shebangs "$out"
rm -rf "$out/share/info" "$out/share/man"
for file in ${dropFiles:-}; do
    rm -r "${out:?}/$file"
done
