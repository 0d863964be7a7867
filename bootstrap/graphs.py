"""Ordering a dependency graph: dependencies first, depth first, without recursion.

Derivations (inputs before users) and store paths (references before referrers) are both
ordered this way; a chain of any length works, since nothing recurses.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable


def dependencies_first(
    roots: Iterable[str],
    dependencies_of: Callable[[str], Iterable[str]],
    within: Collection[str] | None = None,
) -> list[str]:
    """Every node reachable from `roots`, each after its dependencies, visited depth first in
    the order given. With `within`, only those nodes are followed and listed. An edge from a
    node to itself (a store path referring to itself) is ignored."""
    order: list[str] = []
    seen: set[str] = set()
    for root in roots:
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif node not in seen:
                seen.add(node)
                stack.append((node, True))
                deps = [
                    d
                    for d in dependencies_of(node)
                    if d != node and (within is None or d in within)
                ]
                stack.extend((dep, False) for dep in reversed(deps))
    return order
