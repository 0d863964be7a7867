"""`bootstrap why-depends`, `size` and `diff-closures`: why a closure holds a path, what each
path of a closure weighs, and how two closures differ by package."""

from __future__ import annotations

import argparse

from bootstrap.cli.common import (
    add_store_options,
    add_target_options,
    is_path_argument,
    open_store,
    plan_from_args,
)
from bootstrap.store import Store
from bootstrap.store.query import TREE, Hit, WhyNode, diff_closures, size_rows, why_depends


def register(commands: argparse._SubParsersAction) -> None:
    why = commands.add_parser(
        "why-depends",
        help="show why PACKAGE's closure holds DEPENDENCY: the chain of references, and the "
        "file and bytes that make each one (as nix why-depends)",
    )
    why.add_argument("package", metavar="PACKAGE")
    why.add_argument("dependency", metavar="DEPENDENCY")
    why.add_argument(
        "--all", action="store_true", help="every reference that leads there, not one chain"
    )
    add_store_options(why)
    why.set_defaults(func=run_why_depends)

    size = commands.add_parser(
        "size", help="each path of a closure with its own and closure size (as guix size)"
    )
    add_target_options(size)
    size.set_defaults(func=run_size)

    diff = commands.add_parser(
        "diff-closures",
        help="how the closure of AFTER differs from BEFORE's, by package name, version and "
        "size (as nix store diff-closures)",
    )
    diff.add_argument("before", metavar="BEFORE")
    diff.add_argument("after", metavar="AFTER")
    add_store_options(diff)
    diff.set_defaults(func=run_diff_closures)


def run_why_depends(args: argparse.Namespace) -> int:
    store = open_store(args, create=False)
    package, dependency = (_valid(store, p) for p in (args.package, args.dependency))
    _print_why(why_depends(store, package, dependency, args.all), args.all)
    return 0


def _print_why(root: WhyNode, every_hit: bool) -> None:
    """The tree as `nix why-depends --precise` draws it (without colours): each reference's
    hits under its referrer, then `→ reference` and that reference's own tree."""
    todo: list[str | tuple[WhyNode, str]] = [(root, "")]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            print(item)
            continue
        node, pad = item
        print(f"{pad}{'→ ' if pad else ''}{node.path}")
        for i, (hits, child) in reversed(list(enumerate(node.edges))):
            branch, below = TREE[i == len(node.edges) - 1]
            todo.append((child, pad + below))
            shown = hits if every_hit else hits[:1]
            for j, hit in reversed(list(enumerate(shown))):
                todo.append(f"{pad}{branch if j == 0 else below}{_describe(hit)}")


def _describe(hit: Hit) -> str:
    """`FILE: …bytes around the hash…`, or `FILE -> TARGET` for a symlink (as Nix)."""
    return f"{hit.file} -> {hit.context}" if hit.symlink else f"{hit.file}: …{hit.context}…"


def run_size(args: argparse.Namespace) -> int:
    store = open_store(args, create=False)
    rows = size_rows(store, _roots(args, store))
    total = sum(row.own for row in rows)
    width = max(len(row.path) for row in rows)
    print(f"{'store item':<{width}}  {'total':>9}  {'self':>9}")
    for row in rows:
        share = 100 * row.own / total if total else 0.0
        print(f"{row.path:<{width}}  {_mib(row.closure)}  {_mib(row.own)}  {share:5.1f}%")
    print(f"total: {total / 2**20:.1f} MiB")
    return 0


def _roots(args: argparse.Namespace, store: Store) -> list[str]:
    """The store path `TARGET` names if it is a path (`result`, or anything with a '/'),
    else the target's stage outputs."""
    target = args.target_opt or args.target or ""
    if is_path_argument(target):
        return [_valid(store, target)]
    from bootstrap.export.roots import stage_outputs  # evaluates recipes: only for a target

    return stage_outputs(store, plan_from_args(args, store))


def _mib(size: int) -> str:
    return f"{size / 2**20:9.1f}"


def run_diff_closures(args: argparse.Namespace) -> int:
    store = open_store(args, create=False)
    before, after = (_valid(store, p) for p in (args.before, args.after))
    for change in diff_closures(store, before, after):
        items = []
        if change.removed or change.added:
            items.append(f"{_versions(change.removed)} → {_versions(change.added)}")
        if abs(change.size_delta) >= 8 * 1024:
            items.append(f"{change.size_delta / 1024:+.1f} KiB")
        print(f"{change.name}: {', '.join(items)}")
    return 0


def _versions(versions: tuple[str, ...]) -> str:
    """Versions as Nix lists them: ∅ for none, ε for the empty version."""
    return ", ".join(v or "ε" for v in versions) if versions else "∅"


def _valid(store: Store, path: str) -> str:
    """The valid store path `path` names (a link, a file inside, a physical path)."""
    resolved = store.to_store_path(path)
    store.query_info(resolved)
    return resolved
