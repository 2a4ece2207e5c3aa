"""The package's import graph: no circles, and the layers point one way.

Every `import` and `from … import` of every module under src/ttscale counts, wherever it is written:
at the top, inside a function (a lazy import is still a dependency, only a later one), and under
`if TYPE_CHECKING:` (a type-only import still ties the two modules' designs together, and it becomes a
real one the day someone needs the name at run time). Importing `a.b.c` also runs the packages `a` and
`a.b`, so those count too, except a package's own `__init__` seen from inside it (that is how Python
packages work, not a circle).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "ttscale"

# Value types, protocols and helpers everything else builds on: they import only each other.
LEAVES = {
    "ttscale.errors",
    "ttscale.optional",
    "ttscale.budget",
    "ttscale.seeds",
    "ttscale.candidate",
    "ttscale.outcome",
    "ttscale.verifier",
    "ttscale.evaluator",
    "ttscale.images",
    "ttscale.generator",
    "ttscale.samplers",
    "ttscale.prompts",
    "ttscale.cuda_graphs",
}
# The composition roots: only they turn names into objects, so only they may import the registry.
ROOTS = {"ttscale.cli", "ttscale.distributed", "ttscale.runner"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def imported(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """The package's modules that `name` imports, wherever in the file the import statement is."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the importer's package, one level up per extra dot
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            # `from pkg import sub` imports the submodule `pkg.sub` when there is one, else a name of `pkg`
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names]
        else:
            continue
        for target in targets:
            if target != PACKAGE and not target.startswith(PACKAGE + "."):
                continue
            parts = target.split(".")
            for end in range(2, len(parts) + 1):  # the module and every package above it, the root excepted
                step = ".".join(parts[:end])
                if step in known and not name.startswith(step + ".") and step != name:
                    yield step


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: set(imported(name, path, set(found))) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each as one circle through it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [circle(edges, set(c)) for c in components]


def circle(edges: dict[str, set[str]], component: set[str]) -> list[str]:
    """One shortest path a -> … -> a through a strongly connected component (breadth-first from a)."""
    start = min(component)
    parents: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(edges[v] & component):
                if w == start:
                    path = [v]
                    while (parent := parents[path[-1]]) is not None:
                        path.append(parent)
                    return [*reversed(path), start]
                if w not in parents:
                    parents[w] = v
                    following.append(w)
        frontier = following
    raise AssertionError(f"{sorted(component)} is not strongly connected")


def closure(edges: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for w in edges[todo.pop()] - seen:
            seen.add(w)
            todo.append(w)
    return seen


def test_the_checker_finds_circles_lazy_and_type_only_imports_included(tmp_path: Path) -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ttscale.x import T\n"
        "def f():\n    import ttscale.y.z\n    from ttscale.y import w\n"
    )
    known = {"ttscale.x", "ttscale.y", "ttscale.y.z", "ttscale.y.w", "ttscale.m"}
    assert set(imported("ttscale.m", source, known)) == {"ttscale.x", "ttscale.y", "ttscale.y.z", "ttscale.y.w"}


def test_no_import_circles() -> None:
    found = cycles(graph())
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaf_modules_import_only_leaves(leaf: str) -> None:
    edges = graph()
    assert leaf in edges, f"{leaf} is gone; update LEAVES"
    upward = sorted(closure(edges, leaf) - LEAVES)
    assert not upward, f"{leaf} reaches {', '.join(upward)}"


def test_only_the_composition_roots_turn_names_into_objects() -> None:
    importers = sorted(m for m, targets in graph().items() if "ttscale.registry" in targets)
    assert set(importers) <= ROOTS, importers


def test_training_the_lab_models_does_not_import_the_search_stack() -> None:
    reached = closure(graph(), "ttscale.lab.train")
    assert not reached & {"ttscale.runner", "ttscale.search", "ttscale.strategies", "ttscale.registry"}
