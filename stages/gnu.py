"""The recipe shape of a GNU-style package: `./configure && make && make install` by
builders/gnu.sh, with a given set of tools (a compiler, make, binutils), static against the
store's musl, without NLS or manuals."""

from bootstrap.fetch import Source
from bootstrap.recipe import Package
from stages.host_paths import MUSL_STATIC
from stages.stage1 import busybox


def gnu_tool(
    name: str,
    version: str,
    source: Source,
    *,
    tools: tuple[Package, ...],
    optimize: str = "-O2",
    patches: tuple[str, ...] = (),
    inputs: tuple[Package, ...] = (),
    configure: str = "",
    make_flags: str = "",
    drop: tuple[str, ...] = (),
    allowed_host_paths: tuple[str, ...] = MUSL_STATIC,
) -> Package:
    """`configure` adds to the configure flags, `make_flags` is passed to every `make`, and
    `drop` lists installed files (relative to $out) to leave out."""
    env = {"configureFlags": " ".join((f"CFLAGS={optimize} --disable-nls", configure)).strip()}
    if make_flags:
        env["makeFlags"] = make_flags
    if drop:
        env["dropFiles"] = " ".join(drop)
    return Package(
        name,
        version,
        "gnu.sh",
        shell=busybox,
        sources=(source,),
        patches=patches,
        inputs=(*tools, *inputs),
        env=env,
        allowed_host_paths=allowed_host_paths,
    )
