"""Topological order with cycle detection that names the cycle. Shared by stages and resources."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class CycleError(ValueError):
    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__("dependency cycle: " + " -> ".join(cycle))


def toposort(deps: Mapping[str, Iterable[str]]) -> list[str]:
    """Nodes in an order where each comes after what it depends on (Kahn; O(V+E)).

    ``deps[n]`` lists what ``n`` needs; every dependency must be a key.
    """
    indegree = {n: 0 for n in deps}
    users: dict[str, list[str]] = {n: [] for n in deps}
    for n, ds in deps.items():
        for d in ds:
            indegree[n] += 1
            users[d].append(n)
    from collections import deque

    ready = deque(n for n, k in indegree.items() if k == 0)
    order: list[str] = []
    while ready:  # FIFO keeps the file's order among independent nodes
        n = ready.popleft()
        order.append(n)
        for u in users[n]:
            indegree[u] -= 1
            if indegree[u] == 0:
                ready.append(u)
    if len(order) != len(indegree):
        raise CycleError(find_cycle({n: list(ds) for n, ds in deps.items() if indegree[n] > 0}))
    return order


def find_cycle(deps: Mapping[str, list[str]]) -> list[str]:
    """One cycle among nodes known to contain one, as [a, b, ..., a]."""
    color: dict[str, int] = {}
    for start in deps:
        if color.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            node, i = stack.pop()
            if i == 0:
                color[node] = 1
                path.append(node)
            nexts = [d for d in deps.get(node, []) if d in deps]
            if i < len(nexts):
                stack.append((node, i + 1))
                nxt = nexts[i]
                if color.get(nxt) == 1:
                    return path[path.index(nxt) :] + [nxt]
                if not color.get(nxt):
                    stack.append((nxt, 0))
            else:
                color[node] = 2
                path.pop()
    return list(deps)[:1] * 2


def downstream(deps: Mapping[str, Iterable[str]], roots: Iterable[str]) -> set[str]:
    """Every node that (transitively) depends on one of ``roots``, roots included."""
    users: dict[str, list[str]] = {n: [] for n in deps}
    for n, ds in deps.items():
        for d in ds:
            users.setdefault(d, []).append(n)
    seen = set(roots)
    todo = list(seen)
    while todo:
        for u in users.get(todo.pop(), []):
            if u not in seen:
                seen.add(u)
                todo.append(u)
    return seen
