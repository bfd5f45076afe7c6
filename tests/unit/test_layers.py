"""The layers of docs/architecture.md hold, and nothing imports in a circle.

A module imports only from its own layer and those listed before it, and neither modules nor
packages import each other round a circle.

Every ``import`` in ``service/fairpath`` and ``clients/python/fairpath_client`` (at module level,
inside a function or under ``TYPE_CHECKING``) is read with ``ast``; generated code (``fairpath.v1``)
is left out. Imports by name in strings (the fork server's preload list) are not seen.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = (ROOT / "service" / "fairpath", ROOT / "clients" / "python" / "fairpath_client")

#: docs/architecture.md's layers, in the order data flows from the contract up to the entry points.
#: A module may import from its own layer and the ones listed before it (the longest prefix names a
#: module's layer: ``fairpath.authoring.cli`` is a command line, the rest of ``authoring`` is not).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("fairpath.echo", "fairpath.errors", "fairpath.problems", "fairpath.suggest", "fairpath.config", "fairpath.logs"),
    ("fairpath.policy",),
    ("fairpath.decisions",),
    ("fairpath.wire",),
    ("fairpath.engine",),
    ("fairpath.serving",),
    ("fairpath.audit",),
    ("fairpath.recording", "fairpath.authoring", "fairpath.flowchart"),
    ("fairpath.api",),
    ("fairpath_client",),
    ("fairpath.app", "fairpath.workers", "fairpath.offline", "fairpath.console", "fairpath.authoring.cli"),
    ("fairpath.cli", "fairpath.__main__", "fairpath.healthcheck"),
)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in package.rglob("*.py"):
            parts = path.relative_to(package.parent).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            if not name.startswith("fairpath.v1"):
                found[name] = path
    return found


def _all_imports(path: Path) -> set[str]:
    """Every module name ``path`` imports, inside fairpath or not (absolute imports only)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


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
        imported.discard("fairpath_client")  # its __init__ re-exports the client's public names
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
    assert [module for module in GRAPH if module not in {"fairpath", "fairpath_client"} and _layer(module) < 0] == []


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


def test_no_package_cycle() -> None:
    """No two packages (``fairpath.audit``, ``fairpath_client``, …) import each other round a circle.

    Directly or through others, even when no single module does.
    """
    def unit(module: str) -> str:
        if module.startswith("fairpath.authoring.cli"):
            return "fairpath.authoring.cli"  # a command line of its own layer, not the author tools
        return ".".join(module.split(".")[:2])

    packages: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        packages.setdefault(unit(module), set()).update(unit(t) for t in targets if unit(t) != unit(module))
    reach: dict[str, set[str]] = {}

    def reachable(start: str) -> set[str]:
        if start not in reach:
            reach[start] = set()
            for target in packages.get(start, ()):
                reach[start] |= {target, *reachable(target)}
        return reach[start]

    assert sorted(package for package in packages if package in reachable(package)) == []


def test_the_client_needs_nothing_of_the_service_but_the_contract() -> None:
    """``fairpath_client`` imports from ``fairpath`` only the generated contract, so it installs and runs alone."""
    modules = _modules()
    service = sorted(
        f"{name} -> {imported}" for name, path in modules.items() if name.startswith("fairpath_client")
        for imported in _all_imports(path)
        if imported.split(".")[0] == "fairpath" and not imported.startswith("fairpath.v1")
    )
    assert service == []


def test_the_check_sees_imports_inside_functions() -> None:
    """The graph is not blind to the lazy imports the command line uses (it can fail)."""
    assert "fairpath.app" in GRAPH["fairpath.cli"]
