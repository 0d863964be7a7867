# Linux 6.1.176 UAPI headers, taken from the seed. The seed installed them from the pinned Linux
# orig tarball (bootstrap/seed_build/uapi.py, checked against Debian's linux-libc-dev), next to
# musl's headers; here they get a store path of their own. scsi/ is shared: musl owns scsi.h,
# scsi_ioctl.h and sg.h, the kernel the rest.
mkdir -p "$out/include"
for dir in asm asm-generic drm linux misc mtd rdma sound video xen; do
    cp -R "$seed/include/$dir" "$out/include/"
done
mkdir "$out/include/scsi"
for header in "$seed"/include/scsi/*; do
    case "${header##*/}" in scsi.h | scsi_ioctl.h | sg.h) ;; *) cp -R "$header" "$out/include/scsi/" ;; esac
done
