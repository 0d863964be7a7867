# gawk 5.2.1 from Debian's orig tarball, which lacks the manual's sources: skip doc/ and
# awklib/ (its example programs are extracted from the manual).
sed -i 's/^SUBDIRS = \(.*\) doc awklib /SUBDIRS = \1 /' Makefile.in
