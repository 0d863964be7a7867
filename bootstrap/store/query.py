"""Queries over a store's reference graph, as Nix and Guix answer them: closure sizes, the
requisites and the tree of a path (`nix-store --query`), why one path depends on another
(`nix why-depends`), each path's own and closure size (`guix size`), and how two closures
differ by package (`nix store diff-closures`). Pure functions of a `Store`; the CLI prints."""

from __future__ import annotations

import mmap
import os
import re
import stat
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bootstrap.errors import BootstrapError
from bootstrap.store.store import Store
from bootstrap.storepath import split_store_path

CONTEXT_BYTES = 32  # bytes shown either side of a reference, as nix why-depends shows them
# is-last-child -> (the branch to a child, the pad under it), as Nix 2.8 draws trees
TREE = {False: ("├───", "│   "), True: ("└───", "    ")}


def closure_sizes(store: Store, roots: Iterable[str]) -> dict[str, int]:
    """The NAR size of the closure of every path in the closure of `roots` (Nix's
    `closureSize`), each path's references read once: closures are built dependencies
    first."""
    paths = store.closure(roots)
    references = {p: set(store.references(p)) for p in paths}
    nar_size = {p: store.query_info(p).nar_size for p in paths}
    closures: dict[str, frozenset[str]] = {}
    for path in reversed(topo_sort(store, paths)):
        closures[path] = frozenset({path}).union(*(closures[r] for r in references[path] - {path}))
    return {p: sum(nar_size[q] for q in closure) for p, closure in closures.items()}


def topo_sort(store: Store, paths: Iterable[str]) -> list[str]:
    """`paths` with every path before what it references, as Nix's topoSortPaths orders them
    (a depth-first walk in path order, references inside `paths` only)."""
    items = set(paths)
    order: list[str] = []
    seen: set[str] = set()
    for root in sorted(items):
        stack: list[tuple[str, Iterator[str]]] = []
        _enter(store, root, items, seen, stack)
        while stack:
            path, refs = stack[-1]
            ref = next(refs, None)
            if ref is None:
                order.append(path)
                stack.pop()
            else:
                _enter(store, ref, items, seen, stack)
    return order[::-1]


def _enter(
    store: Store,
    path: str,
    items: set[str],
    seen: set[str],
    stack: list[tuple[str, Iterator[str]]],
) -> None:
    """Push `path` on the walk's stack, with its references among `items`, unless seen."""
    if path not in seen:
        seen.add(path)
        refs = [r for r in store.references(path) if r != path and r in items]
        stack.append((path, iter(refs)))


def tree_lines(store: Store, root: str) -> list[str]:
    """`nix-store --query --tree`: each path once, its references indented below it in
    dependency order, drawn as Nix 2.8 draws it; a path met again is printed with ` [...]`."""
    lines: list[str] = []
    done: set[str] = set()
    todo = [(root, "", "")]
    while todo:
        path, first_pad, tail_pad = todo.pop()
        if path in done:
            lines.append(f"{first_pad}{path} [...]")
            continue
        done.add(path)
        lines.append(f"{first_pad}{path}")
        refs = topo_sort(store, store.references(path))[::-1]
        for i, ref in reversed(list(enumerate(refs))):
            branch, below = TREE[i == len(refs) - 1]
            todo.append((ref, tail_pad + branch, tail_pad + below))
    return lines


# -- why-depends -------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """Where one store path's bytes mention another's hash: the file (relative to the path's
    top, "/" for the path itself) and the printable bytes around the hash, or for a symlink
    its whole target."""

    file: str
    context: str
    symlink: bool = False


@dataclass
class WhyNode:
    """A path in a why-depends tree: each edge holds where this path's files mention the
    reference, and the reference's own node. A path met again has no edges the second time
    (it is expanded once, as nix why-depends shows it)."""

    path: str
    edges: list[tuple[tuple[Hit, ...], WhyNode]] = field(default_factory=list)


def why_depends(store: Store, package: str, dependency: str, all_paths: bool = False) -> WhyNode:
    """Why `package`'s closure holds `dependency`: the shortest chain of references from one
    to the other, or with `all_paths` every reference in the closure that leads there (nearest
    first), each edge with the files and bytes that make it."""
    closure = set(store.closure([package]))
    if dependency not in closure:
        raise BootstrapError(f"{package} does not depend on {dependency}")
    distance = _distances_to(store, dependency, closure)
    root = WhyNode(package)
    visited: set[str] = set()
    todo = [root]
    while todo:  # in the order the tree prints, so a path is expanded where it first shows
        node = todo.pop()
        if node.path in visited or node.path == dependency:
            continue
        visited.add(node.path)
        refs = sorted(
            (r for r in store.references(node.path) if r in distance and r != node.path),
            key=lambda r: (distance[r], r),
        )
        refs = refs if all_paths else refs[:1]
        hits = find_hits(store, node.path, refs)
        node.edges = [(hits[r], WhyNode(r)) for r in refs]
        todo.extend(child for _, child in reversed(node.edges))
    return root


def _distances_to(store: Store, target: str, closure: set[str]) -> dict[str, int]:
    """How many references separate each path of `closure` from `target` (paths that do not
    lead there are left out)."""
    distance = {target: 0}
    queue = deque([target])
    while queue:
        path = queue.popleft()
        for referrer in store.referrers(path):
            if referrer in closure and referrer not in distance:
                distance[referrer] = distance[path] + 1
                queue.append(referrer)
    return distance


def find_hits(store: Store, path: str, references: list[str]) -> dict[str, tuple[Hit, ...]]:
    """For each of `references`, the files of `path` that mention its hash part: the first
    place in each regular file, or a symlink's target (what nix why-depends reports)."""
    wanted = {split_store_path(r, store.store_dir)[0]: r for r in references}
    hits: dict[str, list[Hit]] = {r: [] for r in references}
    top = store.real_path(path)
    for file, mode in _walk(top):
        name = _relative(file, top)
        if stat.S_ISLNK(mode):
            target = os.readlink(file)
            for hash_part, reference in wanted.items():
                if hash_part in target:
                    hits[reference].append(Hit(name, target, symlink=True))
        elif stat.S_ISREG(mode):
            with _mapped(file) as data:
                for hash_part, reference in wanted.items():
                    if (hit := _first_hit(data, hash_part, name)) is not None:
                        hits[reference].append(hit)
    return {r: tuple(h) for r, h in hits.items()}


def _walk(top: Path) -> Iterator[tuple[Path, int]]:
    """`top` and everything under it with its mode, in name order, not following symlinks."""
    todo = [top]
    while todo:
        path = todo.pop()
        mode = os.lstat(path).st_mode
        yield path, mode
        if stat.S_ISDIR(mode):
            todo.extend(sorted(path.iterdir(), reverse=True))


@contextmanager
def _mapped(file: Path) -> Iterator[bytes | mmap.mmap]:
    """A regular file's bytes, mapped rather than read (store files can be hundreds of MB)."""
    with open(file, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            yield b""
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            yield data


def _first_hit(data: bytes | mmap.mmap, hash_part: str, file: str) -> Hit | None:
    start = data.find(hash_part.encode())
    if start < 0:
        return None
    window = data[max(0, start - CONTEXT_BYTES) : start + len(hash_part) + CONTEXT_BYTES]
    return Hit(file, _printable(window))


def _printable(data: bytes) -> str:
    return "".join(chr(b) if 32 <= b < 127 else "." for b in data)


def _relative(file: Path, top: Path) -> str:
    return "/" if file == top else os.fspath(file.relative_to(top))


# -- size --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SizeRow:
    """One path of a closure: its own NAR size and its closure's."""

    path: str
    own: int
    closure: int


def size_rows(store: Store, roots: Iterable[str]) -> list[SizeRow]:
    """Every path in the closure of `roots` with its own and closure size, largest closure
    first (as `guix size` sorts them), then by path."""
    sizes = closure_sizes(store, roots)
    rows = [SizeRow(p, store.query_info(p).nar_size, size) for p, size in sizes.items()]
    return sorted(rows, key=lambda row: (-row.closure, row.path))


# -- diff-closures -----------------------------------------------------------------------

_OUTPUT_SUFFIX = re.compile(r"(.*)-([a-z]+|lib32|lib64)")


def package_version(store_name: str) -> tuple[str, str]:
    """(name, version) of a store path's name, as `nix store diff-closures` splits it: an
    output name (`-dev`, `-lib`) is dropped, then the version starts after the first '-'
    that is not followed by a letter."""
    if match := _OUTPUT_SUFFIX.fullmatch(store_name):
        store_name = match.group(1)
    for i, char in enumerate(store_name[:-1]):
        if char == "-" and not store_name[i + 1].isalpha():
            return store_name[:i], store_name[i + 1 :]
    return store_name, ""


@dataclass(frozen=True)
class PackageChange:
    """One package whose versions or size differ between two closures."""

    name: str
    removed: tuple[str, ...]
    added: tuple[str, ...]
    size_delta: int


def diff_closures(store: Store, before: str, after: str) -> list[PackageChange]:
    """The packages whose versions changed between the closures of `before` and `after`, or
    whose size changed by 8 KiB or more (Nix's threshold), by name."""
    old, new = _grouped(store, before), _grouped(store, after)
    changes = []
    for name in sorted(old.keys() | new.keys()):
        old_versions, new_versions = old.get(name, {}), new.get(name, {})
        delta = sum(new_versions.values()) - sum(old_versions.values())
        removed = tuple(sorted(old_versions.keys() - new_versions.keys()))
        added = tuple(sorted(new_versions.keys() - old_versions.keys()))
        if removed or added or abs(delta) >= 8 * 1024:
            changes.append(PackageChange(name, removed, added, delta))
    return changes


def _grouped(store: Store, root: str) -> dict[str, dict[str, int]]:
    """name -> version -> NAR size of the closure's paths of that package version."""
    groups: dict[str, dict[str, int]] = {}
    for path in store.closure([root]):
        name, version = package_version(split_store_path(path, store.store_dir)[1])
        versions = groups.setdefault(name, {})
        versions[version] = versions.get(version, 0) + store.query_info(path).nar_size
    return groups
