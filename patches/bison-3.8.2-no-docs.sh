# bison 3.8.2 from Debian's DFSG tarball, whose doc/bison.texi is removed (GFDL): build and
# install the program and its skeletons without the manual and the examples the Makefile
# extracts from it.
sed -i -e 's/^INFO_DEPS = .*/INFO_DEPS =/' -e 's/^all-local: .*/all-local:/' \
    -e 's/^\(mfcalc\|rpcalc\|simple\)_extracted = .*/\1_extracted =/' \
    -e 's/^\(calcxx\|calcxx_sources\)_extracted = \\$/\1_extracted =\nunused_\1 = \\/' Makefile.in
