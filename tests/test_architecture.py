"""The shape of the package: the import graph has no cycle, and no module imports one above it.

The graph is read from the source with ``ast``: every import counts, at module level or inside a
function (a lazy import is still a dependency). Layers, lowest first: a module may import modules
of its own layer or below, never above. A module that is in no layer fails the test, so a new
module has to be placed deliberately.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "liberacion"

LAYERS: list[tuple[str, ...]] = [
    ("liberacion",),  # the package itself: __version__ and lazy re-exports, imports nothing
    ("liberacion.errors",),
    ("liberacion.limits",),  # sizes and depths inputs may reach, read from the environment
    ("liberacion.files", "liberacion.timestamps", "liberacion.naming", "liberacion.formats", "liberacion.engine"),
    ("liberacion.home",),
    ("liberacion.refresh_state",),  # what the last refreshes found, for `tables` without the refresh's code
    ("liberacion.storage",),  # where the lake lives: a directory or an object store
    ("liberacion.iceberg",),  # lake tables as Iceberg tables
    ("liberacion.snapshots",),
    ("liberacion.render",),
    ("liberacion.download",),  # the HTTP client: listings and data files go through it
    ("liberacion.catalogs.model",),
    ("liberacion.catalogs.manifests",),
    ("liberacion.catalogs.adapters",),
    ("liberacion.catalogs.index",),
    ("liberacion.catalogs",),
    ("liberacion.views",),  # SQL views over the lake; liberacion.datasets shows the catalogs loaded
    ("liberacion.resolve",),  # ref → dataset → files
    ("liberacion.convert",),  # files → Parquet
    ("liberacion.lake",),  # Parquet → published snapshots
    ("liberacion.iceberg_lake",),  # a lake named by --lake: Iceberg tables, on a store or a directory
    ("liberacion.query",),
    ("liberacion.compare", "liberacion.timeline"),
    ("liberacion.fetching",),  # orchestration: resolve → download → convert → publish
    ("liberacion.refreshing",),
    ("liberacion.api",),  # the public API
    ("liberacion.console",),  # progress and printers for people
    ("liberacion.cli",),  # the commands
    ("liberacion.__main__",),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every ``liberacion`` module ``path`` imports, wherever the import statement is."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # ``from liberacion.catalogs import index`` imports the submodule liberacion.catalogs.index.
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                if (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).is_file():
                    found.add(candidate)
    return {name for name in found if name == "liberacion" or name.startswith("liberacion.")}


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        graph[name] = {dep for dep in imports_of(path) if dep != name}
    return graph


def layer_of(module: str) -> int:
    """The index of the most specific layer naming ``module`` or one of its packages."""
    best, depth = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and prefix.count(".") > depth:
                best, depth = index, prefix.count(".")
    return best


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for dep in sorted(graph.get(node, ())):
            cycle = visit(dep)
            if cycle:
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        cycle = visit(node)
        if cycle:
            return cycle
    return None


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 20, "the package was not found"
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph) or [])


def test_no_module_imports_a_module_above_it() -> None:
    graph = import_graph()
    unplaced = [m for m in graph if layer_of(m) < 0]
    assert not unplaced, f"modules in no layer (add them to LAYERS): {unplaced}"
    upward = [
        f"{module} (layer {layer_of(module)}) imports {dep} (layer {layer_of(dep)})"
        for module, deps in graph.items()
        for dep in deps
        if layer_of(dep) > layer_of(module)
    ]
    assert not upward, "\n".join(upward)


def test_the_checks_catch_a_cycle_and_an_upward_import() -> None:
    """The checks themselves can fail."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert layer_of("liberacion.lake") > layer_of("liberacion.convert.text")
    assert layer_of("liberacion.catalogs.index") > layer_of("liberacion.catalogs.model")
    assert layer_of("liberacion.cli.commands") == layer_of("liberacion.cli")
