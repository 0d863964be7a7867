"""Host path strings the chain's programs may name, with the reason for each group.

These are defaults compiled into the programs (search paths, /bin/sh for system(), ports'
conventions), never load-time dependencies: the static programs have no interpreter and no
RUNPATH, and the dynamic ones (stage 6 and later) load only from the store. `bootstrap audit
hermetic` accepts exactly these strings for the packages that declare them, and nothing else.
"""

# musl, linked into every static program: system()/popen() run /bin/sh (in the sandbox, the
# builder's own shell), execvp() searches this default PATH when none is set, and localtime()
# looks for zone files under /usr/share/zoneinfo/ when TZ names one.
MUSL_STATIC = ("/bin/sh", "/usr/local/bin", "/bin", "/usr/bin", "/usr/share/zoneinfo/")

# GNU make's default search paths for `include` and `-lNAME` prerequisites.
MAKE_SEARCH = ("/usr/gnu/include", "/usr/local/include", "/usr/include", "/lib", "/usr/lib")

# busybox's applets name the files of a system they may administer (init, login, modules,
# firmware, man pages, udhcpc's script, shells for `chsh`-like checks).
BUSYBOX_APPLETS = (
    "/usr/bin/",
    "/usr/sbin/",
    "/sbin",
    "/usr/sbin",
    "/bin/false",
    "/bin/login",
    "/bin/csh",
    "/sbin/init",
    "/usr/man",
    "/usr/share/man",
    "/lib/modules",
    "/lib/firmware",
    "/usr/share/udhcpc/default.script",
)

# the seed's tcc was configured for a relocatable tree, so its default interpreter (used only
# without -static, which the chain never does) is the conventional musl loader path.
SEED_TCC = ("/lib/ld-musl-x86_64.so.1",)

SEED = MUSL_STATIC + MAKE_SEARCH + BUSYBOX_APPLETS + SEED_TCC

# libiberty's make_temp_file: after $TMPDIR (set in every build), it tries /usr/tmp, /var/tmp.
LIBIBERTY_TMP = ("/usr/tmp",)

# binutils 2.16.1: ld's default library directories and /etc/ld.so.conf, searched only for
# libraries not found through -L (cc-musl always passes -L and -static), and bfd's default ELF
# interpreters, used only for dynamic links without -dynamic-linker (the chain makes none).
BINUTILS_DEFAULTS = (
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/usr/local/lib64",
    "/etc/ld.so.conf",
    "/lib/ld64.so.1",
    "/usr/lib/libc.so.1",
)

# binutils 2.40 adds: ld's default library directories of its 32-bit and x32 emulations, bfd's
# default x32 interpreter, and the directories where objdump, readelf and strip look for
# separate debug info.
BINUTILS_240_DEFAULTS = (
    *BINUTILS_DEFAULTS,
    "/lib32",
    "/libx32",
    "/usr/lib32",
    "/usr/libx32",
    "/usr/local/lib32",
    "/usr/local/libx32",
    "/lib/ldx32.so.1",
    "/usr/lib/debug",
    "/usr/lib/debug/",
    "/usr/lib/debug/usr",
    "/usr/lib/debug/usr/",
    "/usr/lib64/debug/",
    "/usr/lib64/debug/usr",
)

# gcc 10 and later with the store's musl as --with-sysroot: the start-file, library and header
# directories it names (/lib/, /usr/lib/, /usr/local/include) are searched under that
# sysroot, never on the host.
GCC_SYSROOT_RELATIVE = ("/lib/", "/usr/lib/", "/usr/local/include")

# gcc's driver (targeting musl here): its specs name the loader of every x86 libc behind
# -mglibc, -muclibc, -m32 and -mx32. The compiler links statically unless told otherwise, and
# with the store musl's loader when it does not.
GCC_DRIVER_LOADERS = (
    "/lib64/ld-linux-x86-64.so.2",
    "/lib/ld-linux.so.2",
    "/libx32/ld-linux-x32.so.2",
    "/lib/ld-uClibc.so.0",
    "/lib/ld64-uClibc.so.0",
    "/lib/ldx32-uClibc.so.0",
)

# libbacktrace, linked into gcc's programs to print a backtrace when the compiler crashes, looks
# for separate debug info under /usr/lib/debug; it reads nothing there otherwise.
LIBBACKTRACE_DEBUG = ("/usr/lib/debug/", "/usr/lib/debug/.build-id/")

# gcc for glibc (stage 6): its driver's specs name the musl loaders behind -mmusl (as the
# musl-targeting gcc's name glibc's). (Its libbacktrace builds "/usr/lib/debug" in registers,
# 8 bytes per `movabs`: the audit reads such an operand as a piece of LIBBACKTRACE_DEBUG's.)
GCC_DRIVER_MUSL_LOADERS = (
    "/lib/ld-musl-i386.so.1",
    "/lib/ld-musl-x86_64.so.1",
    "/lib/ld-musl-x32.so.1",
)

# The same directories in gcc's programs compiled at -O2: libbacktrace's `/usr/lib/debug/`,
# `.debug/` and `.build-id/` are stored side by side without terminators (they are copied by
# length), and the next string is "munmap", so the audit reads the four as one.
LIBBACKTRACE_DEBUG_PACKED = ("/usr/lib/debug/.debug/.build-id/munmap",)

# Python 3.11, a static interpreter: getpath (frozen into it) joins suffixes such as
# /lib/python3.11 and /bin/python to its own prefix, and site's docstring (frozen too) names
# example /usr/local paths, as python3-config's shell code names its suffixes. In the standard
# library, cgi.py's and trace.py's comments name /usr/local paths, and platform's
# freedesktop_os_release() reads the host's os-release, the one thing it is asked about.
PYTHON_STRINGS = (
    "/lib/pythonX.X",
    "/bin/pythonFT",
    "/lib/python",
    "/lib/python/site-packages",
    "/usr/local",
    "/usr/local/lib/python2.5/site-packages",
    "/usr/local/lib/python2.5/site-packages/bar",
    "/usr/local/lib/python2.5/site-packages/foo",
    "/lib",
    "/lib/python3.11/config-",
    "/usr/local/bin/python",
    "/usr/bin/env",
    "/usr/bin.",
    "/usr/lib",
    "/usr/lib/os-release",
    "/usr/local.py",
)

# glibc: libc's system(), popen() and wordexp() run /bin/sh, execvp() and confstr(_CS_PATH)
# give /bin:/usr/bin as the default PATH, and getusershell() falls back to /bin/sh and
# /bin/csh when there is no /etc/shells. ldconfig compares directory names against the
# multilib suffixes /lib, /lib64 and /libx32 and recognises libraries by the usual x86 loader
# names; sprof looks for separate debug info under /usr/lib/debug/.
GLIBC_DEFAULTS = (
    "/bin/sh",
    "/bin",
    "/usr/bin",
    "/bin/csh",
    "/lib",
    "/lib64",
    "/libx32",
    "/lib/ld-linux-x86-64.so.2",
    "/lib/ld-linux.so.2",
    "/lib64/ld-linux-x86-64.so.2",
    "/libx32/ld-linux-x32.so.2",
    "/usr/lib/debug/",
)

# clang's driver knows the conventional layout of every OS and libc it targets: header and
# library directories, start files, gcc installations and loaders. It looks for them under the
# sysroot (the toolchain's wrappers always pass the store's glibc) and never loads them itself.
CLANG_DRIVER = (
    "/bin",
    "/lib",
    "/lib/gcc",
    "/lib/i386-gnu",
    "/lib/ld-ananas.so",
    "/lib/ld-musl-",
    "/lib/ld-musl-hexagon.so.1",
    "/lib/ld.so",
    "/lib/mips64-linux-gnu",
    "/lib/mips64el-linux-gnu",
    "/lib/powerpc-linux-gnuspe",
    "/lib32",
    "/lib64",
    "/libx32",
    "/usr",
    "/usr/",
    "/usr/avr",
    "/usr/bin/ld",
    "/usr/gcc",
    "/usr/gnu/include/c++/4.4.3",
    "/usr/include",
    "/usr/include/",
    "/usr/include/c++",
    "/usr/include/c++/4.2",
    "/usr/include/c++/5.0",
    "/usr/include/c++/v1",
    "/usr/include/g++",
    "/usr/include/w32api",
    "/usr/lib",
    "/usr/lib/",
    "/usr/lib/..",
    "/usr/lib/../",
    "/usr/lib/64",
    "/usr/lib/avr",
    "/usr/lib/crt1.o",
    "/usr/lib/crti.o",
    "/usr/lib/cuda",
    "/usr/lib/eabi",
    "/usr/lib/eabihf",
    "/usr/lib/gcc",
    "/usr/lib/gcc/",
    "/usr/lib/gcc80",
    "/usr/lib/i386",
    "/usr/lib/libcompiler_rt.a",
    "/usr/lib/libstdc++.6.dylib",
    "/usr/lib/libstdc++.dylib",
    "/usr/lib/o32",
    "/usr/lib/oabi",
    "/usr/lib/os-release",
    "/usr/lib/powerpc",
    "/usr/lib/sparc",
    "/usr/lib32",
    "/usr/lib32/crt1.o",
    "/usr/libexec/ld-elf.so.2",
    "/usr/libexec/ld.so",
    "/usr/libo32",
    "/usr/local/cuda",
    "/usr/local/cuda-",
    "/usr/local/include",
    "/usr/pkg/compiler-rt/lib",
    # at -O2, gcc keeps some of the "=/usr/lib/..." multilib strings as 16-byte constants
    # without their NUL, side by side ("=/usr/lib/eabihf", "=/usr/lib/powerp", then the start
    # of another constant), so the scan reads them run together
    "/usr/lib/eabihf=/usr/lib/powerpopenbsd",
    "/usr/lib/powerpopenbsd",
)

# libLLVM's symbolizer looks for separate debug info under /usr/lib/debug; llvm-config appends
# "/bin" and "/lib" to its own prefix (the store path it runs from).
LLVM_STRINGS = ("/usr/lib/debug", "/bin", "/lib")

# lld's ELF port has no default directories; its other ports, linked into the same program,
# know macOS (Mach-O: the library directories /usr/lib and /usr/local/lib, the dyld loader path,
# three libSystem dylibs and two daemons ld64 treats specially) and Windows (COFF: a first
# argument "/lib" makes lld-link act as lib.exe).
LLD_PORTS = (
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
    "/usr/lib/dyld",
    "/usr/lib/system/libsystem_kernel.dylib",
    "/usr/lib/system/libsystem_platform.dylib",
    "/usr/lib/system/libsystem_pthread.dylib",
    "/usr/libexec/locationd",
    "/usr/libexec/terminusd",
)

# CMake's find_* commands and generators know the conventional prefixes of many systems
# (/usr, /usr/local, X11 and OpenGL directories, /usr/lib64/ and /usr/libx32/ library
# suffixes, os-release for CMAKE_HOST_SYSTEM) and search them only under CMAKE_SYSROOT or when
# a project asks; the chain's builds find everything through their inputs.
CMAKE_SEARCH_DEFAULTS = (
    "/bin/",
    "/lib",
    "/usr",
    "/usr/.",
    "/usr/X11R6/lib/X11/xinit/xinitrc",
    "/usr/bsd",
    "/usr/include",
    "/usr/lib.",
    "/usr/lib/",
    "/usr/lib/os-release",
    "/usr/lib64/",
    "/usr/libx32/",
    "/usr/local",
    "/usr/local/",
    "/usr/openwin/include/GL/",
    "/usr/sbin",
)

# ninja runs every command with /bin/sh -c (in the sandbox, the builder's own shell), and its
# `-t browse` tool embeds a Python script whose first line, `#!/usr/bin/env python3`, is text
# piped to python, never a file that is run.
NINJA_STRINGS = ("/usr/bin/env",)
