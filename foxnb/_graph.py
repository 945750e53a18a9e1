"""Strongly connected components of a call graph (a leaf module: the registry and the AOT
toolchain both need them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["components"]


def components(graph: Mapping[str, Iterable[str]]) -> list[set[str]]:
    """Strongly connected components of ``graph``, each after every component it reaches."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm; call graphs of a notebook are small
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component: set[str] = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            out.append(component)

    for v in graph:
        if v not in index:
            visit(v)
    return out
