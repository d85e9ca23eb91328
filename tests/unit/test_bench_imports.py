"""The benchmark's modules import one another one way only: no import cycle in bench/."""

from __future__ import annotations

import ast
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench"


def bench_imports(path: Path) -> set[str]:
    """The bench modules that `path` imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            module = node.module if node.level == 0 else f"bench.{node.module}"
            if module == "bench":
                found |= {f"bench.{alias.name}" for alias in node.names}
            elif module.startswith("bench."):
                found.add(module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("bench.")}
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path that ends where it starts, or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node):], node]
        if node in done:
            return None
        for target in sorted(graph.get(node, ())):
            cycle = visit(target, [*path, node])
            if cycle:
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return None


def test_find_cycle_reports_a_cycle_and_accepts_a_tree() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_bench_module_imports_itself_back() -> None:
    graph = {f"bench.{path.stem}": bench_imports(path) for path in BENCH.glob("*.py")}
    assert graph["bench.django"] == {"bench.timing"}, "bench.django's shared helpers come from bench.timing"
    assert find_cycle(graph) is None, f"import cycle in bench/: {' -> '.join(find_cycle(graph) or [])}"
