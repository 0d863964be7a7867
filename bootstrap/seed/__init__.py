"""The stage-0 seed, a small static toolchain (tcc, musl, busybox, GNU make) pinned by hash:
its manifest (`manifest`), its build from source on the host (`host_build`, with `build.sh`
and the Linux UAPI headers of `uapi`), its deterministic archive (`archive`), checking and
importing it (`verify`) and diverse double-compiling (`ddc`)."""
