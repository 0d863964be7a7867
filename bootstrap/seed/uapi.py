"""Install the Linux UAPI headers for x86_64 from a Linux source tree, without the kernel's make.

`make headers_install` does four things, and so does this module:

1. copy every header under `include/uapi/` and `arch/x86/include/uapi/` (the latter as `asm/`),
   except `linux/a.out.h`, `linux/kvm.h` and `linux/kvm_para.h` when the architecture has no
   `asm/` counterpart (the rule in `include/uapi/linux/Kbuild`);
2. generate `asm/unistd_{32,64,x32}.h` from the syscall tables (as `scripts/syscallhdr.sh`);
3. generate a one-line `asm/<name>.h` wrapper including `asm-generic/<name>.h` for each
   `mandatory-y` header of `include/uapi/asm-generic/Kbuild` the architecture does not provide,
   and `linux/version.h` from the top-level Makefile's version;
4. clean each header as `scripts/headers_install.sh` does: drop `__user`/`__force`/`__iomem`
   and `__attribute_const__`, spell `inline`/`asm`/`volatile` and `__packed` portably, strip the
   `_UAPI` guard prefix, and remove what only the kernel sees (`#ifdef __KERNEL__` blocks).
   Conditionals that merely mention `__KERNEL__` next to other tests keep their other tests, with
   `defined(__KERNEL__)` replaced by 0 (`__EXPORTED_HEADERS__` by 1), which is what `unifdef
   -U__KERNEL__ -D__EXPORTED_HEADERS__` decides too.

Only these source paths are read (`LINUX_MEMBERS`), so the archive's other 1.3 GB need not be
written to disk.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bootstrap.errors import BootstrapError

ARCH = "x86"
LINUX_MEMBERS = (
    "Makefile",
    "include/uapi",
    f"arch/{ARCH}/include/uapi",
    f"arch/{ARCH}/entry/syscalls/syscall_32.tbl",
    f"arch/{ARCH}/entry/syscalls/syscall_64.tbl",
)
# (output header, syscall table, ABIs, offset macro) as in arch/x86/entry/syscalls/Makefile
SYSCALL_HEADERS = (
    ("unistd_32.h", "syscall_32.tbl", ("i386",), ""),
    ("unistd_64.h", "syscall_64.tbl", ("common", "64"), ""),
    ("unistd_x32.h", "syscall_64.tbl", ("common", "x32"), "__X32_SYSCALL_BIT"),
)
ARCH_GATED_HEADERS = ("a.out.h", "kvm.h", "kvm_para.h")

_SED_RULES = (
    (re.compile(r"([\s(])(__user|__force|__iomem)\s"), r"\1"),
    (re.compile(r"__attribute_const__(\s|$)", re.M), r"\1"),
    (re.compile(r"^#include <linux/compiler(|_types)\.h>", re.M), ""),
    (
        re.compile(r"(^|[^a-zA-Z0-9])__packed([^a-zA-Z0-9_]|$)", re.M),
        r"\1__attribute__((packed))\2",
    ),
    (re.compile(r"(^|[\s(])(inline|asm|volatile)([\s(]|$)", re.M), r"\1__\2__\3"),
    (re.compile(r"#(ifndef|define|endif\s*/\*)\s*_UAPI", re.M), r"#\1 "),
)
_DIRECTIVE = re.compile(r"^\s*#\s*(if|ifdef|ifndef|elif|else|endif)\b(.*)$")


@dataclass(frozen=True)
class LinuxVersion:
    major: int
    patchlevel: int
    sublevel: int

    @property
    def code(self) -> int:
        return (self.major << 16) + (self.patchlevel << 8) + min(self.sublevel, 255)


def linux_version(makefile: Path) -> LinuxVersion:
    """VERSION, PATCHLEVEL and SUBLEVEL from the kernel's top-level Makefile."""
    fields = dict(
        re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL)\s*=\s*(\d+)", makefile.read_text(), re.M)
    )
    try:
        return LinuxVersion(
            int(fields["VERSION"]), int(fields["PATCHLEVEL"]), int(fields["SUBLEVEL"])
        )
    except KeyError as missing:
        raise BootstrapError(
            f"{makefile}: no {missing.args[0]} line; expected a Linux Makefile"
        ) from None


def install_uapi_headers(linux: Path, dest: Path) -> int:
    """Install the x86_64 UAPI headers of the Linux tree `linux` into `dest` (an include dir).

    Returns the number of headers written. Output is byte-for-byte a function of the input.
    """
    asm_dir = linux / "arch" / ARCH / "include" / "uapi" / "asm"
    headers = dict(_copied_headers(linux / "include" / "uapi", asm_dir))
    headers.update(_syscall_headers(linux / "arch" / ARCH / "entry" / "syscalls"))
    for name in _mandatory_generic(linux / "include" / "uapi" / "asm-generic" / "Kbuild"):
        headers.setdefault(f"asm/{name}", f"#include <asm-generic/{name}>\n")
    headers["linux/version.h"] = _version_header(linux_version(linux / "Makefile"))
    for relative, text in sorted(headers.items()):
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(sanitize_header(text))
    return len(headers)


def _copied_headers(uapi: Path, asm_dir: Path) -> Iterator[tuple[str, str]]:
    if not uapi.is_dir() or not asm_dir.is_dir():
        raise BootstrapError(f"{uapi.parent.parent}: no include/uapi tree; expected Linux sources")
    for header in sorted(uapi.rglob("*.h")):
        relative = header.relative_to(uapi).as_posix()
        gated = relative.removeprefix("linux/")
        if gated in ARCH_GATED_HEADERS and not (asm_dir / gated).exists():
            continue
        yield relative, header.read_text()
    for header in sorted(asm_dir.glob("*.h")):
        yield f"asm/{header.name}", header.read_text()


def _mandatory_generic(kbuild: Path) -> list[str]:
    return re.findall(r"^mandatory-y\s*\+=\s*(\S+\.h)", kbuild.read_text(), re.M)


def _syscall_headers(tables: Path) -> Iterator[tuple[str, str]]:
    for output, table, abis, offset in SYSCALL_HEADERS:
        yield f"asm/{output}", syscall_header(output, (tables / table).read_text(), abis, offset)


def syscall_header(output: str, table: str, abis: tuple[str, ...], offset: str) -> str:
    """The `__NR_*` header for the `abis` rows of a syscall table (scripts/syscallhdr.sh)."""
    guard = "_UAPI_ASM_" + re.sub(r"[^A-Z0-9_]", "_", output.upper()).replace("__", "_")
    lines = [f"#ifndef {guard}", f"#define {guard}", ""]
    highest = 0
    for row in table.splitlines():
        words = row.split()
        if len(words) < 3 or words[0].startswith("#") or words[1] not in abis:
            continue
        highest = int(words[0], 0)
        number = f"({offset} + {words[0]})" if offset else words[0]
        lines.append(f"#define __NR_{words[2]} {number}")
    lines += ["", "#ifdef __KERNEL__", f"#define __NR_syscalls {highest + 1}", "#endif", ""]
    lines.append(f"#endif /* {guard} */")
    return "\n".join(lines) + "\n"


def _version_header(version: LinuxVersion) -> str:
    return (
        f"#define LINUX_VERSION_CODE {version.code}\n"
        "#define KERNEL_VERSION(a,b,c) (((a) << 16) + ((b) << 8) + ((c) > 255 ? 255 : (c)))\n"
        f"#define LINUX_VERSION_MAJOR {version.major}\n"
        f"#define LINUX_VERSION_PATCHLEVEL {version.patchlevel}\n"
        f"#define LINUX_VERSION_SUBLEVEL {version.sublevel}\n"
    )


def sanitize_header(text: str) -> str:
    """One header as `scripts/headers_install.sh` leaves it (see the module docstring)."""
    for pattern, replacement in _SED_RULES:
        text = pattern.sub(replacement, text)
    return drop_kernel_only(text)


def drop_kernel_only(text: str) -> str:
    """Remove `__KERNEL__`-only code as `unifdef -U__KERNEL__ -D__EXPORTED_HEADERS__` does.

    A conditional whose test is decided by those two symbols alone is resolved: its directives
    go and only the live branch stays. Any other conditional is kept exactly as written. The
    stack holds one entry per open conditional: None when kept, else [emitting, branch taken].
    """
    out: list[str] = []
    stack: list[list[bool] | None] = []
    for line in text.splitlines(keepends=True):
        match = _DIRECTIVE.match(line)
        live = _emitting(stack)
        if not match:
            if live:
                out.append(line)
            continue
        keyword, expr = match.group(1), _condition(match.group(1), match.group(2))
        if keyword in ("if", "ifdef", "ifndef"):
            decided = decide(expr)
            stack.append(None if decided is None else [decided, decided])
            if decided is None and live:
                out.append(line)
            continue
        entry = stack[-1] if stack else None
        if entry is None:
            if keyword == "endif" and stack:
                stack.pop()
            if live:
                out.append(line)
        elif keyword == "endif":
            stack.pop()
        elif keyword == "else":
            entry[:] = [not entry[1], True]
        else:
            stack[-1] = _resolve_elif(entry, expr, line, out, _emitting(stack[:-1]))
    return "".join(out)


def _emitting(stack: list[list[bool] | None]) -> bool:
    return all(entry is None or entry[0] for entry in stack)


def _resolve_elif(
    entry: list[bool], expr: str, line: str, out: list[str], live: bool
) -> list[bool] | None:
    """An #elif after a resolved branch: decide it, or turn it into the #if it now starts."""
    if entry[1]:
        return [False, True]
    decided = decide(expr)
    if decided is not None:
        return [decided, decided]
    if live:
        out.append(line.replace("elif", "if", 1))
    return None


def _condition(keyword: str, rest: str) -> str:
    """The directive's test as an #if expression, without comments."""
    rest = re.sub(r"/\*.*?(\*/|$)", "", rest).strip()
    if keyword == "ifdef":
        return f"defined({rest})"
    if keyword == "ifndef":
        return f"!defined({rest})"
    return rest


_KNOWN = {"__KERNEL__": False, "__EXPORTED_HEADERS__": True}
_TOKEN = re.compile(r"\s*(defined\s*\(\s*\w+\s*\)|defined\s+\w+|&&|\|\||!(?!=)|\(|\))")


def decide(expr: str) -> bool | None:
    """The value of an #if expression if `_KNOWN` symbols alone decide it, else None.

    Only `defined`, `!`, `&&`, `||` and parentheses are understood; anything else is unknown.
    """
    tokens = _tokens(expr)
    if tokens is None:
        return None
    value, rest = _or(tokens)
    return value if not rest else None


def _tokens(expr: str) -> list[str] | None:
    tokens: list[str] = []
    position = 0
    while position < len(expr):
        match = _TOKEN.match(expr, position)
        if match:
            tokens.append(match.group(1))
            position = match.end()
            continue
        # an operand we cannot read (a comparison, a number...): collect it as one unknown atom
        end = position
        while end < len(expr) and not _TOKEN.match(expr, end):
            end += 1
        tokens.append("?" if expr[position:end].strip() else "")
        position = end
    return [token for token in tokens if token]


def _or(tokens: list[str]) -> tuple[bool | None, list[str]]:
    value, tokens = _and(tokens)
    while tokens[:1] == ["||"]:
        right, tokens = _and(tokens[1:])
        value = True if True in (value, right) else (None if None in (value, right) else False)
    return value, tokens


def _and(tokens: list[str]) -> tuple[bool | None, list[str]]:
    value, tokens = _unary(tokens)
    while tokens[:1] == ["&&"]:
        right, tokens = _unary(tokens[1:])
        value = False if False in (value, right) else (None if None in (value, right) else True)
    return value, tokens


def _unary(tokens: list[str]) -> tuple[bool | None, list[str]]:
    if not tokens:
        return None, tokens
    head, rest = tokens[0], tokens[1:]
    if head == "!":
        value, rest = _unary(rest)
        return (None if value is None else not value), rest
    if head == "(":
        value, rest = _or(rest)
        return value, rest[1:] if rest[:1] == [")"] else ["?"]
    if head.startswith("defined"):
        return _KNOWN.get(re.sub(r"defined|[\s()]", "", head)), rest
    return None, rest
