"""The import graph, read with ast: no import circle between the project's modules, and each
package imports only the layers below it (lsp_server/ reaches the index through membership/)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Which packages each one may import. The index and the completion engine are independent
# layers; the language server reaches the index only through membership.
ALLOWED = {
    "stacklens": set(),
    "index": {"stacklens"},
    "membership": {"stacklens", "index"},
    "completion": {"stacklens"},
    "lsp_server": {"stacklens", "membership", "completion"},
    "evaluation": {"stacklens", "index", "membership", "completion", "lsp_server"},
}
# The `stacklens` command's dispatcher starts every subcommand, `stacklens eval` included.
DISPATCHERS = {"lsp_server.cli": {"evaluation"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in ALLOWED for p in sorted((ROOT / pkg).rglob("*.py"))}


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import that runs, at module level or in a function (lazy imports still import);
    not those under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            yield from (n for child in node.orelse for n in _imports(ast.Module([child], [])))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _imports(node)


def imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    out: set[str] = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join([*base, *([node.module] if node.module else [])])
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
        out.update(t for t in targets if t in modules and t != name)
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imported(name, path, modules) for name, path in modules.items()}


def test_each_package_imports_only_the_layers_below_it(graph: dict[str, set[str]]) -> None:
    wrong = sorted(
        f"{src} imports {dst}"
        for src, targets in graph.items()
        for dst in targets
        if (top := dst.split(".")[0]) != src.split(".")[0]
        and top not in ALLOWED[src.split(".")[0]] | DISPATCHERS.get(src, set())
    )
    assert not wrong, "imports that climb or skip a layer:\n" + "\n".join(wrong)


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for w in graph[todo.pop()] - seen:
            seen.add(w)
            todo.append(w)
    return seen


def test_lsp_server_reaches_the_index_only_through_membership(graph: dict[str, set[str]]) -> None:
    modules = project_modules()
    # Imports under `if TYPE_CHECKING:` count here too: a type from the index is a dependency on it.
    direct = sorted(
        f"{name} imports {dst}"
        for name, path in modules.items()
        if name.split(".")[0] == "lsp_server"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for dst in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""])
        if dst == "index" or dst.startswith("index.")
    )
    assert not direct, "lsp_server/ must ask membership/, not the index:\n" + "\n".join(direct)
    # It does reach the index, through membership (else the check above would hold vacuously).
    via = _reachable(graph, "lsp_server.checker")
    assert any(m.startswith("index.") for m in via) and "membership.open" in via


def test_no_import_circle(graph: dict[str, set[str]]) -> None:
    # Tarjan's strongly connected components: a component of two or more modules is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_the_graph_is_read() -> None:
    """The checks above see real edges (a parser that found none would pass them vacuously)."""
    modules = project_modules()
    assert "index.protocol" in imported("membership.query", modules["membership.query"], modules)
    assert "membership.open" in imported("lsp_server.checker", modules["lsp_server.checker"], modules)
