"""The package's layers hold (docs/architecture.md): imports point only up the list, never in a circle.

Every ``import`` in ``service/fairpath`` (at module level or inside a function) is read with
``ast``; generated code (``fairpath.v1``) is left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "service" / "fairpath"

#: docs/architecture.md's layers, top of the data flow first. A module may import from its own
#: layer and the ones listed before it. Within a layer, two packages may not import each other
#: (the cycle test below also catches that).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("fairpath.echo", "fairpath.errors", "fairpath.problems", "fairpath.suggest", "fairpath.config", "fairpath.logs"),
    ("fairpath.policy",),
    ("fairpath.decisions",),
    ("fairpath.engine",),
    ("fairpath.serving",),
    ("fairpath.audit",),
    ("fairpath.recording", "fairpath.authoring", "fairpath.flowchart"),
    ("fairpath.api",),
    ("fairpath.app", "fairpath.workers", "fairpath.offline", "fairpath.console"),
    ("fairpath.cli", "fairpath.__main__", "fairpath.healthcheck"),
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if not name.startswith("fairpath.v1"):
            found[name] = path
    return found


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the fairpath modules it imports (``from pkg import module`` counts as the module)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                submodules = {f"{base}.{alias.name}" for alias in node.names} & modules.keys()
                imported |= submodules
                if len(submodules) < len(node.names) and base in modules:
                    imported.add(base)
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names} & modules.keys()
        imported.discard(name)
        imported.discard("fairpath")  # the package's __init__ holds only the version
        graph[name] = imported
    return graph


def _layer(module: str) -> int:
    best = (-1, -1)
    for index, layer in enumerate(LAYERS):
        for prefix in layer:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[0]:
                best = (len(prefix), index)
    return best[1]


GRAPH = _imports(_modules())


def test_every_module_belongs_to_a_layer() -> None:
    """A new top-level module or package is placed in a layer (here and in docs/architecture.md)."""
    assert [module for module in GRAPH if module != "fairpath" and _layer(module) < 0] == []


def test_no_import_points_down_the_layers() -> None:
    """Data flows one way: no module imports from a layer below its own."""
    upward = sorted(
        f"{module} -> {target}" for module, targets in GRAPH.items() for target in targets
        if _layer(target) > _layer(module)
    )
    assert upward == []


def test_no_import_cycle() -> None:
    """No module reaches itself through its imports."""
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(GRAPH.get(module, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert cycles == []


def test_the_check_sees_imports_inside_functions() -> None:
    """The graph is not blind to the lazy imports the command line uses (it can fail)."""
    assert "fairpath.app" in GRAPH["fairpath.cli"]
