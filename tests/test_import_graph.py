"""No import circles inside `tabom.models` and `tabom.reproduce` (imports inside functions and under
TYPE_CHECKING count): each module there can be read, and imported, after the modules it names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tabom"


def _graph(package: str) -> dict[str, set[str]]:
    """module -> the modules of `package` it imports anywhere in its source."""
    folder = PACKAGE / package
    mods = {f"tabom.{package}.{p.stem}": p for p in folder.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = {node.module} | {f"{node.module}.{a.name}" for a in node.names}
                graph[name] |= {t for t in targets if t in mods and t != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the list of modules around it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_the_checker_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("package", ["models", "reproduce"])
def test_no_import_circle(package: str) -> None:
    graph = _graph(package)
    assert len(graph) > 3
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def _package_graph() -> dict[str, set[str]]:
    """Every module of tabom -> the tabom modules it imports anywhere (a package's __init__, which
    only re-exports its submodules, is not a target)."""
    mods: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = {node.module} | {f"{node.module}.{a.name}" for a in node.names}
                graph[name] |= {t for t in targets
                                if t in mods and t != name and mods[t].name != "__init__.py"}
    return graph


def test_no_import_circle_anywhere_in_tabom() -> None:
    """config <-> methods and commands.evaluate <-> commands.eval_run were circles once."""
    graph = _package_graph()
    assert {"tabom.config", "tabom.methods", "tabom.commands.evaluate"} <= set(graph)
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])
