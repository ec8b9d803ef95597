"""Pure rules of the task graph."""

from __future__ import annotations

from collections.abc import Mapping, Set


def find_cycle(edges: Mapping[str, Set[str]], *, start: str, new_targets: Set[str]) -> list[str]:
    """The path start -> ... -> start that adding start->new_targets would close, or []."""
    graph = {node: set(targets) for node, targets in edges.items()}
    graph.setdefault(start, set()).update(new_targets)
    path: list[str] = []
    seen: set[str] = set()

    def visit(node: str) -> bool:
        if node == start and path:
            path.append(node)
            return True
        if node in seen:
            return False
        seen.add(node)
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if visit(target):
                return True
        path.pop()
        return False

    return path if visit(start) else []


def dependencies_verdict(states: list[str]) -> str:
    """ "met" when every dependency completed, "failed" when any failed or was cancelled."""
    if any(s in ("failed", "cancelled") for s in states):
        return "failed"
    if all(s == "completed" for s in states):
        return "met"
    return "waiting"
