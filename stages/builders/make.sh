# GNU make 4.3 by the stage-1 tcc. The orig tarball has no configure script: src/config.h comes
# from patches/make-seed.patch, and the POSIX sources are compiled one by one, with gnulib's
# glob and fnmatch (make needs GLOB_ALTDIRFUNC, which musl's glob lacks).
unpack_sources
cd make-dfsg-4.3
apply_patches
cp lib/glob.in.h lib/glob.h
cp lib/fnmatch.in.h lib/fnmatch.h
objects="lib/glob.o lib/fnmatch.o"
for name in ar arscan commands default dir expand file function getopt getopt1 guile hash \
    implicit job load loadapi main misc output posixos read remake remote-stub rule signame \
    strcache variable version vpath; do
    objects="$objects src/$name.o"
done
for object in $objects; do
    tcc -static -DHAVE_CONFIG_H -DLOCALEDIR=\"$out/share/locale\" -DLIBDIR=\"$out/lib\" \
        -DINCLUDEDIR=\"$out/include\" -Isrc -Ilib -c "${object%.o}.c" -o "$object"
done
mkdir -p "$out/bin"
tcc -static -o "$out/bin/make" $objects
