# A GNU-style package: unpack the one source tree, apply the patches, then
# `./configure --prefix=$out $configureFlags`, `make $makeFlags`, `make $makeFlags install`.
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
rm -rf "$out/share/info" "$out/share/man"
for file in ${dropFiles:-}; do
    rm -r "${out:?}/$file"
done
